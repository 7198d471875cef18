"""Read labelled split files (CSV, JSON Lines, Parquet, saved HF datasets) into validated Examples."""

import json
import re
from pathlib import Path

import polars as pl

from schemas.example import Example
from schemas.example_table import ExampleTable, examples_of
from schemas.task import InputMapping, TaskSpec

SPLIT_PATTERNS = (("train", r"train"), ("validation", r"valid|(^|[^a-z])dev([^a-z]|$)"), ("test", r"test"))
TABULAR = {".csv", ".jsonl", ".json", ".parquet"}
POSITIVE_WORDS = {"1", "yes", "true", "positive", "pos", "y"}  # guessed as 1 in a suggested label_map
WHITESPACE = "".join(chr(code) for code in range(0x110000) if chr(code).isspace())  # what `str.strip()` removes


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


def scan_columns(path: Path, columns: list[str]) -> pl.LazyFrame:
    """A lazy view of `columns` of one input file, as strings (nothing read yet beyond the header); a missing column
    or an unreadable file is an InputError naming the file and the fix."""
    try:
        frame = lazy_table(path)
        names = frame.collect_schema().names()
    except InputError:
        raise
    except Exception as err:  # polars, arrow and datasets raise many unrelated types
        raise InputError(f"cannot read {path}: {err}") from err
    missing = [column for column in columns if column not in names]
    if missing:
        raise InputError(
            f"{path}: missing column(s) {missing}; the file has {names[:12]}."
            " Fix the file or set `columns` (id_column, field_columns, label_column) in the config"
        )
    return frame.select(pl.col(columns).cast(pl.String))


def collected(path: Path, frame: pl.LazyFrame) -> pl.DataFrame:
    """Run a query over one input file in polars' streaming engine (the file is read in batches, never whole);
    a parse failure is an InputError naming the file."""
    try:
        return frame.collect(engine="streaming")
    except Exception as err:  # polars raises many unrelated types
        raise InputError(f"cannot read {path}: {err}") from err


def lazy_table(path: Path) -> pl.LazyFrame:
    """A lazy view of one input file (CSV as strings); an unsupported file type is an InputError."""
    if path.is_dir():
        from datasets import load_from_disk

        return pl.from_arrow(load_from_disk(str(path)).data.table).lazy()
    if path.suffix == ".csv":
        return pl.scan_csv(path, infer_schema=False)
    if path.suffix in {".jsonl", ".json"}:
        return read_json_lines(path).lazy()
    if path.suffix == ".parquet":
        return pl.scan_parquet(path)
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


def needed_columns(mapping: InputMapping) -> list[str]:
    """The columns a split file must hold: label, text fields and the id column (when the mapping names one)."""
    return list(
        dict.fromkeys([mapping.label_column, *mapping.field_columns.values(), *filter(None, [mapping.id_column])])
    )


def nul_error(where: str, fields: dict[str, str], mapping: InputMapping) -> InputError | None:
    """The error for a text field holding a NUL byte (it would reach the prompt unseen), or None."""
    bad = [field for field, text in fields.items() if "\x00" in text]
    if not bad:
        return None
    return InputError(
        f"{where}: field {bad[0]!r} (column {mapping.field_columns[bad[0]]!r}) contains a NUL byte (\\x00):"
        " remove it from the file; NUL bytes are refused, not stripped"
    )


def row_error(where: str, example_id: str, row: dict, mapping: InputMapping, labels: pl.Series) -> InputError | None:
    """The first problem of one raw row (empty id, NUL byte, empty field, unmapped label), or None."""
    if not example_id:
        return InputError(f"{where}: empty id in column {mapping.id_column!r}: every row needs an id")
    fields = {field: (row[column] or "").strip() for field, column in mapping.field_columns.items()}
    if nul := nul_error(where, fields, mapping):
        return nul
    empty = [field for field, text in fields.items() if not text]
    if empty:
        return InputError(f"{where}: empty {empty} field: drop the row or fill it in")
    if parse_label(row[mapping.label_column], mapping) is None:
        return unmapped_label(where, row[mapping.label_column], mapping, labels)
    return None


def stripped(column: str) -> pl.Expr:
    """A string column with nulls as "" and Python's `str.strip()` whitespace removed from both ends."""
    return pl.col(column).fill_null("").str.strip_chars(WHITESPACE)


def validated_frame(path: Path, mapping: InputMapping, split: str) -> pl.DataFrame:
    """One split file as columns id, split, label and one per task field (stripped), every row checked at once;
    the first bad row is an InputError naming it, the same as a row-by-row check would."""
    raw = scan_columns(path, needed_columns(mapping))
    frame = collected(
        path,
        raw.select(
            (
                stripped(mapping.id_column)
                if mapping.id_column
                else pl.format(f"{split}-{{}}", pl.int_range(1, pl.len() + 1))
            ).alias("id"),
            pl.lit(split).alias("split"),
            stripped(mapping.label_column)
            .str.strip_suffix(".0")
            .replace_strict(mapping.label_map or {"0": 0, "1": 1}, default=None, return_dtype=pl.Int64)
            .alias("label"),
            *(stripped(column).alias(field) for field, column in mapping.field_columns.items()),
        ),
    )
    if frame.height == 0:
        raise InputError(f"{path} has no rows")
    fields = list(mapping.field_columns)
    bad = (pl.col("id") == "") | pl.col("label").is_null()
    bad = pl.any_horizontal(bad, *(pl.col(f).str.contains("\x00", literal=True) | (pl.col(f) == "") for f in fields))
    first = frame.select(bad.arg_true().first()).item()
    if first is not None:
        example_id = frame["id"][first]
        row = collected(path, raw.slice(first, 1)).row(0, named=True)
        labels = collected(path, raw.select(mapping.label_column)).to_series()
        raise row_error(f"{path} row {first + 1} (id {example_id!r})", example_id, row, mapping, labels)
    return frame


def load_examples(path: Path, task: TaskSpec, mapping: InputMapping, split: str) -> list[Example]:
    """Validated examples of one split file: all columns present, labels mapped, documents non-empty."""
    return examples_of(validated_frame(path, mapping, split), list(mapping.field_columns))


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


def load_splits(inputs: dict[str, Path], task: TaskSpec, mapping: InputMapping) -> ExampleTable:
    """Examples of every split, with ids unique across all of them, held as one frame."""
    return ExampleTable(validated_splits(inputs, mapping), list(mapping.field_columns))


def validated_splits(inputs: dict[str, Path], mapping: InputMapping) -> pl.DataFrame:
    """`validated_frame` of every split, one after the other, with ids unique across all of them."""
    frames: list[pl.DataFrame] = []
    seen = pl.DataFrame(schema={"id": pl.String, "path": pl.String})
    for split, path in inputs.items():
        frame = validated_frame(path, mapping, split)
        ids = frame.select("id", pl.lit(str(path)).alias("path"))
        both = pl.concat([seen, ids])
        repeated = both.select(duplicate=~pl.col("id").is_first_distinct()).to_series()[seen.height :]
        first = repeated.arg_true().head(1).to_list()
        if first:
            example_id = ids["id"][first[0]]
            also = both.filter(pl.col("id") == example_id)["path"][0]
            raise InputError(f"{path}: duplicate id {example_id!r} (also in {also}): ids must be unique")
        seen = both
        frames.append(frame)
    return pl.concat(frames)
