"""`predictions.parquet` and `metrics.json`: the files every method writes, so all land in one report."""

import json
from pathlib import Path
from typing import Any, Literal

import polars as pl
from pydantic import Field, ValidationError

from evaluate.metrics import ReliabilityBin, Thresholds
from schemas.base import Strict
from schemas.files import atomic_write_bytes, atomic_write_parquet

PREDICTIONS = "predictions.parquet"
METRICS = "metrics.json"
ParseStatus = Literal["ok", "unparseable", "truncated", "none"]


class Document(Strict):
    """One row to predict on: a stable id and the task's named text fields (no label needed)."""

    id: str = Field(min_length=1)
    fields: dict[str, str]


class ModelOutput(Strict):
    """The dual-head model's answer for one document: head probability, generated text, the label the text states."""

    id: str
    p_head: float = Field(ge=0.0, le=1.0, description="P(positive) from the classification head")
    text: str = Field(description="generated explanation ending in the Classification line (as generated)")
    verbalized_label: Literal[0, 1] | None = Field(description="label parsed from the text; null if unparseable")
    parse_status: Literal["ok", "unparseable", "truncated"]


class PredictionRow(Strict):
    """One example's outputs: head probability, generated text and the label the text states."""

    id: str
    gold: Literal[0, 1]
    p_head: float | None = Field(ge=0.0, le=1.0, description="P(positive); null when the method gives none")
    text: str = Field(description="generated explanation (or the method's raw answer); empty if none")
    verbalized_label: Literal[0, 1] | None = Field(description="label parsed from the text; null if unparseable")
    parse_status: ParseStatus = Field(description="ok, unparseable, truncated (max tokens), none (no text)")


PREDICTION_SCHEMA = {
    "id": pl.String,
    "gold": pl.Int64,
    "p_head": pl.Float64,
    "text": pl.String,
    "verbalized_label": pl.Int64,
    "parse_status": pl.String,
}


class Calibration(Strict):
    """Calibration of the head probability: ECE (equal-width bins), Brier and the reliability-diagram bins."""

    ece_bins: int
    bins: list[ReliabilityBin]


class MetricsFile(Strict):
    """`metrics.json`: point values (null + reason when undefined), 95% bootstrap intervals, thresholds used."""

    method: str = Field(description="name the report groups by, e.g. clsgen, tfidf-logreg, self-consistency")
    split: str
    seed: int | None = Field(None, description="training or sampling seed; the report averages over seeds")
    n: int
    examples_sha256: str | None = Field(
        None, description="content hash of the evaluated examples (ids, labels, text fields); null in old files"
    )
    n_scored: int = Field(description="rows with a probability")
    metrics: dict[str, float | None]
    null_reasons: dict[str, str]
    intervals: dict[str, tuple[float, float]]
    n_bootstrap: int
    thresholds: Thresholds | None
    threshold_source: str | None
    calibration: Calibration
    source: dict[str, Any] = Field(description="what was evaluated: checkpoint, dataset, engine, ...")


def write_predictions(rows: list[PredictionRow], path: Path) -> None:
    """Write the rows as Parquet, atomically."""
    frame = pl.DataFrame([row.model_dump() for row in rows], schema=PREDICTION_SCHEMA)
    atomic_write_parquet(frame, path)


def read_predictions(path: Path) -> list[PredictionRow]:
    """Load and validate a predictions file; ValueError names the file, the missing columns or the bad row."""
    if path.is_dir():
        path = path / PREDICTIONS
    try:
        frame = pl.read_parquet(path)
    except Exception as err:  # polars raises many unrelated types for unreadable files
        raise ValueError(f"cannot read predictions {path}: {err}") from err
    missing = [column for column in PREDICTION_SCHEMA if column not in frame.columns]
    if missing:
        raise ValueError(
            f"{path}: missing column(s) {missing}; a predictions file needs {list(PREDICTION_SCHEMA)}"
            " (write it with `evaluate run` or `evaluate baseline`)"
        )
    rows = []
    for number, record in enumerate(frame.select(list(PREDICTION_SCHEMA)).iter_rows(named=True), start=1):
        try:
            rows.append(PredictionRow.model_validate(record))
        except ValidationError as err:
            raise ValueError(f"{path} row {number} (id {record.get('id')!r}): {err}") from err
    return rows


def write_metrics(metrics: MetricsFile, path: Path) -> None:
    """Write `metrics.json` atomically."""
    atomic_write_bytes(path, metrics.model_dump_json(indent=2).encode())


def read_metrics(path: Path) -> MetricsFile:
    """Load a `metrics.json` (or the one in a folder); ValueError names the file."""
    if path.is_dir():
        path = path / METRICS
    try:
        return MetricsFile.model_validate(json.loads(path.read_text()))
    except (OSError, ValueError) as err:
        raise ValueError(f"cannot read metrics {path}: {err}") from err
