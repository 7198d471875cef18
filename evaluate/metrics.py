"""The paper's metrics (section 5.3, appendix A.2.2) plus calibration and bootstrap intervals.

Conventions: `p` is the head's P(positive) (NaN where a baseline gave none: those rows count only for
parsability); `verbal` is the verbalized label, NaN where the text gave none. A row is predicted positive when
`p >= threshold`. Metrics that involve the verbalized label (AUROC-alignment, kappa) use the rows whose text
gave a label. ECE is over the positive-class probability with 15 equal-width bins, right-closed like
`sklearn.calibration.calibration_curve`.
An undefined metric raises `UndefinedMetric` with the reason; `compute_metrics` turns it into `null` + reason.
"""

from collections.abc import Callable

import numpy as np
from pydantic import Field
from sklearn.metrics import (
    brier_score_loss,
    cohen_kappa_score,
    f1_score,
    precision_recall_curve,
    precision_score,
    recall_score,
    roc_auc_score,
)

from schemas.base import Strict

ECE_BINS = 15


class UndefinedMetric(ValueError):
    """A metric has no value on this data (e.g. AUROC on one class); the message says why."""


class Thresholds(Strict):
    """Dev-tuned decision thresholds, one per threshold-dependent metric (precision/recall use F1's)."""

    f1: float | None = Field(None, ge=0.0, le=1.0)
    kappa: float | None = Field(None, ge=0.0, le=1.0)


class ReliabilityBin(Strict):
    """One non-empty bin of the reliability diagram."""

    lo: float
    hi: float
    count: int
    mean_p: float
    frac_pos: float


def class_word(label: int) -> str:
    """`positive` for 1, `negative` for 0."""
    return "positive" if label == 1 else "negative"


def no_rows(consequence: str) -> UndefinedMetric:
    """The error of a metric computed over no rows; `consequence` is e.g. `ECE is undefined`."""
    return UndefinedMetric(f"there are no rows with a head probability, so {consequence}")


def two_classes(y: np.ndarray, consequence: str, labels: str = "gold labels") -> None:
    """Raise UndefinedMetric, in plain words, when `y` is empty or holds one class only."""
    if len(y) == 0:
        raise no_rows(consequence)
    if len(np.unique(y)) < 2:
        present = int(y[0])
        raise UndefinedMetric(
            f"the {labels} hold no {class_word(1 - present)} examples (all {len(y)} are {class_word(present)}),"
            f" so {consequence}"
        )


def auroc(y: np.ndarray, p: np.ndarray, what: str = "AUROC", labels: str = "gold labels") -> float:
    """Area under the ROC curve of scores `p` against binary labels `y` (`what` and `labels` name them in errors)."""
    two_classes(y, f"{what} is undefined", labels)
    return float(roc_auc_score(y, p))


def precision_recall_f1(y: np.ndarray, p: np.ndarray, threshold: float) -> tuple[float, float, float]:
    """Precision, recall and F1 of `p >= threshold` (0 when a ratio has no denominator)."""
    if len(y) == 0:
        raise no_rows("precision, recall and F1 are undefined")
    pred = (p >= threshold).astype(int)
    return (
        float(precision_score(y, pred, zero_division=0)),
        float(recall_score(y, pred, zero_division=0)),
        float(f1_score(y, pred, zero_division=0)),
    )


def kappa(verbal: np.ndarray, p: np.ndarray, threshold: float) -> float:
    """Cohen's kappa between the thresholded head and the verbalized label (rows with a label only)."""
    if len(verbal) == 0:
        raise UndefinedMetric("no generated text gave a verbalized label, so kappa is undefined")
    pred = (p >= threshold).astype(int)
    if len(np.unique(np.concatenate([pred, verbal]))) < 2:
        raise UndefinedMetric(
            f"the head (at threshold {threshold:.2f}) and the text both say {class_word(int(pred[0]))} for every row,"
            " so kappa is undefined"
        )
    return float(cohen_kappa_score(pred, verbal))


