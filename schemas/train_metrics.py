"""`RUN/steps.jsonl` and `RUN/metrics.jsonl`: the rows `train run` logs, written as journals and read by evaluate.

The trainer sees no generated text, so its dev rows hold head metrics and losses only: parsability, AUROC-alignment
and kappa come from `evaluate run` on a checkpoint's dev predictions.
"""

from pathlib import Path
from typing import Annotated, Literal

from pydantic import ConfigDict, Field, RootModel

from schemas.base import Strict
from schemas.files import Journal, atomic_write_bytes

STEPS = "steps.jsonl"
METRICS = "metrics.jsonl"
# a diverged loss or gradient norm is logged as NaN / Infinity (as json.dumps writes them), not as null
LOG_ROW = ConfigDict(ser_json_inf_nan="constants")


class StepRow(Strict):
    """One optimizer step: its losses summed over processes, the gradient norm before clipping, the new lr."""

    model_config = LOG_ROW
    epoch: int
    step: int = Field(description="global optimizer step, from 1")
    loss: float
    lm_loss: float
    cls_loss: float
    grad_norm: float
    lr: float


class TrainEpochMetrics(Strict):
    """One epoch on the train split: mean step losses and wall time."""

    model_config = LOG_ROW
    epoch: int
    split: Literal["train"] = "train"
    loss: float
    lm_loss: float
    cls_loss: float
    steps: int
    seconds: float


class DevEpochMetrics(Strict):
    """One epoch's head metrics on the validation split (from head probabilities; no generated text)."""

    model_config = LOG_ROW
    epoch: int
    split: Literal["validation"] = "validation"
    n: int = Field(description="validation examples")
    auroc: float | None = Field(description="head AUROC; null when the split has one class")
    f1: float = Field(description="head F1 at threshold 0.5")
    accuracy: float = Field(description="head accuracy at threshold 0.5")
    brier: float
    cls_loss: float = Field(description="mean head cross-entropy")
    lm_loss: float | None = Field(description="LM cross-entropy per target token; null when no row has a target")
    loss: float | None = Field(description="the objective's loss (lm_loss + cls_loss for joint)")


class EpochMetrics(RootModel[Annotated[TrainEpochMetrics | DevEpochMetrics, Field(discriminator="split")]]):
    """One row of `metrics.jsonl`: an epoch's train or validation metrics."""

    model_config = LOG_ROW

    @property
    def epoch(self) -> int:
        """The epoch the row belongs to."""
        return self.root.epoch


def keep_epochs(journal: Journal[StepRow] | Journal[EpochMetrics], last_epoch: int) -> None:
    """Atomically rewrite a log with its rows of epochs up to `last_epoch` (drops an interrupted epoch, a torn line)."""
    rows = [row for row in journal.load() if row.epoch <= last_epoch]
    atomic_write_bytes(journal.path, b"".join(row.model_dump_json().encode() + b"\n" for row in rows))


def read_dev_metrics(run: Path) -> dict[int, DevEpochMetrics]:
    """The validation rows of `RUN/metrics.jsonl` by epoch, read without changing the file (a torn last line, still
    being written, is skipped); ValueError names a corrupt row."""
    rows, _ = Journal(Path(run) / METRICS, EpochMetrics).read()
    return {row.epoch: row.root for row in rows if isinstance(row.root, DevEpochMetrics)}
