"""The run's fitted documents: each example's document within the task's token budget, held as Arrow columns."""

from collections.abc import Iterator, Mapping, Sequence

import polars as pl

from schemas.example import Example
from schemas.example_table import chunks
from schemas.task import TaskSpec
from schemas.truncation import TokenCounter, fit_counted


class FittedDocuments(Mapping[str, tuple[str, bool]]):
    """Example id -> (document within the token budget, whether it was cut); the texts stay in Arrow and become
    Python strings only when a request asks for one."""

    def __init__(self, frame: pl.DataFrame) -> None:
        self.documents, self.truncated = frame["document"], frame["truncated"]
        self.rows = {example_id: row for row, example_id in enumerate(frame["id"])}

    def __getitem__(self, example_id: str) -> tuple[str, bool]:
        row = self.rows[example_id]
        return self.documents[row], self.truncated[row]

    def __iter__(self) -> Iterator[str]:
        return iter(self.rows)

    def __len__(self) -> int:
        return len(self.rows)


def fitted_chunk(examples: Sequence[Example], task: TaskSpec, counter: TokenCounter) -> pl.DataFrame:
    """Columns id, document, truncated of a chunk of examples, tokenized in one batch."""
    fitted = fit_counted(examples, task, counter)
    return pl.DataFrame(
        {
            "id": [example.id for example in examples],
            "document": [document for document, _, _ in fitted],
            "truncated": [cut for _, cut, _ in fitted],
        },
        schema={"id": pl.String, "document": pl.String, "truncated": pl.Boolean},
    )


def fitted_documents(examples: Sequence[Example], task: TaskSpec, counter: TokenCounter) -> FittedDocuments:
    """The fitted document of every example, a chunk at a time (so one chunk's texts are Python strings at once)."""
    return FittedDocuments(pl.concat([fitted_chunk(chunk, task, counter) for chunk in chunks(examples)]))
