"""`evaluate select`: pick the epoch with the best Quality Score on dev and tune its thresholds there.

Quality Score of an epoch = z(AUROC_cls) + z(AUROC_align) + z(kappa at 0.5), each z over the run's epochs
(population std; a metric equal across epochs contributes 0). A metric undefined at some epoch (e.g. its text
gave no labels, so AUROC-alignment has no value) is left out of every epoch's score, and `selection.json` says so.
The three come from `evaluate run` on each checkpoint's dev split (`epoch-N/eval/validation/metrics.json`):
AUROC-alignment and kappa need generated explanations, which the trainer's head-only `metrics.jsonl` lacks.
"""

from collections.abc import Callable
from pathlib import Path

import numpy as np
from pydantic import Field

from evaluate.io import METRICS, PREDICTIONS, MetricsFile, read_metrics, read_predictions
from evaluate.metrics import Thresholds, tune_thresholds
from evaluate.summary import arrays
from schemas.base import Strict
from schemas.dataset_version import MANIFEST, read_manifest
from schemas.files import atomic_write_bytes
from schemas.integrity import missing_class
from schemas.task import TaskSpec
from schemas.train_metrics import DevEpochMetrics
from train.checkpoint import HEAD_CONFIG, DualHeadConfig, epoch_dirs

SELECTION = "selection.json"
QUALITY_KEYS = ("auroc", "auroc_align", "kappa_at_05")
# the trainer's dev rows hold head metrics only: the text-based ones need a checkpoint's dev predictions
TEXT_QUALITY_KEYS = tuple(key for key in QUALITY_KEYS if key not in DevEpochMetrics.model_fields)


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
    """The complete `epoch-N` checkpoints of a training run, by epoch; ValueError when there are none."""
    found = epoch_dirs(run)
    if not found:
        raise ValueError(f"{run} holds no epoch-N checkpoint folders: pass the output folder of `train run`")
    return dict(sorted(found.items()))


def dev_eval_dir(checkpoint: Path) -> Path:
    """Where `evaluate run` writes a checkpoint's dev predictions and metrics by default."""
    return Path(checkpoint) / "eval" / "validation"


def evaluated_dev_metrics(run: Path) -> dict[int, MetricsFile]:
    """The `evaluate run` dev metrics of every epoch that has them."""
    return {
        epoch: read_metrics(dev_eval_dir(checkpoint))
        for epoch, checkpoint in epoch_checkpoints(run).items()
        if (dev_eval_dir(checkpoint) / METRICS).is_file()
    }


def no_dev_metrics(checkpoint: Path) -> str:
    """Why a checkpoint cannot be scored yet, and the command that fixes it."""
    return (
        f"no dev metrics for {checkpoint} ({dev_eval_dir(checkpoint) / METRICS} is missing): the Quality Score needs"
        f" {', '.join(QUALITY_KEYS)} on dev, and {', '.join(TEXT_QUALITY_KEYS)} come from generated explanations, which"
        f" the trainer's metrics.jsonl does not have: run `evaluate run --checkpoint {checkpoint} --split validation`"
        " first"
    )


def quality_metrics(checkpoint: Path, predict_dev: Callable[[Path], None] | None) -> dict[str, float | None]:
    """The Quality-Score metrics of a checkpoint from its `evaluate run` dev metrics (predicted here if missing)."""
    folder = dev_eval_dir(checkpoint)
    if not (folder / METRICS).is_file():
        if predict_dev is None:
            raise ValueError(no_dev_metrics(checkpoint))
        predict_dev(checkpoint)
    metrics = read_metrics(folder).metrics
    missing = [key for key in QUALITY_KEYS if key not in metrics]
    if missing:
        raise ValueError(f"{folder / METRICS} lacks {', '.join(missing)}: rerun `evaluate run` on {checkpoint}")
    return {key: metrics[key] for key in QUALITY_KEYS}


def dev_class_problem(checkpoint: Path) -> str | None:
    """Why the dev split of the version a checkpoint was trained on cannot score it (a class missing), from that
    version's manifest; None when it has both classes, or the recorded version has moved (then nothing is known)."""
    dataset = Path(DualHeadConfig.model_validate_json((Path(checkpoint) / HEAD_CONFIG).read_text()).dataset_dir)
    if not (dataset / MANIFEST).is_file():
        return None
    manifest = read_manifest(dataset)
    info = manifest.splits.get("validation")
    task = TaskSpec.model_validate(manifest.task_spec)
    problem = info and missing_class("validation", info.count, info.positives, task)
    return problem and (
        f"{dataset}: {problem}, so AUROC is undefined on dev and dev predictions cannot rank the epochs: publish a"
        " version whose validation split has both classes and train on it"
    )


def refuse_one_class_dev(unscored: list[Path]) -> None:
    """Fail before predicting dev for minutes when the checkpoints' dev split lacks a class (ValueError)."""
    problem = unscored and dev_class_problem(unscored[0])
    if problem:
        raise ValueError(problem)


def first_reason(key: str, missing: list[int], reasons: list[dict[str, str]]) -> str:
    """` (why KEY is null at the first epoch missing it)`, or nothing when no reason was recorded."""
    why = next((reasons[i][key] for i in missing if key in reasons[i]), None) if reasons else None
    return f" ({why})" if why else ""


def quality_scores(
    rows: list[dict[str, float | None]], reasons: list[dict[str, str]] = ()
) -> tuple[list[float], dict[str, str]]:
    """z(AUROC) + z(AUROC_align) + z(kappa) per row, over the metrics defined in every row; the left-out metrics
    with the reason (from `reasons`, each row's null reasons). ValueError when none is defined everywhere."""
    total = np.zeros(len(rows))
    left_out = {}
    for key in QUALITY_KEYS:
        missing = [i for i, row in enumerate(rows) if row[key] is None]
        if missing:
            left_out[key] = (
                f"undefined at {len(missing)} of {len(rows)} epochs{first_reason(key, missing, reasons)},"
                " so left out of the Quality Score"
            )
            continue
        values = np.array([row[key] for row in rows], dtype=float)
        std = values.std()
        total += (values - values.mean()) / std if std > 0 else 0.0
    if len(left_out) == len(QUALITY_KEYS):
        why = "; ".join(f"{key}: {reason}" for key, reason in left_out.items())
        raise ValueError(
            f"none of {', '.join(QUALITY_KEYS)} is defined at every epoch on dev, so no epoch can be scored ({why})"
        )
    return [float(score) for score in total], left_out


def select_epoch(run: Path, predict_dev: Callable[[Path], None] | None) -> Selection:
    """Score every epoch on dev (predicting with `predict_dev` where no dev metrics exist), pick the best and tune
    its thresholds on its dev predictions; write `RUN/selection.json`."""
    run = Path(run)
    checkpoints = epoch_checkpoints(run)
    if predict_dev is not None:
        refuse_one_class_dev([c for c in checkpoints.values() if not (dev_eval_dir(c) / METRICS).is_file()])
    scores = [
        EpochScore(
            epoch=epoch,
            checkpoint=str(checkpoint),
            metrics=quality_metrics(checkpoint, predict_dev),
            quality=0.0,
            source=str(dev_eval_dir(checkpoint) / METRICS),
        )
        for epoch, checkpoint in checkpoints.items()
    ]
    reasons = [read_metrics(dev_eval_dir(checkpoint)).null_reasons for checkpoint in checkpoints.values()]
    qualities, left_out = quality_scores([s.metrics for s in scores], reasons)
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
