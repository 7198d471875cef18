"""Token counting, truncation and chat-prompt ids shared by the engines (the exact counter lives in schemas)."""

import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from curate.engines.base import EngineError
from schemas.truncation import BackendCounter, TokenCounter, TokenizerCounter

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

CHARS_PER_TOKEN = 4


class CharEstimateCounter:
    """A tokenizer-free estimate: one token per ~4 characters (typical for English BPE vocabularies)."""

    def count(self, text: str) -> int:
        return math.ceil(len(text) / CHARS_PER_TOKEN)

    def count_many(self, texts: Sequence[str]) -> list[int]:
        return [self.count(text) for text in texts]

    def truncate(self, text: str, max_tokens: int) -> str:
        return text[: max(max_tokens, 0) * CHARS_PER_TOKEN]


def load_tokenizer(path: str) -> "PreTrainedTokenizerBase":
    """Load a tokenizer from a folder or hub id; a failure is an EngineError naming the path."""
    from transformers import AutoTokenizer  # heavy (torch): only engines and counters without a tokenizer.json

    try:
        return AutoTokenizer.from_pretrained(path)
    except (OSError, ValueError) as err:
        raise EngineError(f"cannot load a tokenizer from {path!r}: {err}") from err


def load_counter(path: str) -> TokenCounter:
    """The exact counter of the tokenizer at a folder or hub id: straight from the folder's tokenizer.json when it
    has one (no transformers import, a fraction of the memory), else through transformers."""
    file = Path(path).expanduser() / "tokenizer.json"
    if not file.is_file():
        return TokenizerCounter(load_tokenizer(path))
    from tokenizers import Tokenizer

    try:
        return BackendCounter(Tokenizer.from_file(str(file)))
    except Exception as err:  # the Rust loader raises a bare Exception on a malformed file
        raise EngineError(f"cannot load a tokenizer from {file}: {err}") from err


def prompt_ids(tokenizer: "PreTrainedTokenizerBase", messages: list[dict[str, str]]) -> list[int]:
    """Chat-template ids with the assistant generation prompt; the template adds BOS itself, so no double BOS."""
    return list(tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_dict=True)["input_ids"])


class CountsTokens:
    """Engine methods `count_tokens` / `truncate_to_tokens`, delegated to the engine's `counter`."""

    counter: TokenCounter

    def count_tokens(self, text: str) -> int:
        return self.counter.count(text)

    def truncate_to_tokens(self, text: str, max_tokens: int) -> str:
        return self.counter.truncate(text, max_tokens)
