"""`evaluate predict --engine vllm` (LoRA on a generate instance, pooling + head for the probability) agrees with
the transformers path on a SmolLM2 checkpoint whose LoRA is non-zero (so an adapter left out would show)."""

import json
from pathlib import Path

import polars as pl
import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer
from typer.testing import CliRunner

from evaluate.cli import app
from evaluate.predict_run import INFO, PREDICTIONS
from schemas.task import load_task
from train.checkpoint import DualHeadConfig, save_weights
from train.config import TrainConfig
from train.data import eog_token_id
from train.model import build_model

runner = CliRunner()


@pytest.fixture(scope="module")
def smollm2_checkpoint(smollm2_dir, tmp_path_factory) -> Path:
    """A SmolLM2 checkpoint in train's format with random LoRA B weights and head (no training: seconds)."""
    torch.manual_seed(0)
    base = AutoModelForCausalLM.from_pretrained(smollm2_dir, dtype=torch.float32)
    task = load_task("clinifact")
    model = build_model(base, TrainConfig(head_hidden=64), task.positive_label)
    with torch.no_grad():
        for name, weight in model.lm.named_parameters():
            if "lora_B" in name:
                weight.normal_(std=0.02)
    path = tmp_path_factory.mktemp("smollm2-ckpt") / "epoch-1"
    path.mkdir()
    config = DualHeadConfig(
        base_model=str(smollm2_dir),
        hidden_size=base.config.hidden_size,
        head_hidden=64,
        head_dropout=0.1,
        task_spec=task.model_dump(mode="json"),
        max_input_tokens=256,
        eog_token_id=eog_token_id(AutoTokenizer.from_pretrained(smollm2_dir)),
        objective="joint",
        dataset_dir="none",
        dataset_version="random@0.0.0",
        epoch=1,
    )
    save_weights(path, model.lm, model.state_dict(), config)
    return path


@pytest.mark.slow
def test_vllm_engine_agrees_with_the_transformers_path(smollm2_checkpoint, clinifact_dir, tmp_path) -> None:
    rows = tmp_path / "rows.jsonl"
    frame = pl.read_csv(clinifact_dir / "test_set.csv", infer_schema_length=0).head(2).select("index", "claim")
    frame.with_columns(article_abstract=pl.lit("The drug improved survival at one year (p<0.01).")).write_ndjson(rows)
    args = ["predict", "--checkpoint", str(smollm2_checkpoint), "--input", str(rows), "--max-new-tokens", "6"]
    outputs = {}
    for engine in ("hf", "vllm"):
        out = tmp_path / engine
        result = runner.invoke(app, [*args, "--out", str(out), "--engine", engine])
        assert result.exit_code == 0, result.output
        outputs[engine] = pl.read_parquet(out / PREDICTIONS)
        assert json.loads((out / INFO).read_text())["engine"] == engine
    hf, vllm = outputs["hf"], outputs["vllm"]
    assert hf["id"].to_list() == vllm["id"].to_list() == frame["index"].to_list()
    diff = (hf["probability"] - vllm["probability"]).abs().max()
    assert diff < 1e-3, diff
    assert hf["explanation"].to_list() == vllm["explanation"].to_list()  # greedy, fp32: the same tokens
    assert hf["parse_status"].to_list() == vllm["parse_status"].to_list()
