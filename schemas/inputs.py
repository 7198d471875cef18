"""Read labelled split files (CSV, JSON Lines, Parquet, saved HF datasets) into validated Examples."""

import json
import re
from pathlib import Path

import polars as pl

from schemas.example import Example
from schemas.task import InputMapping, TaskSpec

SPLIT_PATTERNS = (("train", r"train"), ("validation", r"valid|(^|[^a-z])dev([^a-z]|$)"), ("test", r"test"))
TABULAR = {".csv", ".jsonl", ".json", ".parquet"}
POSITIVE_WORDS = {"1", "yes", "true", "positive", "pos", "y"}  # guessed as 1 in a suggested label_map


class InputError(ValueError):
    """Bad input data: the message names the file, row or field and the fix."""


def split_from_name(path: Path) -> str | None:
    """Guess a split from a file or folder name: train / validation (valid, dev) / test."""
    name = path.stem.lower()
    for split, pattern in SPLIT_PATTERNS:
        if re.search(pattern, name):
            return split
    return None


def resolve_inputs(items: list[str], split: str | None = None) -> dict[str, Path]:
    """Map `PATH`, `SPLIT=PATH`, a folder of split files or a saved DatasetDict to {split: path}; refuse test."""
    found: dict[str, Path] = {}
    for item in items:
        name, sep, raw = item.partition("=")
        path = Path(raw if sep else item)
        if not path.exists():
            raise InputError(f"input {path} does not exist: pass an existing file or folder to --input")
        if path.is_dir() and not sep and not is_hf_dataset(path):
            found.update(folder_splits(path))
            continue
        key = name if sep else split or split_from_name(path) or "train"
        if key in found:
            raise InputError(f"split {key!r} is given twice ({found[key]} and {path}): name each split once")
        found[key] = path
    if "test" in found:
        raise InputError(
            f"{found['test']} is a test split: the test split is never sent to the teacher;"
            " pass it to `curate publish --test` instead"
        )
    if not found:
        raise InputError("no input files: pass --input PATH (or SPLIT=PATH, or a folder of split files)")
    return found


def is_hf_dataset(path: Path) -> bool:
    """True for a folder written by `Dataset.save_to_disk` or `DatasetDict.save_to_disk`."""
    return (path / "dataset_dict.json").is_file() or (path / "state.json").is_file()


def folder_splits(folder: Path) -> dict[str, Path]:
    """Split files in a folder (or the splits of a saved DatasetDict), test excluded."""
    if (folder / "dataset_dict.json").is_file():
        splits = [p for p in folder.iterdir() if p.is_dir() and (p / "state.json").is_file()]
        return {p.name: p for p in splits if p.name != "test"}
    found = {}
    for path in sorted(folder.iterdir()):
        split = split_from_name(path)
        if path.suffix in TABULAR and split and split != "test":
            found[split] = path
    if not found:
        raise InputError(f"{folder} holds no train/validation/dev files (.csv, .jsonl, .parquet)")
    return found


def read_table(path: Path) -> pl.DataFrame:
    """Read one input file as strings; InputError names the file and what went wrong."""
    try:
        if path.is_dir():
            from datasets import load_from_disk

            return pl.from_arrow(load_from_disk(str(path)).data.table).cast(pl.String)
        if path.suffix == ".csv":
            return pl.read_csv(path, infer_schema_length=0)
        if path.suffix in {".jsonl", ".json"}:
            return read_json_lines(path)
        if path.suffix == ".parquet":
            return pl.read_parquet(path).cast(pl.String)
    except Exception as err:  # polars, arrow and datasets raise many unrelated types
        raise InputError(f"cannot read {path}: {err}") from err
    raise InputError(f"{path}: unsupported file type {path.suffix!r}: use .csv, .jsonl, .parquet or a saved dataset")


def read_json_lines(path: Path) -> pl.DataFrame:
    """A JSON Lines file as strings; a malformed line is an InputError naming the file and the line number."""
    try:
        return pl.read_ndjson(path).cast(pl.String)
    except Exception as err:  # polars reports only a character offset ("TapeError at character 24")
        raise bad_json_line(path) or InputError(f"cannot read {path}: {err}") from err


def bad_json_line(path: Path) -> InputError | None:
    """The error for the first line of `path` that is not a JSON object, if any."""
    with path.open(encoding="utf-8", errors="replace") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                value = json.loads(line)
            except json.JSONDecodeError as err:
                return InputError(
                    f"{path} line {number}: not valid JSON ({err.msg} at column {err.colno}): fix or drop the line"
                )
            if not isinstance(value, dict):
                return InputError(f"{path} line {number}: a JSON object per line is needed, not {type(value).__name__}")
    return None


