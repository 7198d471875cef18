"""Rows of a dataset release: teacher-accepted examples, human-kept reviews, and the gold-only test split."""

from pathlib import Path

import polars as pl

from curate.generation.fingerprint import check_recorded_inputs
from curate.generation.outcomes import example_outcomes, read_examples, read_trials
from curate.generation.run_dir import RunInfo
from curate.rationalize.state import PROVENANCE, rationalization, read_rationalize_info
from curate.review.queue import REVIEWS
from schemas.inputs import input_mapping, load_examples
from schemas.manifest import IncludedRows, RationalizationSummary, ReviewSummary
from schemas.task import TaskSpec


def release_schema(task: TaskSpec) -> dict[str, pl.DataType]:
    """Column order and types of every published split."""
    return {
        "id": pl.String,
        "label": pl.Int64,
        **{name: pl.String for name in task.input_fields},
        "explanation": pl.String,
        "target": pl.String,
        "provenance": pl.String,
        "trial": pl.Int64,
    }


def with_targets(frame: pl.DataFrame, task: TaskSpec) -> pl.DataFrame:
    """Add the training target text (explanation and verbalized label) to rows with an explanation."""
    targets = [task.render_target(text, label) for text, label in frame.select("explanation", "label").iter_rows()]
    return frame.with_columns(target=pl.Series(targets, dtype=pl.String))


def latest_reviews(run_dir: Path) -> pl.DataFrame:
    """The latest submitted review of each example from `reviews.parquet` (ties: the last reviewer by name)."""
    path = Path(run_dir) / REVIEWS
    if not path.is_file():
        raise ValueError(f"{path} not found: run `curate review pull {run_dir}` first, or publish without --reviews")
    reviews = pl.read_parquet(path)
    return reviews.sort("example_id", "time", "reviewer").group_by("example_id", maintain_order=True).last()


def accepted_rows(outcomes: pl.DataFrame, trials: pl.DataFrame, provenance: str) -> pl.DataFrame:
    """The explanation of each accepted example's accepted trial, marked with `provenance`."""
    return (
        outcomes.filter(pl.col("outcome") == "accepted")
        .join(
            trials.select("example_id", "trial", "explanation"),
            left_on=["id", "accepted_trial"],
            right_on=["example_id", "trial"],
        )
        .select("id", "explanation", trial="accepted_trial", provenance=pl.lit(provenance))
    )


def rationalized_rows(run_dir: Path, outcomes: pl.DataFrame, reviewed: list[str]) -> pl.DataFrame:
    """Accepted rationalizations (provenance `rationalized`) of discarded examples; a human decision on an example
    (`reviewed`) replaces its rationalization."""
    found = rationalization(run_dir, outcomes, ["explanation"])
    if found is None:
        raise ValueError(
            f"{run_dir} was never rationalized: run `curate rationalize {run_dir}` first,"
            " or publish without --include rationalized"
        )
    return accepted_rows(found.outcomes.filter(~pl.col("id").is_in(reviewed)), found.trials, PROVENANCE)


def rationalization_summary(
    run_dir: Path, frames: dict[str, pl.DataFrame], include: list[IncludedRows]
) -> RationalizationSummary | None:
    """The manifest's record of the rationalized rows published, or None when they were not asked for."""
    info = read_rationalize_info(run_dir)
    if IncludedRows.rationalized not in include or info is None:
        return None
    return RationalizationSummary(
        k=info.config.k,
        engine=info.config.engine,
        teacher_model=info.model_id,
        rows={split: int((frame["provenance"] == PROVENANCE).sum()) for split, frame in frames.items()},
    )


def run_rows(
    run_dir: Path,
    info: RunInfo,
    task: TaskSpec,
    reviews: bool,
    allow_pending: bool = False,
    include_rationalized: bool = False,
) -> tuple[pl.DataFrame, ReviewSummary | None]:
    """Accepted examples (provenance `teacher`) plus, with `reviews`, human-kept ones and, with
    `include_rationalized`, rationalized ones, in examples.parquet order."""
    check_recorded_inputs(run_dir, info)
    examples = read_examples(run_dir)
    trials = read_trials(run_dir, ["status", "explanation"])
    outcomes = example_outcomes(examples, trials, info.config.k)
    pending = int((outcomes["outcome"] == "pending").sum())
    if pending and not allow_pending:
        raise ValueError(
            f"{run_dir}: {pending} examples are still pending (run not finished): resume it with"
            f" `curate generate --out {run_dir}`, or pass --allow-pending to leave them out"
        )
    accepted = accepted_rows(outcomes, trials, "teacher")
    chosen, summary, reviewed = accepted, None, []
    if reviews:
        decisions = latest_reviews(run_dir).join(outcomes.select("id", "outcome"), left_on="example_id", right_on="id")
        discarded = decisions.filter(pl.col("outcome") == "discarded")
        keep = discarded.filter(pl.col("decision") == "keep")
        written = keep.filter(pl.col("explanation").str.strip_chars().str.len_chars() > 0)
        summary = ReviewSummary(
            reviewed=decisions.height,
            kept=written.height,
            dropped_noise=int((discarded["decision"] == "drop_noise").sum()),
            wrong_gold_label=sorted(discarded.filter(pl.col("decision") == "wrong_gold_label")["example_id"]),
            kept_without_explanation=sorted(set(keep["example_id"]) - set(written["example_id"])),
            not_discarded=decisions.height - discarded.height,
        )
        human = written.select(
            id="example_id",
            explanation=pl.col("explanation").str.strip_chars(),
            trial=pl.lit(None, pl.Int64),
            provenance=pl.lit("human"),
        )
        chosen = pl.concat([accepted, human])
        reviewed = discarded["example_id"].to_list()
    if include_rationalized:
        chosen = pl.concat([chosen, rationalized_rows(run_dir, outcomes, reviewed)])
    rows = examples.join(chosen, on="id", how="inner", maintain_order="left")
    return with_targets(rows, task), summary


def test_rows(path: Path, info: RunInfo, task: TaskSpec) -> pl.DataFrame:
    """The test split from its source file with gold labels only, read with the run's column mapping."""
    examples = load_examples(Path(path), task, input_mapping(task, info.config.columns), "test")
    return pl.DataFrame(
        [{"id": ex.id, "split": "test", "label": ex.label, **ex.fields} for ex in examples]
    ).with_columns(explanation=None, target=None, provenance=None, trial=None)


def split_frames(
    rows: pl.DataFrame, splits: list[str], test: pl.DataFrame | None, task: TaskSpec
) -> dict[str, pl.DataFrame]:
    """One frame per split, in the release schema: the run's splits, then `test` when given."""
    schema = release_schema(task)
    frames = {split: rows.filter(pl.col("split") == split).select(list(schema)).cast(schema) for split in splits}
    if test is not None:
        frames["test"] = test.select(list(schema)).cast(schema)
    return frames
