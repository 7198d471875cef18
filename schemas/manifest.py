"""Lineage record of a published dataset version, and the tool version stamped into runs and versions."""

from enum import StrEnum
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
    decisions_sha256: str | None = Field(None, description="hash of the merged decisions (a new one: a new round)")


class TestOverlap(Strict):
    """Test examples that also occur in train/validation: by id, and by normalised content (case, whitespace)."""

    by_id: list[str] = []
    by_content: list[str] = []
    allowed: bool = Field(False, description="published anyway with --allow-overlap")


class Integrity(Strict):
    """What publish checked and found: test leakage, and splits with a missing class or a shifted class share."""

    share_margin: float = Field(description="largest accepted move of a split's positive share from its input's")
    class_warnings: list[str] = []
    test_overlap: TestOverlap | None = Field(None, description="None when no test split was published")


class IncludedRows(StrEnum):
    """Row kinds a version holds only when `curate publish --include` asks for them."""

    rationalized = "rationalized"


class RationalizationSummary(Strict):
    """Rows `curate rationalize` recovered (the teacher given the gold label as a hint) that a version includes."""

    k: int = Field(description="K': hinted trials per discarded example")
    engine: str
    teacher_model: str
    rows: dict[str, int] = Field(description="rows with provenance `rationalized` per split")


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
    integrity: Integrity | None = Field(None, description="None in versions published before the checks existed")
    include: list[IncludedRows] = Field([], description="row kinds published on request (--include)")
    rationalization: RationalizationSummary | None = Field(None, description="None unless rationalized rows were")
    files: dict[str, str] = Field(
        {}, description="sha256 of every file in the version folder but this manifest, by relative path (none before)"
    )
