"""The journal as polars frames: one row per trial slot, and each example's outcome under Algorithm 1."""

import io
from pathlib import Path

import polars as pl

from curate.generation.run_dir import EXAMPLES, TRIALS
from schemas.trial import TrialStatus

STATUS = pl.Enum([status.value for status in TrialStatus])
FAILURES = [status.value for status in TrialStatus if status is not TrialStatus.accepted]
TRIAL_SCHEMA = {
    "example_id": pl.String,
    "split": pl.String,
    "gold_label": pl.Int64,
    "trial": pl.Int64,
    "status": pl.String,
    "reason": pl.String,
    "label": pl.Int64,
    "explanation": pl.String,
    "raw_text": pl.String,
    "prompt_tokens": pl.Int64,
    "completion_tokens": pl.Int64,
    "latency_s": pl.Float64,
    "created_at": pl.Float64,
}


def read_trials(run_dir: Path, columns: list[str] | None = None, journal: str = TRIALS) -> pl.DataFrame:
    """Rows of a journal (`trials.jsonl` unless named), the last row per (example_id, trial) winning; a torn last
    line is ignored, not cut. A run with no journal yet has no trials.
    """
    path = Path(run_dir) / journal
    data = path.read_bytes() if path.is_file() else b""
    data = data[: data.rfind(b"\n") + 1]
    wanted = columns or list(TRIAL_SCHEMA)
    schema = {name: TRIAL_SCHEMA[name] for name in dict.fromkeys(["example_id", "trial", "status", *wanted])}
    if not data:
        return pl.DataFrame(schema=schema).with_columns(pl.col("status").cast(STATUS))
    try:
        frame = pl.read_ndjson(io.BytesIO(data), schema=schema)
    except pl.exceptions.PolarsError as err:
        raise ValueError(f"{path} is corrupt: {err}; repair or remove the bad line, then rerun") from err
    frame = frame.with_columns(pl.col("status").cast(STATUS))
    return frame.unique(subset=["example_id", "trial"], keep="last", maintain_order=True)


def read_examples(run_dir: Path) -> pl.DataFrame:
    """`examples.parquet` of a run; ValueError when it is missing."""
    path = Path(run_dir) / EXAMPLES
    if not path.is_file():
        raise ValueError(f"{run_dir} has no {EXAMPLES}: run `curate generate` first")
    return pl.read_parquet(path)


def minority_label(examples: pl.DataFrame) -> int:
    """The rarer gold label over all examples of a run (ties go to 1)."""
    positives = int(examples["label"].sum())
    return 1 if positives <= examples.height - positives else 0


def example_outcomes(examples: pl.DataFrame, trials: pl.DataFrame, k: int) -> pl.DataFrame:
    """Per example: `outcome`, `accepted_trial` and `attempts` (trials that counted), as `curate decide` rules.

    Trials are walked in order: the first accepted one wins unless a missing or errored slot comes first, which
    leaves the example `pending`; K judged failures make it `discarded`.
    """
    judged = trials.filter((pl.col("status") != "error") & pl.col("trial").is_between(1, k)).sort("example_id", "trial")
    per_example = judged.group_by("example_id").agg(
        accepted_trial=pl.col("trial").filter(pl.col("status") == "accepted").min(),
        prefix=(pl.col("trial") == pl.int_range(1, pl.len() + 1)).sum(),
    )
    frame = examples.select("id", "split", "label").join(
        per_example, left_on="id", right_on="example_id", how="left", maintain_order="left"
    )
    accepted = pl.col("accepted_trial") <= pl.col("prefix")
    return frame.with_columns(
        accepted_trial=pl.when(accepted).then("accepted_trial"),
        attempts=pl.when(accepted).then("accepted_trial").otherwise(pl.col("prefix").fill_null(0)),
        outcome=pl.when(accepted)
        .then(pl.lit("accepted"))
        .when(pl.col("prefix") >= k)
        .then(pl.lit("discarded"))
        .otherwise(pl.lit("pending")),
    ).drop("prefix")


def effective_trials(trials: pl.DataFrame, outcomes: pl.DataFrame, k: int) -> pl.DataFrame:
    """Trials up to K and, for an accepted example, up to its accepted trial (later parallel ones are waste)."""
    joined = trials.join(outcomes.select("id", "accepted_trial"), left_on="example_id", right_on="id", how="inner")
    return joined.filter(pl.col("trial") <= pl.coalesce("accepted_trial", pl.lit(k)))
