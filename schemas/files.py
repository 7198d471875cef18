"""Crash-safe files every stage writes: atomic replacement of whole files, and an append-only journal."""

import os
import tempfile
from pathlib import Path
from typing import Generic, TypeVar

import polars as pl
from pydantic import BaseModel, ValidationError

Record = TypeVar("Record", bound=BaseModel)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write a file so that readers see the old or the new content, never half of it."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_parquet(frame: pl.DataFrame, path: Path) -> None:
    """Write a Parquet file atomically."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.close(fd)
    try:
        frame.write_parquet(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class Journal(Generic[Record]):
    """A crash-safe log of pydantic records in one `.jsonl` file."""

    def __init__(self, path: Path, model: type[Record]) -> None:
        self.path = Path(path)
        self.model = model
        self.handle = None

    def read(self) -> tuple[list[Record], int]:
        """Complete records and the byte length they span, leaving the file as it is (a torn last line is skipped)."""
        if not self.path.is_file():
            return [], 0
        data = self.path.read_bytes()
        records: list[Record] = []
        good_end = 0
        for line in data.splitlines(keepends=True):
            if not line.endswith(b"\n"):
                break
            try:
                records.append(self.model.model_validate_json(line))
            except ValidationError as err:
                if good_end + len(line) == len(data):
                    break
                raise ValueError(f"{self.path}: corrupt record at byte {good_end}: {err}") from err
            good_end += len(line)
        return records, good_end

    def load(self) -> list[Record]:
        """All complete records; a torn or unreadable last line (a killed writer) is cut off the file."""
        records, good_end = self.read()
        if self.path.is_file() and good_end < self.path.stat().st_size:
            with self.path.open("r+b") as handle:
                handle.truncate(good_end)
        return records

    def append(self, record: Record) -> None:
        """Write one record and make it durable before returning."""
        if self.handle is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.handle = self.path.open("ab")
        self.handle.write(record.model_dump_json().encode() + b"\n")
        self.handle.flush()
        os.fsync(self.handle.fileno())

    def close(self) -> None:
        """Close the file handle (appending again reopens it)."""
        if self.handle is not None:
            self.handle.close()
            self.handle = None