def parse_label(raw: str | None, mapping: InputMapping) -> int | None:
    """Map a raw label through the mapping (0/1 without one); None when the mapping does not hold it."""
    value = label_key(raw)
    return (mapping.label_map or {"0": 0, "1": 1}).get(value)


def label_key(raw: str | None) -> str:
    """A raw label as a mapping key: stripped, with a float's `.0` dropped."""
    value = (raw or "").strip()
    return value[:-2] if value.endswith(".0") else value


def columns_example(mapping: InputMapping, values: pl.Series) -> str:
    """A `columns:` line for the config that maps every value of the label column (a guess to check)."""
    known = mapping.label_map or {}
    guessed = {
        key: int(key.lower() in POSITIVE_WORDS) for key in map(label_key, values.drop_nulls().unique().sort().head(10))
    }
    columns = {**mapping.model_dump(exclude_none=True), "label_map": {**guessed, **known}}
    return "columns: " + json.dumps(columns)


def unmapped_label(where: str, raw: str | None, mapping: InputMapping, values: pl.Series) -> InputError:
    """The error for a label outside the mapping: where, the mapping, and a `columns.label_map` to paste."""
    keys = sorted(mapping.label_map or {"0": 0, "1": 1})
    return InputError(
        f"{where}: label {raw!r} is not in the label mapping {keys}: map every value of column"
        f" {mapping.label_column!r} to 0 or 1 (1 = positive class) with columns.label_map in the generate"
        f" config (--config gen.yaml), e.g.\n{columns_example(mapping, values)}"
    )


def check_no_nul(where: str, fields: dict[str, str], mapping: InputMapping) -> None:
    """Refuse a text field holding a NUL byte (it would reach the prompt unseen)."""
    bad = [field for field, text in fields.items() if "\x00" in text]
    if bad:
        raise InputError(
            f"{where}: field {bad[0]!r} (column {mapping.field_columns[bad[0]]!r}) contains a NUL byte (\\x00):"
            " remove it from the file; NUL bytes are refused, not stripped"
        )


def load_examples(path: Path, task: TaskSpec, mapping: InputMapping, split: str) -> list[Example]:
    """Validated examples of one split file: all columns present, labels mapped, documents non-empty."""
    frame = read_table(path)
    needed = [mapping.label_column, *mapping.field_columns.values()] + (
        [mapping.id_column] if mapping.id_column else []
    )
    missing = [column for column in needed if column not in frame.columns]
    if missing:
        raise InputError(
            f"{path}: missing column(s) {missing}; the file has {frame.columns[:12]}."
            " Fix the file or set `columns` (id_column, field_columns, label_column) in the config"
        )
    examples = []
    for number, row in enumerate(frame.iter_rows(named=True), start=1):
        example_id = (row[mapping.id_column] or "").strip() if mapping.id_column else f"{split}-{number}"
        where = f"{path} row {number} (id {example_id!r})"
        if not example_id:
            raise InputError(f"{where}: empty id in column {mapping.id_column!r}: every row needs an id")
        fields = {field: (row[column] or "").strip() for field, column in mapping.field_columns.items()}
        check_no_nul(where, fields, mapping)
        empty = [field for field, text in fields.items() if not text]
        if empty:
            raise InputError(f"{where}: empty {empty} field: drop the row or fill it in")
        label = parse_label(row[mapping.label_column], mapping)
        if label is None:
            raise unmapped_label(where, row[mapping.label_column], mapping, frame[mapping.label_column])
        examples.append(Example(id=example_id, fields=fields, label=label, split=split))
    if not examples:
        raise InputError(f"{path} has no rows")
    return examples


def input_mapping(task: TaskSpec, override: InputMapping | None) -> InputMapping:
    """The mapping to use: the config's, else the task's default; the fields must match the task's."""
    mapping = override or task.input_mapping
    if mapping is None:
        raise InputError(f"task {task.name!r} has no default column mapping: set `columns` in the config")
    if sorted(mapping.field_columns) != sorted(task.input_fields):
        raise InputError(
            f"columns.field_columns maps {sorted(mapping.field_columns)} but task {task.name!r}"
            f" needs {sorted(task.input_fields)}"
        )
    return mapping


def load_splits(inputs: dict[str, Path], task: TaskSpec, mapping: InputMapping) -> list[Example]:
    """Examples of every split, with ids unique across all of them."""
    examples: list[Example] = []
    seen: dict[str, str] = {}
    for split, path in inputs.items():
        for example in load_examples(path, task, mapping, split):
            if example.id in seen:
                raise InputError(
                    f"{path}: duplicate id {example.id!r} (also in {seen[example.id]}): ids must be unique"
                )
            seen[example.id] = str(path)
            examples.append(example)
    return examples
