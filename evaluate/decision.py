"""The decision threshold a prediction's label uses, and where it came from: `--threshold`, a thresholds file,
the run's `selection.json` (when it selected this checkpoint), else 0.5."""

from pathlib import Path

from pydantic import Field

from evaluate.metrics import Thresholds
from evaluate.pipeline import load_thresholds
from evaluate.select import selected_thresholds
from schemas.base import Strict

DEFAULT_THRESHOLD = 0.5


class Decision(Strict):
    """A label is positive when P(positive) >= `threshold`; `source` says where the value came from."""

    threshold: float = Field(ge=0.0, le=1.0)
    source: str

    def label(self, p_head: float) -> int:
        """The predicted label of a head probability at this threshold."""
        return int(p_head >= self.threshold)


def from_thresholds(found: tuple[Thresholds, str] | None) -> Decision:
    """The dev-tuned F1 threshold of (thresholds, file), else 0.5 saying why."""
    if found is None:
        return Decision(threshold=DEFAULT_THRESHOLD, source="default 0.5 (no selection.json selected this checkpoint)")
    thresholds, origin = found
    if thresholds.f1 is None:
        return Decision(threshold=DEFAULT_THRESHOLD, source=f"default 0.5 ({origin} has no F1 threshold)")
    return Decision(threshold=thresholds.f1, source=f"f1 threshold of {origin}")


def decision_for(checkpoint: Path, threshold: float | None, thresholds_path: Path | None) -> Decision:
    """The decision of a command's options; ValueError when both are given or the file is unreadable."""
    if threshold is not None and thresholds_path is not None:
        raise ValueError("give --threshold or --thresholds, not both")
    if threshold is not None:
        return Decision(threshold=threshold, source="--threshold")
    if thresholds_path is not None:
        return from_thresholds(load_thresholds(thresholds_path))
    return from_thresholds(selected_thresholds(checkpoint))
