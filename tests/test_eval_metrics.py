"""Metrics against scikit-learn and hand-computed cases; undefined metrics are null with a reason."""

import numpy as np
import pytest
from sklearn.calibration import calibration_curve
from sklearn.metrics import cohen_kappa_score, f1_score

from evaluate.io import PredictionRow, read_metrics, read_predictions, write_metrics, write_predictions
from evaluate.metrics import (
    Thresholds,
    UndefinedMetric,
    auroc,
    bootstrap_intervals,
    compute_metrics,
    ece,
    kappa,
    precision_recall_f1,
    tune_f1_threshold,
    tune_kappa_threshold,
    tune_thresholds,
)
from evaluate.summary import summarize


def random_case(n: int = 200, seed: int = 1) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    gold = rng.integers(0, 2, n)
    p = np.clip(0.3 * gold + rng.uniform(0, 0.7, n), 0, 1)
    verbal = np.where(rng.uniform(size=n) < 0.8, gold, 1 - gold).astype(float)
    verbal[rng.uniform(size=n) < 0.1] = np.nan
    return gold, p, verbal


def test_hand_computed_auroc_prf_kappa() -> None:
    y = np.array([0, 0, 1, 1])
    p = np.array([0.1, 0.4, 0.35, 0.8])
    assert auroc(y, p) == pytest.approx(0.75)  # 3 of 4 positive/negative pairs ordered correctly
    precision, recall, f1 = precision_recall_f1(y, p, 0.3)  # predicts 0,1,1,1
    assert (precision, recall, f1) == pytest.approx((2 / 3, 1.0, 0.8))
    # head at 0.5: 0,0,0,1 vs verbal 0,1,0,1 -> agreement 3/4, chance 0.5 -> kappa 0.5
    assert kappa(np.array([0, 1, 0, 1]), p, 0.5) == pytest.approx(0.5)


def test_hand_computed_ece() -> None:
    y = np.array([0, 1, 1, 1])
    p = np.array([0.1, 0.1, 0.9, 0.9])
    # bin of 0.1: mean p 0.1, positives 0.5 -> 0.4 * 2/4; bin of 0.9: 0.9 vs 1.0 -> 0.1 * 2/4
    assert ece(y, p) == pytest.approx(0.25)


def test_ece_matches_sklearn_calibration_curve() -> None:
    gold, p, _ = random_case()
    prob_true, prob_pred = calibration_curve(gold, p, n_bins=15, strategy="uniform")
    counts = np.histogram(p, bins=np.linspace(0, 1, 16))[0]
    counts = counts[counts > 0]
    assert ece(gold, p) == pytest.approx(float(np.sum(counts / len(p) * np.abs(prob_true - prob_pred))))


def test_tuned_thresholds_are_the_best_on_their_own_metric() -> None:
    gold, p, verbal = random_case()
    best_f1 = max(f1_score(gold, (p >= t).astype(int)) for t in np.unique(p))
    t_f1 = tune_f1_threshold(gold, p)
    assert f1_score(gold, (p >= t_f1).astype(int)) == pytest.approx(best_f1)
    keep = ~np.isnan(verbal)
    v, pk = verbal[keep].astype(int), p[keep]
    best_kappa = max(cohen_kappa_score((pk >= t).astype(int), v) for t in np.unique(pk))
    assert cohen_kappa_score((pk >= tune_kappa_threshold(v, pk)).astype(int), v) == pytest.approx(best_kappa)
    thresholds, reasons = tune_thresholds(gold, p, verbal)
    assert thresholds.f1 == t_f1 and thresholds.kappa is not None and not reasons


def test_compute_metrics_uses_each_threshold_and_parsed_rows_only() -> None:
    gold, p, verbal = random_case()
    thresholds = Thresholds(f1=0.4, kappa=0.6)
    values, reasons = compute_metrics(gold, p, verbal, thresholds)
    keep = ~np.isnan(verbal)
    assert values["parsability"] == pytest.approx(keep.mean())
    assert values["f1_tuned"] == pytest.approx(f1_score(gold, (p >= 0.4).astype(int)))
    assert values["kappa_tuned"] == pytest.approx(cohen_kappa_score((p[keep] >= 0.6).astype(int), verbal[keep]))
    assert values["auroc_align"] == pytest.approx(auroc(verbal[keep].astype(int), p[keep]))
    assert not reasons


