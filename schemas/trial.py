"""One teacher attempt at one example, as journaled."""

from enum import StrEnum

from schemas.base import Strict


class TrialStatus(StrEnum):
    """Outcome of a trial; only `accepted` ends an example's search."""

    accepted = "accepted"
    wrong_label = "wrong_label"
    unparseable = "unparseable"
    invalid = "invalid"
    truncated = "truncated"
    error = "error"


class TrialKind(StrEnum):
    """Which loop asked: Algorithm 1 (`generate`), or `rationalize` with the gold label given as a hint."""

    generate = "generate"
    rationalize = "rationalize"


class Trial(Strict):
    """A journal row: what was asked, what came back, and how it was judged."""

    kind: TrialKind = TrialKind.generate
    example_id: str
    split: str
    gold_label: int
    trial: int
    seed: int
    status: TrialStatus
    reason: str | None = None
    label: int | None = None
    explanation: str | None = None
    raw_text: str = ""
    prompt_tokens: int = 0
    completion_tokens: int = 0
    finish_reason: str | None = None
    engine: str
    model_id: str
    latency_s: float = 0.0
    created_at: float = 0.0
