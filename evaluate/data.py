"""Examples to evaluate: a split of a published dataset version, or a split file read with the task's mapping."""

from pathlib import Path

from schemas.dataset_version import load_version
from schemas.example import Example
from schemas.inputs import input_mapping, load_examples
from schemas.task import TaskSpec


def version_split(version_dir: Path, split: str) -> tuple[list[Example], TaskSpec]:
    """One split of a published version as Examples, with the version's task spec; ValueError names the fix."""
    data, manifest = load_version(Path(version_dir))
    if split not in data:
        raise ValueError(
            f"split {split!r} does not exist in {version_dir}; it has {sorted(data)}: pass one of them to --split"
        )
    task = TaskSpec.model_validate(manifest.task_spec)
    examples = [
        Example(id=row["id"], fields={name: row[name] for name in task.input_fields}, label=row["label"], split=split)
        for row in data[split].to_list()
    ]
    return examples, task


def file_split(path: Path, task: TaskSpec, split: str) -> list[Example]:
    """One split file (CSV, JSON Lines, Parquet) read with the task's default column and label mapping."""
    return load_examples(Path(path), task, input_mapping(task, None), split)


def check_same_task(checkpoint_task: TaskSpec, dataset_task: TaskSpec, checkpoint: Path, dataset: Path) -> None:
    """Refuse to evaluate a checkpoint on a dataset of another task (prompts, verbalizers or fields differ)."""
    if checkpoint_task.spec_hash() != dataset_task.spec_hash():
        raise ValueError(
            f"task mismatch: checkpoint {checkpoint} was trained for task {checkpoint_task.name!r}"
            f" (spec {checkpoint_task.spec_hash()}) but {dataset} holds task {dataset_task.name!r}"
            f" (spec {dataset_task.spec_hash()}): evaluate on a dataset version of the checkpoint's task"
        )
