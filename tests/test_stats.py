"""`curate stats`: Table 7, failure reasons, acceptance curve and tokens from the journal; CLI files and errors."""

import json
import random
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from curate.cli import app
from curate.generation.acceptance import decide, latest_slots
from curate.generation.outcomes import example_outcomes, read_examples, read_trials
from curate.generation.run_dir import TRIALS
from curate.stats.compute import DropReport, compute_report
from schemas.task import load_task
from tests.run_fixtures import (
    STATUSES,
    clinifact_examples,
    make_trial,
    random_plan,
    synthetic_examples,
    synthetic_run,
    write_run,
)

TASK = load_task("clinifact")
WIDE = {"COLUMNS": "200"}  # rich wraps tables to the terminal width


def expected_outcome(statuses: list[str], k: int) -> str:
    """What a scripted plan means: accepted at its accepted trial, discarded after K failures."""
    return "accepted" if statuses[-1] == "accepted" else ("discarded" if len(statuses) == k else "pending")


@pytest.fixture()
def run(tmp_path: Path):
    """A 2-split synthetic run with K=3 and its plan."""
    return synthetic_run(tmp_path / "run", 30, k=3, seed=7)


@pytest.mark.parametrize("seed", range(5))
def test_outcomes_agree_with_decide_on_messy_journals(tmp_path: Path, seed: int):
    rng = random.Random(seed)
    examples = synthetic_examples(25, splits=("train",))
    k = 4
    trials = []
    for example in examples:  # any slot order, gaps, repeated error rows, retries, waste after acceptance
        for number in rng.sample(range(1, k + 1), rng.randint(0, k)):
            for _ in range(rng.randint(1, 2)):
                trials.append(make_trial(example, number, rng.choice(STATUSES), TASK, 0.0))
    rng.shuffle(trials)
    write_run(tmp_path / "run", examples, {}, k=k, extra_trials=trials)
    slots = latest_slots(trials)
    outcomes = example_outcomes(read_examples(tmp_path / "run"), read_trials(tmp_path / "run"), k)
    for example_id, outcome, accepted_trial in outcomes.select("id", "outcome", "accepted_trial").iter_rows():
        decision = decide(example_id, slots, k)
        assert (outcome, accepted_trial) == (decision.state, decision.trial), example_id


def test_table7_counts_follow_the_plan(run):
    run_dir, examples, plan = run
    report = compute_report(run_dir)
    for split in ("train", "validation"):
        rows = [ex for ex in examples if ex.split == split]
        for kind, table in (("accepted", report.table7[split].generated), ("discarded", report.table7[split].failed)):
            chosen = [ex for ex in rows if expected_outcome(plan[ex.id], 3) == kind]
            assert table.positive == sum(ex.label == 1 for ex in chosen)
            assert table.negative == sum(ex.label == 0 for ex in chosen)
        original = report.table7[split].original
        assert (original.negative, original.positive) == (
            sum(ex.label == 0 for ex in rows),
            sum(ex.label for ex in rows),
        )
        assert original.positive_share == pytest.approx(original.positive / len(rows))
    assert report.table7["train"].failed.positive > 0, "the fixture should drop some minority examples"


def test_failure_reasons_and_acceptance_curve_follow_the_plan(run):
    run_dir, examples, plan = run
    report = compute_report(run_dir)
    label = {ex.id: "positive" if ex.label == 1 else "negative" for ex in examples}
    for name in ("negative", "positive"):
        ids = [i for i in plan if label[i] == name]
        for status in ("wrong_label", "unparseable", "invalid", "truncated", "error"):
            assert report.failures[name][status] == sum(plan[i].count(status) for i in ids)
        accepted_at = [len(plan[i]) for i in ids if plan[i][-1] == "accepted"]
        assert report.cumulative[name] == [sum(t <= k for t in accepted_at) for k in (1, 2, 3)]
        assert report.class_totals[name] == len(ids)
    n_trials = sum(len(s) for s in plan.values())
    n_accepted = sum(s[-1] == "accepted" for s in plan.values())
    assert report.trials == n_trials
    spent = sum(40 + 7 * n for s in plan.values() for n in range(1, len(s) + 1))
    assert report.tokens.completion_total == spent
    assert report.tokens.completion_per_accepted == pytest.approx(spent / n_accepted)
    assert report.throughput.trials_per_s == pytest.approx(n_trials / report.throughput.wall_s)


def test_last_row_of_a_slot_wins_and_open_slots_are_pending(tmp_path: Path):
    examples = synthetic_examples(3, splits=("train",))
    a, b, c = examples
    retried = [make_trial(a, 1, "error", TASK, 1.0), make_trial(a, 1, "accepted", TASK, 2.0)]
    still_failing = [make_trial(b, 1, "accepted", TASK, 1.0), make_trial(b, 1, "error", TASK, 2.0)]
    write_run(
        tmp_path / "run", examples, {c.id: ["wrong_label", "accepted"]}, k=2, extra_trials=retried + still_failing
    )
    report = compute_report(tmp_path / "run")
    table = report.table7["train"]
    assert table.generated.negative + table.generated.positive == 2  # a (retried) and c
    assert table.pending == 1  # b: its last row for trial 1 is an error
    assert report.failures["negative"]["error"] + report.failures["positive"]["error"] == 1


