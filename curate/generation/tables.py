"""The run's tables from its journal: examples, accepted set, every attempt of discarded examples; re-deciding."""

from collections.abc import Mapping, Sequence
from pathlib import Path

import polars as pl

from curate.generation.acceptance import Decision, decide, judge, latest_slots
from curate.generation.fingerprint import check_recorded_inputs
from curate.generation.run_dir import ACCEPTED, EXAMPLES, REJECTED, TRIALS, RunInfo, read_run_info, write_run_info
from schemas.example import Example
from schemas.example_table import chunks
from schemas.files import Journal, atomic_write_bytes, atomic_write_parquet
from schemas.task import TaskSpec
from schemas.trial import Trial

ATTEMPT_COLUMNS = [
    "trial",
    "seed",
    "status",
    "reason",
    "label_pred",
    "explanation",
    "raw_text",
    "finish_reason",
    "completion_tokens",
]


def examples_frame(examples: Sequence[Example], documents: Mapping[str, tuple[str, bool]]) -> pl.DataFrame:
    """One row per example: id, split, label, rendered document, truncated flag and each input field (built a chunk
    at a time, so only one chunk's texts are Python strings at once)."""
    return pl.concat([chunk_frame(chunk, documents) for chunk in chunks(examples)])


def chunk_frame(examples: list[Example], documents: Mapping[str, tuple[str, bool]]) -> pl.DataFrame:
    """`examples_frame` of a few examples, built column by column."""
    fields = list(examples[0].fields) if examples else []
    return pl.DataFrame(
        {
            "id": [ex.id for ex in examples],
            "split": [ex.split for ex in examples],
            "label": [ex.label for ex in examples],
            "document": [documents[ex.id][0] for ex in examples],
            "truncated": [documents[ex.id][1] for ex in examples],
            **{field: [ex.fields[field] for ex in examples] for field in fields},
        }
    )


def write_examples(run_dir: Path, frame: pl.DataFrame) -> None:
    """Save examples.parquet atomically."""
    atomic_write_parquet(frame, run_dir / EXAMPLES)


def attempt_row(trial: Trial) -> dict:
    """The attempt columns of one trial."""
    return {
        "trial": trial.trial,
        "seed": trial.seed,
        "status": trial.status.value,
        "reason": trial.reason,
        "label_pred": trial.label,
        "explanation": trial.explanation,
        "raw_text": trial.raw_text,
        "finish_reason": trial.finish_reason,
        "completion_tokens": trial.completion_tokens,
    }


def write_outputs(
    run_dir: Path, examples: pl.DataFrame, decisions: dict[str, Decision], slots: dict[tuple[str, int], Trial], k: int
) -> None:
    """Write accepted.parquet (one row per accepted example) and rejected.parquet (every attempt of discarded ones)."""
    accepted, rejected = [], []
    for example_id, decision in decisions.items():
        if decision.state == "accepted":
            trial = slots[(example_id, decision.trial)]
            accepted.append(
                {
                    "id": example_id,
                    "explanation": trial.explanation,
                    "trial": trial.trial,
                    "seed": trial.seed,
                    "raw_text": trial.raw_text,
                    "model_id": trial.model_id,
                }
            )
        elif decision.state == "discarded":
            rejected.extend({"id": example_id, **attempt_row(slots[(example_id, n)])} for n in range(1, k + 1))
    accepted_schema = {
        "id": pl.String,
        "explanation": pl.String,
        "trial": pl.Int64,
        "seed": pl.Int64,
        "raw_text": pl.String,
        "model_id": pl.String,
    }
    rejected_schema = {
        "id": pl.String,
        "trial": pl.Int64,
        "seed": pl.Int64,
        "status": pl.String,
        "reason": pl.String,
        "label_pred": pl.Int64,
        "explanation": pl.String,
        "raw_text": pl.String,
        "finish_reason": pl.String,
        "completion_tokens": pl.Int64,
    }
    accepted_frame = examples.join(pl.DataFrame(accepted, schema=accepted_schema), on="id", how="inner")
    rejected_frame = examples.join(pl.DataFrame(rejected, schema=rejected_schema), on="id", how="inner")
    atomic_write_parquet(accepted_frame.sort("split", "id"), run_dir / ACCEPTED)
    atomic_write_parquet(rejected_frame.sort("split", "id", "trial"), run_dir / REJECTED)


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
    check_recorded_inputs(run_dir, info)
    if min_explanation_chars is not None:
        info.config.min_explanation_chars = min_explanation_chars
    task = TaskSpec.model_validate(info.task_spec)
    trials = Journal(run_dir / TRIALS, Trial).load()
    rejudged = [judge(trial, task, info.config.min_explanation_chars) for trial in trials]
    changed = sum(old.status != new.status for old, new in zip(trials, rejudged, strict=True))
    atomic_write_bytes(run_dir / TRIALS, b"".join(t.model_dump_json().encode() + b"\n" for t in rejudged))
    decisions = finalize_run(run_dir, info, latest_slots(rejudged))
    return changed, summarize(decisions)
