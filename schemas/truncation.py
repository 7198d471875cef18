"""`TaskSpec.max_input_tokens` counts tokens of the rendered document; fit a document into it by cutting only the
task's truncate field. Every stage (curate's engines, train, evaluate) measures with the same counters."""

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Protocol

from schemas.example import Example
from schemas.task import TaskSpec

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase


class TokenCounter(Protocol):
    """Counts and truncates text in tokens (exactly with a tokenizer, or by an estimate)."""

    def count(self, text: str) -> int: ...

    def count_many(self, texts: Sequence[str]) -> list[int]: ...

    def truncate(self, text: str, max_tokens: int) -> str: ...


class TokenizerCounter:
    """Exact counts from a Hugging Face tokenizer; truncation keeps the start of the text verbatim."""

    def __init__(self, tokenizer: "PreTrainedTokenizerBase") -> None:
        self.tokenizer = tokenizer

    def count(self, text: str) -> int:
        return len(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def count_many(self, texts: Sequence[str]) -> list[int]:
        """`count` of every text in one tokenizer call (a fast tokenizer encodes the batch in parallel)."""
        if not texts:
            return []
        encoded = self.tokenizer(list(texts), add_special_tokens=False, return_attention_mask=False)
        return [len(ids) for ids in encoded["input_ids"]]

    def truncate(self, text: str, max_tokens: int) -> str:
        if max_tokens <= 0:
            return ""
        offsets = self.tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)["offset_mapping"]
        return text if len(offsets) <= max_tokens else text[: offsets[max_tokens - 1][1]]


def fit_fields(
    fields: Mapping[str, str],
    task: TaskSpec,
    count: Callable[[str], int],
    cut: Callable[[str, int], str],
    max_tokens: int,
) -> tuple[str, bool]:
    """The rendered document within `max_tokens` (cut from the end of the truncate field only), and whether it was
    cut; over budget only when the other fields alone exceed it."""
    document = task.render_document(fields)
    total = count(document)
    if total <= max_tokens:
        return document, False
    return cut_to_fit(fields, task, total, count, cut, max_tokens), True


def cut_to_fit(
    fields: Mapping[str, str],
    task: TaskSpec,
    total: int,
    count: Callable[[str], int],
    cut: Callable[[str, int], str],
    max_tokens: int,
) -> str:
    """The document of `fields` (whose rendering counts `total` tokens, over `max_tokens`) with its truncate field
    cut until the whole document fits, or emptied."""
    field = fields[task.truncate_field]
    budget = max_tokens - (total - count(field))
    while True:  # tokens can merge across the field's edges: shrink by the excess until the whole document fits
        document = task.render_document({**fields, task.truncate_field: cut(field, max(budget, 0))})
        excess = count(document) - max_tokens
        if excess <= 0 or budget <= 0:
            return document
        budget -= excess


def fit_document(
    example: Example, task: TaskSpec, count: Callable[[str], int], cut: Callable[[str, int], str]
) -> tuple[str, bool]:
    """An example's document within the task's `max_input_tokens`, and whether its truncate field was cut."""
    return fit_fields(example.fields, task, count, cut, task.max_input_tokens)


def fit_documents(examples: Sequence[Example], task: TaskSpec, counter: TokenCounter) -> list[tuple[str, bool]]:
    """`fit_document` of every example, counting all documents in one batched call and cutting only those over."""
    documents = [task.render_document(example.fields) for example in examples]
    limit = task.max_input_tokens
    return [
        (document, False)
        if total <= limit
        else (cut_to_fit(example.fields, task, total, counter.count, counter.truncate, limit), True)
        for example, document, total in zip(examples, documents, counter.count_many(documents), strict=True)
    ]