def test_torn_last_line_is_ignored_and_the_journal_left_alone(run):
    run_dir, _, _ = run
    before = compute_report(run_dir)
    with (run_dir / TRIALS).open("ab") as handle:
        handle.write(b'{"example_id": "train-0", "trial": 9, "sta')
    size = (run_dir / TRIALS).stat().st_size
    assert compute_report(run_dir).table7 == before.table7
    assert (run_dir / TRIALS).stat().st_size == size


def test_cli_prints_and_writes_md_json_png(run):
    run_dir, _, _ = run
    result = CliRunner().invoke(app, ["stats", str(run_dir)], env=WIDE)
    assert result.exit_code == 0, result.output
    assert "Successfully generated" in result.output and "Cumulative acceptance" in result.output
    saved = DropReport.model_validate_json((run_dir / "stats.json").read_text())
    assert saved.table7 == compute_report(run_dir).table7
    markdown = (run_dir / "stats.md").read_text()
    train = saved.table7["train"].generated
    assert f"| Successfully generated | {train.negative} | {train.positive} |" in markdown
    assert (run_dir / "stats.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_compare_shows_two_runs_side_by_side(tmp_path: Path):
    examples = synthetic_examples(10)
    write_run(tmp_path / "k2", examples, random_plan(examples, 2, seed=1), k=2)
    write_run(tmp_path / "k5", examples, random_plan(examples, 5, seed=1), k=5)
    result = CliRunner().invoke(app, ["stats", "--compare", str(tmp_path / "k2"), str(tmp_path / "k5")], env=WIDE)
    assert result.exit_code == 0, result.output
    k_row = next(line for line in result.output.splitlines() if line.strip("│ ").startswith("K "))
    assert "2" in k_row and "5" in k_row
    assert "positive: accepted by trial K" in result.output
    assert not (tmp_path / "k2" / "stats.json").exists()


@pytest.mark.parametrize("damage", ["missing", "corrupt"])
def test_bad_run_dir_exits_2_naming_the_file(run, damage: str):
    run_dir, _, _ = run
    if damage == "missing":
        target = run_dir.parent / "nowhere"
    else:
        lines = (run_dir / TRIALS).read_bytes().splitlines(keepends=True)
        (run_dir / TRIALS).write_bytes(lines[0] + b"{not json}\n" + b"".join(lines[1:]))
        target = run_dir
    result = CliRunner().invoke(app, ["stats", str(target)])
    assert result.exit_code == 2
    assert str(target) in result.output.replace("\n", "")
    assert not (run_dir / "stats.json").exists()


def test_clinifact_rows_original_counts_match_the_csv(tmp_path: Path, clinifact_dir: Path):
    examples = clinifact_examples(clinifact_dir, 40)
    write_run(tmp_path / "run", examples, random_plan(examples, 3), k=3)
    report = compute_report(tmp_path / "run")
    for split, name in (("train", "train_set.csv"), ("validation", "validation_set.csv")):
        raw = pl.read_csv(clinifact_dir / name, infer_schema_length=0).head(40)
        positives = int((raw["label"] == "1").sum())  # the paper's binarisation: 1 -> TRUE, 0 and 2 -> FALSE
        assert (report.table7[split].original.positive, report.table7[split].original.negative) == (
            positives,
            40 - positives,
        )
    assert json.loads(report.model_dump_json())["verbalizers"] == {"negative": "FALSE", "positive": "TRUE"}


def test_one_class_and_moved_share_are_shown_and_written(tmp_path: Path):
    examples = synthetic_examples(9)
    train_negatives = [ex.id for ex in examples if ex.split == "train" and not ex.label]
    failing = {*train_negatives[:4], *(ex.id for ex in examples if ex.split == "validation" and not ex.label)}
    write_run(
        tmp_path / "run",
        examples,
        {ex.id: ["wrong_label"] if ex.id in failing else ["accepted"] for ex in examples},
        k=1,
    )
    result = CliRunner().invoke(app, ["stats", str(tmp_path / "run")], env=WIDE)
    assert result.exit_code == 0, result.output
    shift = "train: the positive share moved from 0.33 in the input to 0.60 (+0.27, more than the 0.15 margin)"
    expected = [shift, "validation has no negative examples (FALSE)"]
    shown = " ".join(result.output.split())
    assert "Class balance warnings" in shown and all(text in shown for text in expected)
    assert json.loads((tmp_path / "run" / "stats.json").read_text())["class_warnings"] == expected
    markdown = (tmp_path / "run" / "stats.md").read_text()
    assert all(f"| {text} |" in markdown for text in expected)
    quiet = CliRunner().invoke(app, ["stats", str(tmp_path / "run"), "--share-margin", "0.3"], env=WIDE)
    assert shift not in " ".join(quiet.output.split()) and "no negative examples" in quiet.output
