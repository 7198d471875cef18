"""Examples to evaluate: a split of a published version, or a labelled file read with the task's mapping; the
original rows a version was curated from; the content hash of an evaluated split."""

from collections import defaultdict
from pathlib import Path

import polars as pl

from schemas.dataset_version import load_version, read_manifest, rows_sha256
from schemas.example import Example
from schemas.inputs import input_mapping, load_examples
from schemas.task import InputMapping, TaskSpec

RUN_EXAMPLES = "examples.parquet"  # every input row of a `curate generate` run directory, before any filtering


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


def file_mapping(task: TaskSpec) -> InputMapping:
    """The task's default column mapping, else the columns of a published version: `id`, the field names, `label`."""
    columns = {field: field for field in task.input_fields}
    return input_mapping(task, task.input_mapping or InputMapping(id_column="id", field_columns=columns))


def file_split(path: Path, task: TaskSpec, split: str) -> list[Example]:
    """One split file (CSV, JSON Lines, Parquet) read with the task's default column and label mapping; ValueError
    names the file and the first repeated id."""
    examples = load_examples(Path(path), task, file_mapping(task), split)
    seen: set[str] = set()
    for number, example in enumerate(examples, start=1):
        if example.id in seen:
            raise ValueError(f"{path} row {number}: id {example.id!r} occurs twice: every row needs its own id")
        seen.add(example.id)
    return examples


def original_rows_path(version_dir: Path) -> Path:
    """RUN/examples.parquet of the run the version was published from; ValueError says how to pass the originals."""
    source_run = read_manifest(Path(version_dir)).source_run
    path = Path(source_run) / RUN_EXAMPLES if source_run else None
    if path is None or not path.is_file():
        where = f"{path} does not exist" if path else "its manifest records no source_run"
        raise ValueError(
            f"the original rows {version_dir} was curated from cannot be found ({where}): pass the original split"
            " files with --train FILE (and --validation FILE), or train on the version's teacher-filtered rows"
            " with --train-on filtered"
        )
    return path


def original_splits(version_dir: Path, task: TaskSpec) -> tuple[dict[str, list[Example]], Path]:
    """Every original (unfiltered) example of the version's source run by split, and the file they came from."""
    path = original_rows_path(version_dir)
    frame = pl.read_parquet(path)
    missing = [column for column in ["id", "split", "label", *task.input_fields] if column not in frame.columns]
    if missing:
        raise ValueError(f"{path}: missing column(s) {missing}: pass the original split files with --train FILE")
    splits: dict[str, list[Example]] = defaultdict(list)
    for row in frame.iter_rows(named=True):
        fields = {name: row[name] for name in task.input_fields}
        splits[row["split"]].append(Example(id=row["id"], fields=fields, label=row["label"], split=row["split"]))
    return dict(splits), path


def split_sha256(examples: list[Example]) -> str:
    """Content hash of an evaluated split (ids, labels, text fields; order-free): equal hashes, same test set."""
    rows = [{"id": e.id, "label": e.label, "fields": e.fields} for e in sorted(examples, key=lambda e: e.id)]
    return rows_sha256(rows)


def check_same_task(checkpoint_task: TaskSpec, dataset_task: TaskSpec, checkpoint: Path, dataset: Path) -> None:
    """Refuse to evaluate a checkpoint on a dataset of another task (prompts, verbalizers or fields differ)."""
    if checkpoint_task.spec_hash() != dataset_task.spec_hash():
        raise ValueError(
            f"task mismatch: checkpoint {checkpoint} was trained for task {checkpoint_task.name!r}"
            f" (spec {checkpoint_task.spec_hash()}) but {dataset} holds task {dataset_task.name!r}"
            f" (spec {dataset_task.spec_hash()}): evaluate on a dataset version of the checkpoint's task"
        )
