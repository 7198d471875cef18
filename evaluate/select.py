"""`evaluate select`: pick the epoch with the best Quality Score on dev and tune its thresholds there.

Quality Score of an epoch = z(AUROC_cls) + z(AUROC_align) + z(kappa at 0.5), each z over the run's epochs
(population std; a metric equal across epochs contributes 0). A metric undefined at some epoch (e.g. its text
gave no labels, so AUROC-alignment has no value) is left out of every epoch's score, and `selection.json` says so.
"""

import json
import re
from collections.abc import Callable
from pathlib import Path

import numpy as np
from pydantic import Field

from evaluate.io import METRICS, PREDICTIONS, read_metrics, read_predictions
from evaluate.metrics import Thresholds, tune_thresholds
from evaluate.summary import arrays
from schemas.base import Strict
from schemas.files import atomic_write_bytes

SELECTION = "selection.json"
TRAIN_METRICS = "metrics.jsonl"
DEV_SPLITS = ("validation", "dev")
QUALITY_KEYS = ("auroc", "auroc_align", "kappa_at_05")
KEY_ALIASES = {"kappa_at_05": ("kappa_at_05", "kappa")}
EPOCH_DIR = re.compile(r"^epoch-(\d+)$")


class EpochScore(Strict):
    """One epoch's dev metrics and Quality Score."""

    epoch: int
    checkpoint: str
    metrics: dict[str, float | None]
    quality: float
    source: str = Field(description="where the dev metrics came from")


class Selection(Strict):
    """`RUN/selection.json`: the chosen epoch and its dev-tuned thresholds."""

    run: str
    split: str = "validation"
    best_epoch: int
    best_checkpoint: str
    epochs: list[EpochScore]
    left_out: dict[str, str] = Field(description="Quality-Score metrics left out, with the reason")
    thresholds: Thresholds
    threshold_reasons: dict[str, str]


def epoch_checkpoints(run: Path) -> dict[int, Path]:
    """The `epoch-N` checkpoint folders of a training run, by epoch; ValueError when there are none."""
    found = {int(m.group(1)): p for p in Path(run).iterdir() if p.is_dir() and (m := EPOCH_DIR.match(p.name))}
    if not found:
        raise ValueError(f"{run} holds no epoch-N checkpoint folders: pass the output folder of `train run`")
    return dict(sorted(found.items()))


def dev_eval_dir(checkpoint: Path) -> Path:
    """Where `evaluate run` writes a checkpoint's dev predictions and metrics by default."""
    return Path(checkpoint) / "eval" / "validation"


def training_dev_metrics(run: Path) -> dict[int, dict[str, float | None]]:
    """Dev rows of `RUN/metrics.jsonl` by epoch (the last row of an epoch wins), keys as the trainer wrote them."""
    path = Path(run) / TRAIN_METRICS
    if not path.is_file():
        return {}
    rows: dict[int, dict] = {}
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError as err:
            raise ValueError(f"{path} line {number} is not JSON: {err}") from err
        if row.get("split") in DEV_SPLITS and "epoch" in row:
            rows[int(row["epoch"])] = row
    return rows


def quality_metrics(row: dict) -> dict[str, float | None] | None:
    """The three Quality-Score metrics of a metrics row, or None when the row lacks one of them."""
    found = {}
    for key in QUALITY_KEYS:
        names = [name for name in KEY_ALIASES.get(key, (key,)) if name in row]
        if not names:
            return None
        found[key] = row[names[0]]
    return found


def epoch_dev_metrics(run: Path) -> dict[int, tuple[dict[str, float | None], str]]:
    """Every epoch's dev metrics that exist already: `evaluate run` output first, then the trainer's rows."""
    trainer = training_dev_metrics(run)
    found = {}
    for epoch, checkpoint in epoch_checkpoints(run).items():
        if (dev_eval_dir(checkpoint) / METRICS).is_file():
            found[epoch] = (read_metrics(dev_eval_dir(checkpoint)).metrics, str(dev_eval_dir(checkpoint) / METRICS))
        elif epoch in trainer:
            found[epoch] = (trainer[epoch], str(Path(run) / TRAIN_METRICS))
    return found


def quality_scores(rows: list[dict[str, float | None]]) -> tuple[list[float], dict[str, str]]:
    """z(AUROC) + z(AUROC_align) + z(kappa) per row, over the metrics defined in every row; the left-out metrics
    with the reason. ValueError when none is defined everywhere."""
    total = np.zeros(len(rows))
    left_out = {}
    for key in QUALITY_KEYS:
        missing = [i for i, row in enumerate(rows) if row[key] is None]
        if missing:
            left_out[key] = f"undefined at {len(missing)} of {len(rows)} epochs, so left out of the Quality Score"
            continue
        values = np.array([row[key] for row in rows], dtype=float)
        std = values.std()
        total += (values - values.mean()) / std if std > 0 else 0.0
    if len(left_out) == len(QUALITY_KEYS):
        raise ValueError(f"none of {', '.join(QUALITY_KEYS)} is defined at every epoch on dev: no epoch can be scored")
    return [float(score) for score in total], left_out


def select_epoch(run: Path, predict_dev: Callable[[Path], None] | None) -> Selection:
    """Score every epoch on dev (predicting with `predict_dev` where no dev metrics exist), pick the best and tune
    its thresholds on its dev predictions; write `RUN/selection.json`."""
    run = Path(run)
    checkpoints = epoch_checkpoints(run)
    scores = []
    for epoch, checkpoint in checkpoints.items():
        known = epoch_dev_metrics(run).get(epoch)
        if known is None or quality_metrics(known[0]) is None:
            if predict_dev is None:
                raise ValueError(
                    f"no dev metrics with {', '.join(QUALITY_KEYS)} for {checkpoint}: run `evaluate run --checkpoint"
                    f" {checkpoint} --split validation` first"
                )
            predict_dev(checkpoint)
            known = epoch_dev_metrics(run)[epoch]
        scores.append(
            EpochScore(
                epoch=epoch, checkpoint=str(checkpoint), metrics=quality_metrics(known[0]), quality=0.0, source=known[1]
            )
        )
    qualities, left_out = quality_scores([s.metrics for s in scores])
    for score, quality in zip(scores, qualities, strict=True):
        score.quality = quality
    best = max(scores, key=lambda s: s.quality)
    dev = dev_eval_dir(Path(best.checkpoint))
    if not (dev / PREDICTIONS).is_file():
        if predict_dev is None:
            raise ValueError(
                f"{dev / PREDICTIONS} is missing: run `evaluate run --checkpoint {best.checkpoint}"
                " --split validation` to tune thresholds"
            )
        predict_dev(Path(best.checkpoint))
    thresholds, reasons = tune_thresholds(*arrays(read_predictions(dev / PREDICTIONS)))
    selection = Selection(
        run=str(run),
        best_epoch=best.epoch,
        best_checkpoint=best.checkpoint,
        epochs=scores,
        left_out=left_out,
        thresholds=thresholds,
        threshold_reasons=reasons,
    )
    atomic_write_bytes(run / SELECTION, selection.model_dump_json(indent=2).encode())
    return selection


def selected_thresholds(checkpoint: Path) -> tuple[Thresholds, str] | None:
    """The dev-tuned thresholds `evaluate select` wrote for this checkpoint, if it is the selected one."""
    path = Path(checkpoint).parent / SELECTION
    if not path.is_file():
        return None
    selection = Selection.model_validate_json(path.read_text())
    if Path(selection.best_checkpoint).resolve() != Path(checkpoint).resolve():
        return None
    return selection.thresholds, str(path)
