"""PNG figures: ROC curves, reliability diagrams and the Figure-1 curve (dev metrics by epoch)."""

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from sklearn.metrics import roc_curve

from evaluate.io import MetricsFile, PredictionRow
from schemas.train_metrics import StepRow


def save(fig: plt.Figure, path: Path) -> None:
    """Write a figure and free it."""
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def roc_plot(curves: dict[str, list[PredictionRow]], path: Path) -> None:
    """One ROC curve per method (rows with a probability; a one-class split draws nothing)."""
    fig, ax = plt.subplots(figsize=(5, 5))
    for name, rows in curves.items():
        scored = [row for row in rows if row.p_head is not None]
        if len({row.gold for row in scored}) == 2:
            fpr, tpr, _ = roc_curve([row.gold for row in scored], [row.p_head for row in scored])
            ax.plot(fpr, tpr, label=name)
    ax.plot([0, 1], [0, 1], color="grey", linestyle=":", linewidth=1)
    ax.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC")
    ax.legend(loc="lower right", fontsize=8)
    save(fig, path)


def reliability_plot(metrics: dict[str, MetricsFile], path: Path) -> None:
    """Observed positive share against mean probability per bin, one line per method."""
    fig, ax = plt.subplots(figsize=(5, 5))
    for name, summary in metrics.items():
        bins = summary.calibration.bins
        if bins:
            ax.plot([b.mean_p for b in bins], [b.frac_pos for b in bins], marker="o", label=name)
    ax.plot([0, 1], [0, 1], color="grey", linestyle=":", linewidth=1)
    n_bins = next(iter(metrics.values())).calibration.ece_bins if metrics else 0
    ax.set(
        xlabel="mean predicted P(positive)",
        ylabel="observed positive share",
        title=f"Reliability ({n_bins} equal-width bins)",
        xlim=(0, 1),
        ylim=(0, 1),
    )
    ax.legend(loc="upper left", fontsize=8)
    save(fig, path)


def epoch_plot(epochs: dict[int, dict[str, float | None]], keys: list[str], path: Path) -> None:
    """Figure 1: dev metrics by training epoch, a point per value (a missing value leaves a gap); `keys` must
    name at least one metric with a value."""
    fig, ax = plt.subplots(figsize=(6, 4))
    xs = sorted(epochs)
    for key in keys:
        ys = [np.nan if epochs[x].get(key) is None else epochs[x][key] for x in xs]
        ax.plot(xs, ys, marker="o", linestyle="-" if len(xs) > 1 else "none", label=key)
    ax.set(xlabel="epoch", ylabel="dev value", title="Dev metrics by epoch", xticks=xs)
    ax.legend(fontsize=8)
    save(fig, path)


def loss_plot(steps: list[StepRow], auroc_at_step: dict[int, float], path: Path) -> None:
    """Training losses (total, LM, classification) by optimizer step; dev AUROC (right axis) at epoch ends."""
    fig, ax = plt.subplots(figsize=(7, 4))
    xs = [row.step for row in steps]
    for key, label in (("loss", "total loss"), ("lm_loss", "LM loss"), ("cls_loss", "classification loss")):
        ax.plot(xs, [getattr(row, key) for row in steps], label=label, linewidth=1)
    ax.set(xlabel="optimizer step", ylabel="train loss", title="Training curves")
    handles, labels = ax.get_legend_handles_labels()
    if auroc_at_step:
        right = ax.twinx()
        at = sorted(auroc_at_step)
        right.plot(at, [auroc_at_step[x] for x in at], color="black", marker="o", linestyle="--", label="dev AUROC")
        right.set(ylabel="dev AUROC", ylim=(0, 1))
        more = right.get_legend_handles_labels()
        handles, labels = handles + more[0], labels + more[1]
    ax.legend(handles, labels, fontsize=8, loc="upper right")
    save(fig, path)
