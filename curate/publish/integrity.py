"""What publish refuses or reports about a release: test leakage, class balance, reviews left unmerged."""

from pathlib import Path

import polars as pl

from curate.review.queue import REVIEWS
from curate.stats.compute import DropReport, pair
from schemas.integrity import Row, balance_problem, describe_overlap, find_overlap, overlap_ids
from schemas.manifest import TestOverlap
from schemas.task import TaskSpec

OTHER = "train/validation"


def text_rows(frame: pl.DataFrame, task: TaskSpec) -> list[Row]:
    """(id, text fields) of every row of a frame."""
    fields = task.input_fields
    return [(row[0], dict(zip(fields, row[1:], strict=True))) for row in frame.select("id", *fields).iter_rows()]


def checked_overlap(test: pl.DataFrame, known: pl.DataFrame, task: TaskSpec, allow: bool) -> TestOverlap:
    """Test rows also in the run's train/validation inputs (by id or content); ValueError unless `allow`."""
    overlap = find_overlap(text_rows(test, task), text_rows(known, task))
    leaked = bool(overlap_ids(overlap))
    if leaked and not allow:
        raise ValueError(
            f"{describe_overlap(overlap, 'test', OTHER)}: a test split must be held out; remove them from the test"
            " file, or pass --allow-overlap to publish anyway (recorded in the manifest and the card)"
        )
    return overlap.model_copy(update={"allowed": leaked})


def split_warnings(frames: dict[str, pl.DataFrame], report: DropReport, task: TaskSpec) -> list[str]:
    """Published splits that lack a class, or whose positive share moved from their input's by more than the margin."""
    found = []
    for split, frame in frames.items():
        original = pair(report.table7[split].original) if split in report.table7 else None
        kept = (frame.height, int((frame["label"] == task.positive_label).sum()))
        found.append(balance_problem(split, original, kept, task, report.share_margin))
    return [text for text in found if text]


def notes(overlap: TestOverlap | None, warnings: list[str], run_dir: Path, reviews: bool) -> list[str]:
    """Lines publish prints after writing: class warnings, an allowed overlap, reviews that were not merged."""
    lines = list(warnings)
    if overlap is not None and overlap.allowed:
        lines.append(f"{describe_overlap(overlap, 'test', OTHER)}: published anyway (--allow-overlap)")
    path = Path(run_dir) / REVIEWS
    if not reviews and path.is_file():
        reviewed = pl.read_parquet(path, columns=["example_id"])["example_id"].n_unique()
        lines.append(f"{reviewed} reviews in {REVIEWS} not merged: pass --reviews")
    return lines
