"""A validated input frame seen as a sequence of Examples, so a split's text is held once (in Arrow), not per row."""

from collections.abc import Iterator, Sequence
from typing import overload

import polars as pl

from schemas.example import Example

CHUNK_ROWS = 2048  # Examples built (and tokenized, and turned into columns) at a time


def chunks(examples: Sequence[Example], size: int | None = None) -> Iterator[list[Example]]:
    """`examples` `size` (default CHUNK_ROWS) at a time, each chunk built once; no examples give one empty chunk, so
    a caller building columns still gets them."""
    size = size or CHUNK_ROWS
    for start in range(0, max(len(examples), 1), size):
        yield list(examples[start : start + size])


def examples_of(frame: pl.DataFrame, fields: list[str]) -> list[Example]:
    """The rows of a validated frame (id, split, label, then one column per field) as Examples, built without
    validating again (the frame is checked already)."""
    return [
        Example.model_construct(id=row[0], split=row[1], label=row[2], fields=dict(zip(fields, row[3:], strict=True)))
        for row in frame.iter_rows()
    ]


class ExampleTable(Sequence[Example]):
    """Examples of a validated frame, built on access (a chunk at a time when iterated); a slice is another table
    over the same Arrow buffers."""

    def __init__(self, frame: pl.DataFrame, fields: list[str]) -> None:
        self.frame, self.fields = frame, fields

    def __len__(self) -> int:
        return self.frame.height

    @overload
    def __getitem__(self, index: int) -> Example: ...

    @overload
    def __getitem__(self, index: slice) -> "ExampleTable": ...

    def __getitem__(self, index: int | slice) -> "Example | ExampleTable":
        if isinstance(index, slice):
            return ExampleTable(self.frame[index], self.fields)
        if not -len(self) <= index < len(self):
            raise IndexError(f"example {index} of {len(self)}")
        return examples_of(self.frame.slice(index % len(self), 1), self.fields)[0]

    def __iter__(self) -> Iterator[Example]:
        for start in range(0, len(self), CHUNK_ROWS):
            yield from examples_of(self.frame.slice(start, CHUNK_ROWS), self.fields)
