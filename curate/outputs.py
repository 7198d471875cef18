"""Tables of a run directory: the examples, the accepted set and every attempt of discarded examples."""

from pathlib import Path

import polars as pl

from curate.acceptance import Decision
from curate.run_dir import ACCEPTED, EXAMPLES, REJECTED, atomic_write_parquet
from schemas.example import Example
from schemas.trial import Trial

ATTEMPT_COLUMNS = ["trial", "seed", "status", "reason", "label_pred", "explanation", "raw_text", "finish_reason",
                   "completion_tokens"]


def examples_frame(examples: list[Example], documents: dict[str, tuple[str, bool]]) -> pl.DataFrame:
    """One row per example: id, split, label, rendered document, truncated flag and each input field."""
    rows = [
        {"id": ex.id, "split": ex.split, "label": ex.label, "document": documents[ex.id][0],
         "truncated": documents[ex.id][1], **ex.fields}
        for ex in examples
    ]
    return pl.DataFrame(rows)


def write_examples(run_dir: Path, frame: pl.DataFrame) -> None:
    """Save examples.parquet atomically."""
    atomic_write_parquet(frame, run_dir / EXAMPLES)


def attempt_row(trial: Trial) -> dict:
    """The attempt columns of one trial."""
    return {"trial": trial.trial, "seed": trial.seed, "status": trial.status.value, "reason": trial.reason,
            "label_pred": trial.label, "explanation": trial.explanation, "raw_text": trial.raw_text,
            "finish_reason": trial.finish_reason, "completion_tokens": trial.completion_tokens}


def write_outputs(
    run_dir: Path, examples: pl.DataFrame, decisions: dict[str, Decision], slots: dict[tuple[str, int], Trial], k: int
) -> None:
    """Write accepted.parquet (one row per accepted example) and rejected.parquet (every attempt of discarded ones)."""
    accepted, rejected = [], []
    for example_id, decision in decisions.items():
        if decision.state == "accepted":
            trial = slots[(example_id, decision.trial)]
            accepted.append({"id": example_id, "explanation": trial.explanation, "trial": trial.trial,
                             "seed": trial.seed, "raw_text": trial.raw_text, "model_id": trial.model_id})
        elif decision.state == "discarded":
            rejected.extend({"id": example_id, **attempt_row(slots[(example_id, n)])} for n in range(1, k + 1))
    accepted_schema = {"id": pl.String, "explanation": pl.String, "trial": pl.Int64, "seed": pl.Int64,
                       "raw_text": pl.String, "model_id": pl.String}
    rejected_schema = {"id": pl.String, "trial": pl.Int64, "seed": pl.Int64, "status": pl.String,
                       "reason": pl.String, "label_pred": pl.Int64, "explanation": pl.String, "raw_text": pl.String,
                       "finish_reason": pl.String, "completion_tokens": pl.Int64}
    accepted_frame = examples.join(pl.DataFrame(accepted, schema=accepted_schema), on="id", how="inner")
    rejected_frame = examples.join(pl.DataFrame(rejected, schema=rejected_schema), on="id", how="inner")
    atomic_write_parquet(accepted_frame.sort("split", "id"), run_dir / ACCEPTED)
    atomic_write_parquet(rejected_frame.sort("split", "id", "trial"), run_dir / REJECTED)
