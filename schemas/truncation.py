"""`TaskSpec.max_input_tokens` counts tokens of the rendered document; fit a document into it by cutting only the
task's truncate field. Every stage (curate's engines, train, evaluate) measures with the same counters."""

from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Protocol

from schemas.example import Example
from schemas.example_table import chunks
from schemas.task import TaskSpec

if TYPE_CHECKING:
    from tokenizers import Tokenizer
    from transformers import PreTrainedTokenizerBase


class TokenCounter(Protocol):
    """Counts and truncates text in tokens (exactly with a tokenizer, or by an estimate)."""

    def count(self, text: str) -> int: ...

    def count_many(self, texts: Sequence[str]) -> list[int]: ...

    def truncate(self, text: str, max_tokens: int) -> str: ...


def cut_at(text: str, offsets: Sequence[tuple[int, int]], max_tokens: int) -> str:
    """The start of `text` holding its first `max_tokens` tokens, given every token's character offsets."""
    if max_tokens <= 0:
        return ""
    return text if len(offsets) <= max_tokens else text[: offsets[max_tokens - 1][1]]


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
        if self.tokenizer.is_fast:
            return BackendCounter(self.tokenizer.backend_tokenizer).count_many(texts)
        encoded = self.tokenizer(list(texts), add_special_tokens=False, return_attention_mask=False)
        return [len(ids) for ids in encoded["input_ids"]]

    def truncate(self, text: str, max_tokens: int) -> str:
        if max_tokens <= 0:
            return ""
        offsets = self.tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)["offset_mapping"]
        return cut_at(text, offsets, max_tokens)


class BackendCounter:
    """Exact counts from a `tokenizers.Tokenizer` (what a fast tokenizer runs on), with no transformers import: the
    same counts and cuts as `TokenizerCounter` of the fast tokenizer built from the same tokenizer.json."""

    def __init__(self, backend: "Tokenizer") -> None:
        self.backend = backend

    def count(self, text: str) -> int:
        return len(self.backend.encode(text, add_special_tokens=False))

    def count_many(self, texts: Sequence[str]) -> list[int]:
        """`count` of every text in one parallel call that computes no offsets."""
        return [len(encoding) for encoding in self.backend.encode_batch_fast(list(texts), add_special_tokens=False)]

    def truncate(self, text: str, max_tokens: int) -> str:
        if max_tokens <= 0:
            return ""
        return cut_at(text, self.backend.encode(text, add_special_tokens=False).offsets, max_tokens)


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
    return cut_to_fit(fields, task, total, count, cut, max_tokens)[0], True


def cut_to_fit(
    fields: Mapping[str, str],
    task: TaskSpec,
    total: int,
    count: Callable[[str], int],
    cut: Callable[[str, int], str],
    max_tokens: int,
) -> tuple[str, int]:
    """The document of `fields` (whose rendering counts `total` tokens, over `max_tokens`) with its truncate field
    cut until the whole document fits, or emptied; and its token count."""
    field = fields[task.truncate_field]
    budget = max_tokens - (total - count(field))
    while True:  # tokens can merge across the field's edges: shrink by the excess until the whole document fits
        document = task.render_document({**fields, task.truncate_field: cut(field, max(budget, 0))})
        tokens = count(document)
        if tokens <= max_tokens or budget <= 0:
            return document, tokens
        budget -= tokens - max_tokens


def fit_document(
    example: Example, task: TaskSpec, count: Callable[[str], int], cut: Callable[[str, int], str]
) -> tuple[str, bool]:
    """An example's document within the task's `max_input_tokens`, and whether its truncate field was cut."""
    return fit_fields(example.fields, task, count, cut, task.max_input_tokens)


def fit_counted(examples: Sequence[Example], task: TaskSpec, counter: TokenCounter) -> list[tuple[str, bool, int]]:
    """(document, cut, tokens) of every example: `fit_document` and the fitted document's token count, counting all
    documents in one batched call and cutting (one at a time) only those over the budget."""
    documents = [task.render_document(example.fields) for example in examples]
    limit = task.max_input_tokens
    fitted = []
    for example, document, total in zip(examples, documents, counter.count_many(documents), strict=True):
        if total <= limit:
            fitted.append((document, False, total))
        else:
            cut, tokens = cut_to_fit(example.fields, task, total, counter.count, counter.truncate, limit)
            fitted.append((cut, True, tokens))
    return fitted


def fit_in_chunks(
    examples: Sequence[Example], task: TaskSpec, counter: TokenCounter, size: int | None = None
) -> Iterator[tuple[str, bool, int]]:
    """`fit_counted` of `examples`, a chunk at a time, so the tokenizer's batch stays bounded however many there are."""
    for chunk in chunks(examples, size):
        yield from fit_counted(chunk, task, counter)
