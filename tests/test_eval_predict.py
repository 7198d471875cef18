"""`evaluate predict` on unlabeled rows with a tiny trained checkpoint: outputs equal evaluate's own predict, the
threshold is recorded, a kill -9 then a rerun predicts every row exactly once, and bad input exits 2 writing nothing."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from evaluate.cli import app
from evaluate.config import EvalConfig
from evaluate.predict import predict
from evaluate.predict_inputs import document_mapping, read_documents
from evaluate.predict_run import INFO, JOURNAL, PREDICTIONS, PREDICTIONS_JSONL
from schemas.example import Example
from schemas.task import load_task
from tests.eval_fixtures import clinifact_version, draw_progress_into, train_one_epoch
from train.checkpoint import load_checkpoint

runner = CliRunner()
FAST = ["--max-new-tokens", "4", "--batch-size", "4"]


@pytest.fixture(scope="module")
def checkpoint(tiny_model_dir, clinifact_dir, tmp_path_factory) -> Path:
    """epoch-1 of a tiny dual-head model trained on a CliniFact slice."""
    root = tmp_path_factory.mktemp("predict")
    version = clinifact_version(clinifact_dir, root / "registry", per_split=6)
    return train_one_epoch(version, tiny_model_dir, root / "run") / "epoch-1"


@pytest.fixture(scope="module")
def unlabeled(clinifact_dir, tmp_path_factory) -> Path:
    """The first 24 CliniFact test rows with the label column dropped and abstracts cut to 300 characters, as CSV."""
    frame = pl.read_csv(clinifact_dir / "test_set.csv", infer_schema_length=0).head(24).drop("label")
    frame = frame.with_columns(pl.col("article_abstract").str.slice(0, 300))
    path = tmp_path_factory.mktemp("unlabeled") / "new_claims.csv"
    frame.write_csv(path)
    return path


def test_predict_writes_the_outputs_of_evaluates_predict_at_the_recorded_threshold(
    checkpoint, unlabeled, tmp_path, monkeypatch
) -> None:
    drawn = draw_progress_into(monkeypatch)
    out = tmp_path / "out"
    args = ["predict", "--checkpoint", str(checkpoint), "--input", str(unlabeled), "--out", str(out), *FAST]
    result = runner.invoke(app, [*args, "--limit", "5", "--threshold", "0.3", "--jsonl"])
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("threshold 0.3000 (--threshold)")
    rows = pl.read_parquet(out / PREDICTIONS)
    task = load_task("clinifact")
    documents = read_documents(unlabeled, task, document_mapping(task, None, []))[:5]
    examples = [Example(id=d.id, fields=d.fields, label=0) for d in documents]  # predict() wants a (dummy) label
    direct = predict(load_checkpoint(checkpoint), examples, EvalConfig(max_new_tokens=4, batch_size=4))
    assert rows["id"].to_list() == pl.read_csv(unlabeled, infer_schema_length=0)["index"].head(5).to_list()
    assert [e.id for e in examples] == rows["id"].to_list()
    assert rows["probability"].to_list() == pytest.approx([r.p_head for r in direct], abs=1e-5)
    assert rows["label"].to_list() == [int(r.p_head >= 0.3) for r in direct]
    assert rows["parse_status"].to_list() == [r.parse_status for r in direct]
    assert [json.loads(line)["id"] for line in (out / PREDICTIONS_JSONL).read_text().splitlines()] == rows[
        "id"
    ].to_list()
    info = json.loads((out / INFO).read_text())
    assert info["decision"] == {"threshold": 0.3, "source": "--threshold"} and info["rows"] == 5
    assert "5/5" in drawn.getvalue()
    again = runner.invoke(app, [*args, "--limit", "5"])  # no selection.json: 0.5, said so; nothing re-predicted
    assert again.exit_code == 0 and "threshold 0.5000 (default 0.5" in again.stdout and "(5 resumed)" in again.stdout
    assert pl.read_parquet(out / PREDICTIONS)["label"].to_list() == [int(r.p_head >= 0.5) for r in direct]


def test_a_killed_predict_resumes_and_predicts_every_row_exactly_once(checkpoint, unlabeled, tmp_path) -> None:
    out = tmp_path / "out"
    args = ["predict", "--checkpoint", str(checkpoint), "--input", str(unlabeled), "--out", str(out)]
    args += ["--max-new-tokens", "8", "--batch-size", "1"]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    child = subprocess.Popen([sys.executable, "-m", "evaluate", *args], env=env, stdout=subprocess.DEVNULL)
    journal = out / JOURNAL
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and child.poll() is None:
        if journal.is_file() and journal.read_bytes().count(b"\n") >= 2:
            break
        time.sleep(0.02)
    assert child.poll() is None, "predict finished before it could be killed"
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    before = journal.read_bytes().count(b"\n")
    assert 2 <= before < 24 and not (out / PREDICTIONS).exists()
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    ids = [json.loads(line)["id"] for line in journal.read_text().splitlines()]
    assert len(ids) == len(set(ids)) == 24  # journaled once each: the resumed run predicted only the rest
    assert f"({before} resumed)" in result.stdout
    assert sorted(pl.read_parquet(out / PREDICTIONS)["id"].to_list()) == sorted(ids)
    changed = runner.invoke(app, [*args[:-4], "--max-new-tokens", "6"])  # other decoding: refused, not mixed
    assert changed.exit_code == 2 and "changed: decoding" in changed.output


def copy_checkpoint(checkpoint: Path, to: Path) -> Path:
    """A copy of the checkpoint's files (without its evaluation outputs)."""
    shutil.copytree(checkpoint, to, ignore=shutil.ignore_patterns("resume", "eval"))
    return to


def test_bad_input_exits_2_naming_the_file_and_writes_nothing(checkpoint, unlabeled, smollm2_dir, tmp_path) -> None:
    no_head = copy_checkpoint(checkpoint, tmp_path / "no-head")
    (no_head / "cls_head.safetensors").unlink()
    other_base = copy_checkpoint(checkpoint, tmp_path / "other-base")
    head = json.loads((other_base / "dual_head.json").read_text())
    (other_base / "dual_head.json").write_text(json.dumps({**head, "base_model": str(smollm2_dir)}))
    missing_column = tmp_path / "claims_only.csv"
    pl.read_csv(unlabeled, infer_schema_length=0).drop("article_abstract").write_csv(missing_column)
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    cases = {
        "cls_head.safetensors is missing": ["--checkpoint", str(no_head)],
        "was not trained on the base model": ["--checkpoint", str(other_base)],
        "missing column(s) ['article_abstract']": ["--input", str(missing_column)],
        "empty.jsonl is empty": ["--input", str(empty)],
        "less than or equal to 1": ["--threshold", "1.5"],
    }
    for expected, change in cases.items():
        out = tmp_path / f"out-{len(expected)}"
        args = {"--checkpoint": str(checkpoint), "--input": str(unlabeled), "--out": str(out)}
        args.update(dict(zip(change[::2], change[1::2], strict=True)))
        result = runner.invoke(app, ["predict", *[x for pair in args.items() for x in pair], *FAST])
        assert result.exit_code == 2, (expected, result.output)
        assert expected in " ".join(result.output.split()) and not out.exists(), expected
        assert "Traceback" not in result.output
