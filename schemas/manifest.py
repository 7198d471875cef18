"""Lineage record of a published dataset version, and the tool version stamped into runs and versions."""

from importlib.metadata import version
from typing import Any

from pydantic import Field

from schemas.base import Strict


def tool_version() -> str:
    """The installed clsgen version, as recorded in run.json and manifest.json."""
    return version("clsgen")


class SplitInfo(Strict):
    """Size, class balance and content hash of one published split."""

    count: int
    positives: int
    sha256: str


class ReviewSummary(Strict):
    """Human review decisions merged into a version (the latest submitted decision per example)."""

    reviewed: int
    kept: int
    dropped_noise: int
    wrong_gold_label: list[str]
    kept_without_explanation: list[str]
    not_discarded: int = Field(description="reviews of examples the run accepted after all: ignored")


class DatasetManifest(Strict):
    """Everything needed to trust and reproduce a dataset version."""

    name: str
    version: str = Field(pattern=r"^\d+\.\d+\.\d+$")
    parent_version: str | None = None
    created_at: str
    splits: dict[str, SplitInfo]
    task: str
    task_spec_hash: str
    task_spec: dict[str, Any]
    teacher_model: str
    engine: str
    sampling: dict[str, Any]
    k: int
    strategy: str
    review_rounds: int = 0
    tool_version: str
    source_run: str | None = None
    test_source: str | None = None
    review: ReviewSummary | None = None
