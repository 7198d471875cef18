"""Acceptance from the journal alone: finalize a run's tables, or re-judge every trial under new rules."""

from pathlib import Path

import polars as pl

from curate.acceptance import Decision, decide, judge, latest_slots
from curate.journal import Journal
from curate.outputs import write_outputs
from curate.run_dir import EXAMPLES, TRIALS, RunInfo, atomic_write_bytes, read_run_info, write_run_info
from schemas.task import TaskSpec
from schemas.trial import Trial


def summarize(decisions: dict[str, Decision]) -> dict[str, int]:
    """Counts of accepted, discarded and pending examples."""
    counts = {"examples": len(decisions), "accepted": 0, "discarded": 0, "pending": 0}
    for decision in decisions.values():
        counts[decision.state] += 1
    return counts


def finalize_run(run_dir: Path, info: RunInfo, slots: dict[tuple[str, int], Trial]) -> dict[str, Decision]:
    """Decide every example, write accepted/rejected tables and the run's status and counts."""
    examples = pl.read_parquet(run_dir / EXAMPLES)
    k = info.config.k
    decisions = {example_id: decide(example_id, slots, k) for example_id in examples["id"]}
    write_outputs(run_dir, examples, decisions, slots, k)
    info.counts = summarize(decisions)
    info.status = "partial" if info.counts["pending"] else "done"
    write_run_info(run_dir, info)
    return decisions


def redecide(run_dir: Path, min_explanation_chars: int | None) -> tuple[int, dict[str, int]]:
    """Re-judge every journaled trial with the current parsing rules; return (status changes, counts)."""
    info = read_run_info(run_dir)
    if min_explanation_chars is not None:
        info.config.min_explanation_chars = min_explanation_chars
    task = TaskSpec.model_validate(info.task_spec)
    trials = Journal(run_dir / TRIALS, Trial).load()
    rejudged = [judge(trial, task, info.config.min_explanation_chars) for trial in trials]
    changed = sum(old.status != new.status for old, new in zip(trials, rejudged))
    atomic_write_bytes(run_dir / TRIALS, b"".join(t.model_dump_json().encode() + b"\n" for t in rejudged))
    decisions = finalize_run(run_dir, info, latest_slots(rejudged))
    return changed, summarize(decisions)
