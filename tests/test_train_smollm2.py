"""One joint epoch of `train run` on a CliniFact slice with the real SmolLM2-135M-Instruct weights."""

import json

import pytest
import torch
from datasets import Dataset
from transformers import AutoTokenizer
from typer.testing import CliRunner

from schemas.task import load_task
from tests.train_fixtures import clinifact_version
from train.checkpoint import load_checkpoint
from train.cli import app
from train.collate import pack
from train.data import encode_split, eog_token_id

pytestmark = pytest.mark.slow


def test_smollm2_eog_is_im_end_and_stays_a_target_although_it_is_the_pad(smollm2_dir):
    tok = AutoTokenizer.from_pretrained(smollm2_dir)
    eog = eog_token_id(tok)
    assert tok.convert_ids_to_tokens(eog) == "<|im_end|>" and tok.pad_token_id == eog
    row = {"id": "1", "label": 1, "claim": "c", "article_abstract": "a", "explanation": "Supported."}
    [example] = encode_split(tok, load_task("clinifact"), Dataset.from_list([row]), 192, eog, "train")
    assert pack([example]).targets[-2].item() == eog


def test_one_joint_epoch_on_a_clinifact_slice(smollm2_dir, clinifact_dir, tmp_path):
    version = clinifact_version(tmp_path / "registry", clinifact_dir, n_train=4, n_dev=4)
    out = tmp_path / "run"
    result = CliRunner().invoke(
        app,
        [
            "run",
            "--dataset",
            str(version),
            "--model",
            str(smollm2_dir),
            "--out",
            str(out),
            "epochs=1",
            "batch_size=2",
            "max_input_tokens=192",
            "head_hidden=64",
        ],
    )
    assert result.exit_code == 0, result.output
    steps = [json.loads(line) for line in (out / "steps.jsonl").read_text().splitlines()]
    assert len(steps) == 2 and all(s["lm_loss"] > 0 and s["cls_loss"] > 0 for s in steps)
    dev = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()][-1]
    assert dev["split"] == "validation" and dev["n"] == 4 and 0.0 <= dev["auroc"] <= 1.0

    loaded = load_checkpoint(out / "epoch-1")
    assert loaded.config.eog_token_id == eog_token_id(loaded.tokenizer) and loaded.config.max_input_tokens == 192
    ids = torch.tensor([loaded.tokenizer("Claim: x", add_special_tokens=False)["input_ids"]])
    with torch.no_grad():
        p = loaded.model.head_probs(loaded.model.decoder_hidden(ids)[:, -1])
    assert p.shape == (1,) and 0.0 < p.item() < 1.0
