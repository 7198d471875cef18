"""Integrity checks that must never pass silently: leakage by id or normalised text, splits left with one class,
and `evaluate select` failing fast (before any inference) on a dev split without negatives."""

from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

import curate.cli
import evaluate.cli
from evaluate.io import PredictionRow
from evaluate.pipeline import write_outputs
from evaluate.select import dev_eval_dir, select_epoch
from evaluate.summary import summarize
from schemas.integrity import balance_problem, content_hash, find_overlap, missing_class
from schemas.task import load_task
from tests.train_fixtures import TOY_TASK, synthetic_rows, write_version
from train.config import TrainConfig
from train.loop import train_run

TASK = load_task("clinifact")


def test_content_hash_ignores_case_and_whitespace_but_not_words():
    base = content_hash({"claim": "Drug A helps.", "article_abstract": "It did."})
    assert content_hash({"article_abstract": " it  DID.\n", "claim": "drug a\thelps."}) == base
    assert content_hash({"claim": "Drug B helps.", "article_abstract": "It did."}) != base
    overlap = find_overlap([("t1", {"claim": "DRUG A HELPS.", "article_abstract": "it did."})], [("x", {})])
    assert (overlap.by_id, overlap.by_content) == ([], [])


def test_class_problems_in_plain_words():
    assert missing_class("validation", 3, 3, TASK) == "validation has no negative examples (FALSE)"
    assert missing_class("train", 4, 0, TASK) == "train has no positive examples (TRUE)"
    assert missing_class("validation", 0, 0, TASK) == "validation has no examples"
    assert missing_class("train", 4, 1, TASK) is None
    assert balance_problem("train", (30, 10), (20, 10), TASK, 0.15) == (
        "train: the positive share moved from 0.33 in the input to 0.50 (+0.17, more than the 0.15 margin)"
    )
    assert balance_problem("train", (30, 10), (20, 10), TASK, 0.2) is None


def test_generate_says_when_validation_repeats_train_text(tiny_model_dir: Path, tmp_path: Path):
    header = ["index", "claim", "article_abstract", "label"]
    train = [("a", "Drug A helps.", "It did.", "1"), ("b", "Drug B helps.", "It did not.", "0")]
    validation = [("c", "  drug a HELPS.", "It   did.", "1"), ("d", "Drug D helps.", "Unclear.", "0")]
    for name, rows in (("train", train), ("validation", validation)):
        pl.DataFrame(rows, schema=header, orient="row").write_csv(tmp_path / f"{name}.csv")
    args = ["generate", "--task", "clinifact", "--engine", f"hf:{tiny_model_dir}", "--out", str(tmp_path / "run")]
    inputs = ["--input", str(tmp_path / "train.csv"), "--input", str(tmp_path / "validation.csv")]
    result = CliRunner().invoke(curate.cli.app, [*args, *inputs, "--dry-run"])
    assert result.exit_code == 0, result.output
    assert "validation shares 1 examples with train (0 by id, 1 by content; e.g. c)" in " ".join(result.output.split())


def test_select_fails_before_any_inference_when_dev_has_no_negatives(tiny_model_dir: Path, tmp_path: Path):
    positives = [row for row in synthetic_rows(6, 2) if row["label"] == 1]
    splits = {"train": synthetic_rows(8, 1), "validation": positives}
    version = write_version(tmp_path / "registry", "onecls", "1.0.0", splits, TOY_TASK)
    cfg = TrainConfig(epochs=1, head_hidden=16, batch_size=4, pack_tokens=256, allow_one_class_dev=True)
    run = train_run(cfg, version, str(tiny_model_dir), tmp_path / "run")
    result = CliRunner().invoke(evaluate.cli.app, ["select", str(run), "--dataset", str(version), "--device", "cpu"])
    assert result.exit_code == 2, result.output
    message = " ".join(result.output.split())
    assert "validation has no negative examples (FALSE), so AUROC is undefined on dev" in message
    assert "publish a version whose validation split has both classes" in message
    assert not (run / "epoch-1" / "eval").exists() and not (run / "selection.json").exists()

    rows = [
        PredictionRow(id=r["id"], gold=1, p_head=0.7, text="t", verbalized_label=None, parse_status="unparseable")
        for r in positives
    ]
    summary = summarize(rows, method="clsgen", split="validation", thresholds=None, threshold_source=None, source={})
    write_outputs(rows, summary, dev_eval_dir(run / "epoch-1"))  # dev predictions made before the check existed
    with pytest.raises(ValueError, match="no epoch can be scored") as err:
        select_epoch(run, None)
    assert "auroc: undefined at 1 of 1 epochs (the gold labels hold no negative examples" in str(err.value)