def test_single_class_split_gives_null_with_reason_not_a_crash() -> None:
    gold = np.ones(5, dtype=int)
    p = np.linspace(0.1, 0.9, 5)
    verbal = np.array([1, 1, np.nan, 1, 0], dtype=float)
    values, reasons = compute_metrics(gold, p, verbal, None)
    assert values["auroc"] is None
    assert reasons["auroc"] == "the gold labels hold no negative examples (all 5 are positive), so AUROC is undefined"
    assert values["f1_tuned"] is None and "evaluate select" in reasons["f1_tuned"]
    assert values["auroc_align"] is not None and values["brier"] is not None
    with pytest.raises(UndefinedMetric, match="no negative examples .* so the F1 threshold cannot be tuned"):
        tune_f1_threshold(gold, p)
    intervals = bootstrap_intervals(gold, p, verbal, None, n_resamples=50)
    assert "auroc" not in intervals and "brier" in intervals


def test_every_null_reason_says_its_cause_in_plain_words() -> None:
    gold = np.array([0, 1, 0, 1])
    p = np.array([0.9, 0.8, 0.7, 0.6])
    values, reasons = compute_metrics(gold, p, np.array([1.0, 1.0, 1.0, np.nan]), None)
    assert reasons["auroc_align"] == (
        "the verbalized labels hold no negative examples (all 3 are positive), so AUROC-alignment is undefined"
    )
    assert reasons["kappa_at_05"] == (
        "the head (at threshold 0.50) and the text both say positive for every row, so kappa is undefined"
    )
    _, unparsed = compute_metrics(gold, p, np.full(4, np.nan), None)
    assert unparsed["kappa_at_05"] == "no generated text gave a verbalized label, so it is undefined"
    _, unscored = compute_metrics(gold, np.full(4, np.nan), np.full(4, np.nan), None)
    assert unscored["ece"] == "there are no rows with a head probability, so ECE is undefined"
    assert (
        unscored["f1_at_05"] == "there are no rows with a head probability, so precision, recall and F1 are undefined"
    )


def test_bootstrap_interval_brackets_the_point_value_and_is_seeded() -> None:
    gold, p, verbal = random_case()
    first = bootstrap_intervals(gold, p, verbal, None, n_resamples=200, seed=3)
    assert first == bootstrap_intervals(gold, p, verbal, None, n_resamples=200, seed=3)
    lo, hi = first["auroc"]
    assert lo < auroc(gold, p) < hi and hi - lo < 0.3


def test_predictions_and_metrics_round_trip(tmp_path) -> None:
    gold, p, verbal = random_case(40)
    rows = [
        PredictionRow(
            id=f"e{i}",
            gold=int(g),
            p_head=float(q),
            text="t",
            verbalized_label=None if np.isnan(v) else int(v),
            parse_status="unparseable" if np.isnan(v) else "ok",
        )
        for i, (g, q, v) in enumerate(zip(gold, p, verbal, strict=True))
    ]
    write_predictions(rows, tmp_path / "predictions.parquet")
    assert read_predictions(tmp_path) == rows
    summary = summarize(
        rows, method="m", split="test", thresholds=None, threshold_source=None, source={}, n_bootstrap=20
    )
    write_metrics(summary, tmp_path / "metrics.json")
    loaded = read_metrics(tmp_path)
    assert loaded == summary and sum(b.count for b in loaded.calibration.bins) == 40


def test_predictions_missing_a_column_is_a_clear_error(tmp_path) -> None:
    import polars as pl

    pl.DataFrame({"id": ["a"], "gold": [1], "p_head": [0.2], "text": ["x"]}).write_parquet(tmp_path / "p.parquet")
    with pytest.raises(ValueError, match=r"missing column\(s\) \['verbalized_label', 'parse_status'\]"):
        read_predictions(tmp_path / "p.parquet")
