"""The splits a baseline reads: from a published version, or from split files with the task's column mapping."""

from pathlib import Path
from typing import Any

from evaluate.data import file_split, version_split
from schemas.example import Example
from schemas.task import TaskSpec, load_task


def baseline_splits(
    dataset: Path | None,
    train: Path | None,
    validation: Path | None,
    test: Path | None,
    task: str | None,
    split: str,
    method: str,
) -> tuple[dict[str, list[Example]], TaskSpec, dict[str, Any]]:
    """{'evaluate': ..., 'train': ..., 'validation': ...} (the last two where available), the task, the source."""
    if (dataset is None) == (test is None):
        raise ValueError("pass either --dataset VERSION_DIR or --test FILE (with --train/--validation files)")
    if dataset is not None:
        evaluated, spec = version_split(dataset, split)
        splits = {"evaluate": evaluated}
        if method == "tfidf-logreg":
            splits["train"] = version_split(dataset, "train")[0]
            if split != "validation":
                splits["validation"] = version_split(dataset, "validation")[0]
        return splits, spec, {"dataset": str(dataset), "split": split}
    if task is None:
        raise ValueError("with split files, pass --task (a built-in task name or a task YAML) for the column mapping")
    spec = load_task(task)
    if method == "tfidf-logreg" and train is None:
        raise ValueError("tfidf-logreg needs training data: pass --train FILE (or --dataset)")
    splits = {"evaluate": file_split(test, spec, split)}
    files = {"train": train, "validation": validation}
    splits |= {name: file_split(path, spec, name) for name, path in files.items() if path is not None}
    return splits, spec, {"test_file": str(test), **{f"{k}_file": str(v) for k, v in files.items() if v}}