def ece(y: np.ndarray, p: np.ndarray, n_bins: int = ECE_BINS) -> float:
    """Expected calibration error: count-weighted |fraction positive - mean p| over equal-width bins."""
    if len(y) == 0:
        raise no_rows("ECE is undefined")
    return float(sum(b.count * abs(b.frac_pos - b.mean_p) for b in reliability_bins(y, p, n_bins)) / len(y))


def reliability_bins(y: np.ndarray, p: np.ndarray, n_bins: int = ECE_BINS) -> list[ReliabilityBin]:
    """Non-empty equal-width bins with their mean probability and observed positive fraction."""
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    ids = np.searchsorted(edges[1:-1], p)
    return [
        ReliabilityBin(
            lo=float(edges[b]),
            hi=float(edges[b + 1]),
            count=int((ids == b).sum()),
            mean_p=float(p[ids == b].mean()),
            frac_pos=float(y[ids == b].mean()),
        )
        for b in range(n_bins)
        if (ids == b).any()
    ]


def brier(y: np.ndarray, p: np.ndarray) -> float:
    """Mean squared error of `p` against the labels."""
    if len(y) == 0:
        raise no_rows("the Brier score is undefined")
    return float(brier_score_loss(y, p, pos_label=1))


def tune_f1_threshold(y: np.ndarray, p: np.ndarray) -> float:
    """The threshold (one of the scores) that maximises F1 of `p >= t` on these rows."""
    two_classes(y, "the F1 threshold cannot be tuned")
    precision, recall, thresholds = precision_recall_curve(y, p)
    with np.errstate(invalid="ignore", divide="ignore"):
        f1 = np.nan_to_num(2 * precision * recall / (precision + recall))
    return float(thresholds[int(np.argmax(f1[:-1]))])


def tune_kappa_threshold(verbal: np.ndarray, p: np.ndarray) -> float:
    """The threshold (one of the scores) that maximises kappa between `p >= t` and the verbalized label."""
    two_classes(verbal, "the kappa threshold cannot be tuned", "verbalized labels")
    candidates = np.unique(p)
    scores = [cohen_kappa_score((p >= t).astype(int), verbal) for t in candidates]
    return float(candidates[int(np.nanargmax(scores))])


def tune_thresholds(gold: np.ndarray, p: np.ndarray, verbal: np.ndarray) -> tuple[Thresholds, dict[str, str]]:
    """Tune each threshold-dependent metric for itself on one (dev) split; a threshold that cannot be tuned is
    `None` with a reason."""
    scored = ~np.isnan(p)
    parsed = scored & ~np.isnan(verbal)
    tuners = {
        "f1": lambda: tune_f1_threshold(gold[scored], p[scored]),
        "kappa": lambda: tune_kappa_threshold(verbal[parsed].astype(int), p[parsed]),
    }
    values: dict[str, float | None] = {}
    reasons: dict[str, str] = {}
    for name, tune in tuners.items():
        try:
            values[name] = tune()
        except UndefinedMetric as err:
            values[name], reasons[name] = None, str(err)
    return Thresholds(**values), reasons


TEXT_METRICS = ("parsability", "auroc_align", "kappa_at_05", "kappa_tuned")
TUNED = ("precision_tuned", "recall_tuned", "f1_tuned", "kappa_tuned")


