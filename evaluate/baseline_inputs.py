"""The splits a baseline reads: from a published version, or from split files with the task's column mapping;
a trained baseline fits on the version's original (unfiltered) rows unless asked for the teacher-filtered ones."""

from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from evaluate.data import file_split, original_splits, version_split
from schemas.base import Strict
from schemas.dataset_version import read_manifest
from schemas.example import Example
from schemas.task import TaskSpec, load_task

TrainOn = Literal["original", "filtered"]
Splits = dict[str, list[Example]]


class TrainingRows(Strict):
    """What a trained baseline was fit on: recorded as `source.training` in metrics.json and printed."""

    train_on: Literal["original", "filtered", "files"] = Field(
        description="original: every input row of the version's source run; filtered: the version's accepted rows"
    )
    train_source: str = Field(description="the file or version folder the training rows were read from")
    validation_source: str | None = Field(description="where the validation rows were read from (null: none)")
    n_train: int
    n_validation: int = Field(description="rows the decision threshold was tuned on (0: none)")

    def line(self) -> str:
        """The output line naming the training rows."""
        tuned = f", threshold tuned on {self.n_validation} validation rows" if self.n_validation else ""
        return f"trained on {self.n_train} {self.train_on} train rows of {self.train_source}{tuned}"


def default_name(method: str, train_on: TrainOn) -> str:
    """A baseline's name in reports: tfidf-logreg fit on the filtered rows is another method, never another seed."""
    return f"{method}-filtered" if method == "tfidf-logreg" and train_on == "filtered" else method


def file_training(train: Path, validation: Path | None, task: TaskSpec) -> Splits:
    """Train (and validation) rows read from split files."""
    files = {"train": train, "validation": validation}
    return {name: file_split(path, task, name) for name, path in files.items() if path is not None}


def filtered_training(dataset: Path) -> Splits:
    """The version's own (teacher-filtered) train and validation rows."""
    published = read_manifest(dataset).splits
    return {name: version_split(dataset, name)[0] for name in ("train", "validation") if name in published}


def original_training(dataset: Path, task: TaskSpec) -> tuple[Splits, Path]:
    """The source run's original train/validation rows; refused if they do not hold the version's train rows."""
    originals, path = original_splits(dataset, task)
    kept = {e.id for e in version_split(dataset, "train")[0]}
    lost = kept - {e.id for e in originals.get("train", [])}
    if lost:
        raise ValueError(
            f"{path} lacks {len(lost)} of the {len(kept)} train rows of {dataset} (e.g. {sorted(lost)[0]!r}):"
            " the run directory changed after publishing; pass the original split files with --train FILE"
        )
    return {name: rows for name, rows in originals.items() if name in ("train", "validation")}, path


def version_training(
    dataset: Path, task: TaskSpec, train: Path | None, validation: Path | None, train_on: TrainOn
) -> tuple[Splits, str, Path]:
    """The rows a baseline fits on beside a version, what they are and where from: given files, else the
    original or the filtered rows."""
    if train is not None:
        if train_on == "filtered":
            raise ValueError("--train FILE and --train-on filtered disagree: drop one of them")
        return file_training(train, validation, task), "files", train
    if validation is not None:
        raise ValueError("--validation FILE with --dataset needs --train FILE too (the original train split)")
    if train_on == "filtered":
        return filtered_training(dataset), "filtered", dataset
    splits, path = original_training(dataset, task)
    return splits, "original", path


def training_splits(
    dataset: Path | None, train: Path | None, validation: Path | None, task: TaskSpec, split: str, train_on: TrainOn
) -> tuple[Splits, TrainingRows]:
    """The train (and validation, unless it is the evaluated split) rows of tfidf-logreg and their record."""
    if dataset is not None:
        splits, kind, where = version_training(dataset, task, train, validation, train_on)
    elif train is None:
        raise ValueError("tfidf-logreg needs training data: pass --train FILE (or --dataset)")
    else:
        splits, kind, where = file_training(train, validation, task), "files", train
    if split == "validation":
        splits.pop("validation", None)
    validation_from = validation if kind == "files" else where
    record = TrainingRows(
        train_on=kind,
        train_source=str(where),
        validation_source=str(validation_from) if "validation" in splits else None,
        n_train=len(splits.get("train", [])),
        n_validation=len(splits.get("validation", [])),
    )
    return splits, record


def evaluated_split(
    dataset: Path | None, test: Path | None, task: str | None, split: str, train_on: TrainOn
) -> tuple[list[Example], TaskSpec, dict[str, Any]]:
    """The examples to evaluate (a version's split or a split file), their task and the source."""
    if (dataset is None) == (test is None):
        raise ValueError("pass either --dataset VERSION_DIR or --test FILE (with --train/--validation files)")
    if dataset is not None:
        examples, spec = version_split(dataset, split)
        return examples, spec, {"dataset": str(dataset), "split": split}
    if task is None:
        raise ValueError("with split files, pass --task (a built-in task name or a task YAML) for the column mapping")
    if train_on == "filtered":
        raise ValueError("--train-on filtered needs --dataset VERSION_DIR: split files hold no filtered rows")
    spec = load_task(task)
    return file_split(test, spec, split), spec, {"test_file": str(test)}


def baseline_splits(
    dataset: Path | None,
    train: Path | None,
    validation: Path | None,
    test: Path | None,
    task: str | None,
    split: str,
    method: str,
    train_on: TrainOn = "original",
) -> tuple[Splits, TaskSpec, dict[str, Any]]:
    """{'evaluate': ..., 'train': ..., 'validation': ...} (the last two for tfidf-logreg, where available), the
    task and the source (with `training` for tfidf-logreg)."""
    evaluated, spec, source = evaluated_split(dataset, test, task, split, train_on)
    if method != "tfidf-logreg":
        return {"evaluate": evaluated}, spec, source
    fitting, training = training_splits(dataset, train, validation, spec, split, train_on)
    return {"evaluate": evaluated, **fitting}, spec, {**source, "training": training.model_dump()}
