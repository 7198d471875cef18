"""Rows to predict on: any input file the project reads (CSV, JSON Lines, Parquet, a saved dataset), labels not
needed, read with the task's column mapping or the `--id-column` / `--column FIELD=COLUMN` options."""

from pathlib import Path

import polars as pl

from evaluate.io import Document
from schemas.inputs import InputError, collected, lazy_table, nul_error
from schemas.task import InputMapping, TaskSpec


def document_mapping(task: TaskSpec, id_column: str | None, columns: list[str]) -> InputMapping:
    """The task's default mapping (each field read from its own name when it has none), with the options applied."""
    base = task.input_mapping or InputMapping(field_columns={name: name for name in task.input_fields})
    field_columns = dict(base.field_columns)
    for item in columns:
        field, sep, column = item.partition("=")
        if not sep or not column or field not in task.input_fields:
            raise InputError(
                f"--column {item!r}: use FIELD=COLUMN with FIELD one of the task's fields {task.input_fields}"
            )
        field_columns[field] = column
    return base.model_copy(update={"id_column": id_column or base.id_column, "field_columns": field_columns})


def read_documents(path: Path, task: TaskSpec, mapping: InputMapping) -> list[Document]:
    """Every row of `path` as a Document: the task's columns present and non-empty, ids unique (`row-N` without an
    id column); InputError names the file, row or column and the fix."""
    path = Path(path)
    if path.is_file() and path.stat().st_size == 0:
        raise InputError(f"{path} is empty: pass a file with at least one row to predict on")
    frame = collected(path, lazy_table(path).select(pl.all().cast(pl.String)))
    needed = [*mapping.field_columns.values(), *([mapping.id_column] if mapping.id_column else [])]
    missing = [column for column in needed if column not in frame.columns]
    if missing:
        raise InputError(
            f"{path}: missing column(s) {missing}; the file has {frame.columns[:12]}: fix the file, or map the"
            " task's fields with --column FIELD=COLUMN (and the id with --id-column)"
        )
    documents: list[Document] = []
    seen: set[str] = set()
    for number, row in enumerate(frame.iter_rows(named=True), start=1):
        document_id = (row[mapping.id_column] or "").strip() if mapping.id_column else f"row-{number}"
        where = f"{path} row {number} (id {document_id!r})"
        if not document_id:
            raise InputError(f"{where}: empty id in column {mapping.id_column!r}: every row needs an id")
        if document_id in seen:
            raise InputError(f"{where}: duplicate id in column {mapping.id_column!r}: ids must be unique")
        seen.add(document_id)
        fields = {field: (row[column] or "").strip() for field, column in mapping.field_columns.items()}
        if nul := nul_error(where, fields, mapping):
            raise nul
        empty = [mapping.field_columns[field] for field, text in fields.items() if not text]
        if empty:
            raise InputError(f"{where}: empty column(s) {empty}: drop the row or fill it in")
        documents.append(Document(id=document_id, fields=fields))
    if not documents:
        raise InputError(f"{path} has no rows: pass a file with at least one row to predict on")
    return documents