def metric_functions(thresholds: Thresholds | None, has_text: bool = True) -> dict[str, Callable[..., float]]:
    """Every scalar metric as `fn(gold, p, verbal) -> float` (may raise UndefinedMetric); without text, the
    text metrics are left out."""

    def scored(fn: Callable[..., float]) -> Callable[..., float]:
        def run(gold: np.ndarray, p: np.ndarray, verbal: np.ndarray) -> float:
            keep = ~np.isnan(p)
            return fn(gold[keep], p[keep], verbal[keep])

        return run

    def on_parsed(fn: Callable[[np.ndarray, np.ndarray], float]) -> Callable[..., float]:
        def run(gold: np.ndarray, p: np.ndarray, verbal: np.ndarray) -> float:
            keep = ~np.isnan(verbal)
            if not keep.any():
                raise UndefinedMetric("no generated text gave a verbalized label, so it is undefined")
            return fn(verbal[keep].astype(int), p[keep])

        return run

    fns: dict[str, Callable[..., float]] = {
        "auroc": lambda g, p, v: auroc(g, p),
        "precision_at_05": lambda g, p, v: precision_recall_f1(g, p, 0.5)[0],
        "recall_at_05": lambda g, p, v: precision_recall_f1(g, p, 0.5)[1],
        "f1_at_05": lambda g, p, v: precision_recall_f1(g, p, 0.5)[2],
        "parsability": lambda g, p, v: float(np.mean(~np.isnan(v))),
        "auroc_align": on_parsed(lambda v, p: auroc(v, p, "AUROC-alignment", "verbalized labels")),
        "kappa_at_05": on_parsed(lambda v, p: kappa(v, p, 0.5)),
        "ece": lambda g, p, v: ece(g, p),
        "brier": lambda g, p, v: brier(g, p),
    }
    if thresholds is not None and thresholds.f1 is not None:
        fns["precision_tuned"] = lambda g, p, v: precision_recall_f1(g, p, thresholds.f1)[0]
        fns["recall_tuned"] = lambda g, p, v: precision_recall_f1(g, p, thresholds.f1)[1]
        fns["f1_tuned"] = lambda g, p, v: precision_recall_f1(g, p, thresholds.f1)[2]
    if thresholds is not None and thresholds.kappa is not None:
        fns["kappa_tuned"] = on_parsed(lambda v, p: kappa(v, p, thresholds.kappa))
    fns = {name: fn for name, fn in fns.items() if has_text or name not in TEXT_METRICS}
    return {name: fn if name == "parsability" else scored(fn) for name, fn in fns.items()}


def compute_metrics(
    gold: np.ndarray, p: np.ndarray, verbal: np.ndarray, thresholds: Thresholds | None, has_text: bool = True
) -> tuple[dict[str, float | None], dict[str, str]]:
    """Point values of every metric, with `None` and a reason for each undefined one."""
    values: dict[str, float | None] = {}
    reasons: dict[str, str] = {}
    if not has_text:
        values |= dict.fromkeys(TEXT_METRICS)
        reasons |= dict.fromkeys(TEXT_METRICS, "the method writes no text, so there is no verbalized label")
    for name, fn in metric_functions(thresholds, has_text).items():
        try:
            values[name] = fn(gold, p, verbal)
        except UndefinedMetric as err:
            values[name], reasons[name] = None, str(err)
    for name in TUNED:
        if name not in values:
            values[name] = None
            reasons[name] = (
                "no dev-tuned threshold for it: run `evaluate select RUN` or pass --thresholds"
                if thresholds is None
                else "its threshold could not be tuned on dev (the reason is under threshold_reasons in the thresholds'"
                " source)"
            )
    return values, reasons


def bootstrap_intervals(
    gold: np.ndarray,
    p: np.ndarray,
    verbal: np.ndarray,
    thresholds: Thresholds | None,
    n_resamples: int = 1000,
    seed: int = 0,
    has_text: bool = True,
) -> dict[str, tuple[float, float]]:
    """Percentile 95% intervals over row resamples; resamples where a metric is undefined are skipped."""
    rng = np.random.default_rng(seed)
    draws: dict[str, list[float]] = {}
    fns = metric_functions(thresholds, has_text)
    for _ in range(n_resamples):
        idx = rng.integers(0, len(gold), len(gold))
        for name, fn in fns.items():
            try:
                draws.setdefault(name, []).append(fn(gold[idx], p[idx], verbal[idx]))
            except UndefinedMetric:
                continue
    return {
        name: (float(np.percentile(vals, 2.5)), float(np.percentile(vals, 97.5)))
        for name, vals in draws.items()
        if vals
    }
