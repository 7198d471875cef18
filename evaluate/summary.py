"""Turn prediction rows into a `metrics.json`: point metrics, bootstrap intervals, calibration."""

from typing import Any

import numpy as np

from evaluate.io import Calibration, MetricsFile, PredictionRow
from evaluate.metrics import ECE_BINS, Thresholds, bootstrap_intervals, compute_metrics, reliability_bins


def arrays(rows: list[PredictionRow]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gold labels, probabilities and verbalized labels as arrays (NaN for a missing value)."""
    gold = np.array([row.gold for row in rows], dtype=int)
    p = np.array([np.nan if row.p_head is None else row.p_head for row in rows], dtype=float)
    verbal = np.array([np.nan if row.verbalized_label is None else row.verbalized_label for row in rows], dtype=float)
    return gold, p, verbal


def summarize(
    rows: list[PredictionRow],
    *,
    method: str,
    split: str,
    thresholds: Thresholds | None,
    threshold_source: str | None,
    source: dict[str, Any],
    n_bootstrap: int = 1000,
    seed: int | None = None,
    bootstrap_seed: int = 0,
) -> MetricsFile:
    """Every metric of one method on one split."""
    if not rows:
        raise ValueError(f"no predictions to summarize for {method} on {split}")
    gold, p, verbal = arrays(rows)
    has_text = any(row.parse_status != "none" for row in rows)
    values, reasons = compute_metrics(gold, p, verbal, thresholds, has_text)
    scored = ~np.isnan(p)
    return MetricsFile(
        method=method,
        split=split,
        seed=seed,
        n=len(rows),
        n_scored=int(scored.sum()),
        metrics=values,
        null_reasons=reasons,
        intervals=bootstrap_intervals(gold, p, verbal, thresholds, n_bootstrap, bootstrap_seed, has_text),
        n_bootstrap=n_bootstrap,
        thresholds=thresholds,
        threshold_source=threshold_source,
        calibration=Calibration(ece_bins=ECE_BINS, bins=reliability_bins(gold[scored], p[scored], ECE_BINS)),
        source=source,
    )
