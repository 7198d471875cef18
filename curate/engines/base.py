"""The engine protocol: a batch of chat requests in, one result per request out (in completion order)."""

from collections.abc import Iterator, Sequence
from typing import Any, Literal, Protocol

from pydantic import Field, model_validator

from schemas.base import Strict


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


class Engine(Protocol):
    """A teacher or judge backend. `generate` yields each result as soon as it is complete."""

    uri: str
    model_id: str
    supports_constraints: bool

    def generate(self, requests: Sequence[GenerationRequest]) -> Iterator[GenerationResult]: ...

    def count_tokens(self, text: str) -> int: ...

    def truncate_to_tokens(self, text: str, max_tokens: int) -> str: ...

    def close(self) -> None: ...


class EngineError(RuntimeError):
    """An engine could not be created or reached (bad URI, missing model, unreachable server)."""
