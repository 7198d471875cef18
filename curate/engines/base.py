"""The engine protocol: chat requests in, one result per request out (in completion order), as a batch or a
stream that takes new requests while results come back."""

import hashlib
from collections.abc import Iterator, Sequence
from typing import Any, Literal, Protocol, Self

from pydantic import Field, model_validator

from schemas.base import Strict
from schemas.truncation import TokenCounter


class Constraint(Strict):
    """Structured-output constraint: a JSON schema or a regex (exactly one)."""

    json_schema: dict[str, Any] | None = None
    regex: str | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> "Constraint":
        if (self.json_schema is None) == (self.regex is None):
            raise ValueError("a Constraint needs exactly one of json_schema or regex")
        return self


class GenerationRequest(Strict):
    """One sampled completion of a chat conversation."""

    key: str = Field(description="caller's id for matching the result, e.g. 'EXAMPLE_ID/3'")
    messages: list[dict[str, str]]
    seed: int
    max_tokens: int = 512
    temperature: float = 0.7
    top_p: float = 1.0
    constraint: Constraint | None = None


class GenerationResult(Strict):
    """The engine's answer to one request; `finish_reason` is 'stop', 'length' or 'error'."""

    key: str
    text: str = ""
    prompt_tokens: int = 0
    completion_tokens: int = 0
    finish_reason: Literal["stop", "length", "error"] = "stop"
    error: str | None = None
    latency_s: float = 0.0


class RequestStream(Protocol):
    """Requests submitted at any time; iterating yields each result as it finishes, and ends when nothing is
    queued or in flight."""

    def submit(self, requests: Sequence[GenerationRequest]) -> None: ...

    def __iter__(self) -> Iterator[GenerationResult]: ...


class Engine(Protocol):
    """A teacher or judge backend. `generate` yields each result as soon as it is complete; `stream` also takes
    requests while others are in flight when `streams` is True (else it runs them in round barriers)."""

    uri: str
    model_id: str
    supports_constraints: bool
    streams: bool
    counter: TokenCounter  # the engine's own tokenizer: what fits a document to the prompt budget

    def generate(self, requests: Sequence[GenerationRequest]) -> Iterator[GenerationResult]: ...

    def stream(self) -> RequestStream: ...

    def count_tokens(self, text: str) -> int: ...

    def truncate_to_tokens(self, text: str, max_tokens: int) -> str: ...

    def close(self) -> None: ...

    def __enter__(self) -> Self: ...

    def __exit__(self, *exc: object) -> None: ...


class ClosesOnExit:
    """`with open_engine(uri) as engine:` closes the engine (frees its model and workers) on the way out."""

    def close(self) -> None:
        """Release what the engine holds; implementations override it."""

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class BatchStream:
    """A RequestStream for engines that cannot stream: each `generate` call takes everything submitted before it
    started, so requests submitted meanwhile wait for the next call (a round barrier, as in `rounds`)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.queued: list[GenerationRequest] = []

    def submit(self, requests: Sequence[GenerationRequest]) -> None:
        """Queue requests for the next `generate` call."""
        self.queued.extend(requests)

    def __iter__(self) -> Iterator[GenerationResult]:
        while self.queued:
            batch, self.queued = self.queued, []
            yield from self.engine.generate(batch)


class BatchStreams:
    """Mixin for engines without streaming: `stream()` is a BatchStream over their `generate`."""

    streams = False

    def stream(self) -> BatchStream:
        """A stream that runs the submitted requests in round barriers."""
        return BatchStream(self)


class GeneratesByStreaming:
    """Mixin for engines that stream: `generate` submits the batch to a fresh `stream()` and yields from it."""

    streams = True

    def generate(self, requests: Sequence[GenerationRequest]) -> Iterator[GenerationResult]:
        """Yield each result as it finishes."""
        stream = self.stream()  # type: ignore[attr-defined]  # the host engine's
        stream.submit(requests)
        yield from stream


class EngineError(ValueError):
    """An engine could not be created or reached from what the user gave (URI, model, server): exit code 2."""


def trial_seed(base_seed: int, example_id: str, trial: int) -> int:
    """A 31-bit request seed from (base seed, example id, trial): retries differ and reruns repeat."""
    digest = hashlib.blake2b(f"{base_seed}\x1f{example_id}\x1f{trial}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") % (2**31 - 1)
