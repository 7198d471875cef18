"""`evaluate report`: Table 2 / Table 3 style markdown over methods (mean ± std over seeds) and the plots."""

from collections import defaultdict
from pathlib import Path

import numpy as np

from evaluate.io import METRICS, PREDICTIONS, MetricsFile, read_metrics, read_predictions
from evaluate.judge import JUDGE_JSON, JudgeSummary, read_judge_summary
from evaluate.plots import epoch_plot, reliability_plot, roc_plot
from evaluate.select import evaluated_dev_metrics
from schemas.files import atomic_write_bytes
from schemas.train_metrics import DevEpochMetrics, read_dev_metrics

TABLE2 = {
    "AUROC": "auroc",
    "F1@0.5": "f1_at_05",
    "F1 (tuned)": "f1_tuned",
    "Precision (tuned)": "precision_tuned",
    "Recall (tuned)": "recall_tuned",
    "ECE": "ece",
    "Brier": "brier",
}
TABLE3 = {
    "Parsability": "parsability",
    "AUROC-align": "auroc_align",
    "κ@0.5": "kappa_at_05",
    "κ (tuned)": "kappa_tuned",
}
JUDGE_COLUMNS = {"RLI ↓": "rli", "κ_RL": "kappa_rl", "Readability": "readability_mean"}
FIGURE1_KEYS = ["parsability", "auroc", "kappa_at_05"]
EPOCHS_PNG = "epochs.png"


def load_result(folder: Path) -> tuple[MetricsFile, JudgeSummary | None]:
    """A method's `metrics.json` and, if it was judged, its `judge.json` (in the folder or its `judge/`)."""
    summary = read_metrics(folder / METRICS)
    judged = [path for path in (folder / JUDGE_JSON, folder / "judge" / JUDGE_JSON) if path.is_file()]
    return summary, read_judge_summary(judged[0]) if judged else None


def cell(values: list[float | None], interval: tuple[float, float] | None) -> str:
    """`mean ± std` over seeds; one seed shows its bootstrap 95% interval; undefined values show as `—`."""
    defined = [v for v in values if v is not None]
    if not defined:
        return "—"
    if len(values) == 1:
        return f"{defined[0]:.3f}" + (f" [{interval[0]:.3f}, {interval[1]:.3f}]" if interval else "")
    missing = f" ({len(values) - len(defined)} undefined)" if len(defined) < len(values) else ""
    return f"{np.mean(defined):.3f} ± {np.std(defined, ddof=1) if len(defined) > 1 else 0.0:.3f}{missing}"


def table(
    title: str,
    columns: dict[str, str],
    groups: dict[str, list[tuple[MetricsFile, JudgeSummary | None]]],
    judge: bool = False,
) -> list[str]:
    """One markdown table: a row per method, a column per metric."""
    heads = list(columns) + (list(JUDGE_COLUMNS) if judge else [])
    lines = [f"## {title}", "", "| method | seeds | n | " + " | ".join(heads) + " |", "|---" * (len(heads) + 3) + "|"]
    for method, results in groups.items():
        cells = []
        for key in columns.values():
            one = results[0][0].intervals.get(key) if len(results) == 1 else None
            cells.append(cell([m.metrics.get(key) for m, _ in results], one))
        if judge:
            for key in JUDGE_COLUMNS.values():
                cells.append(cell([getattr(j, key) if j else None for _, j in results], None))
        lines.append(f"| {method} | {len(results)} | {results[0][0].n} | " + " | ".join(cells) + " |")
    return [*lines, ""]


def null_notes(groups: dict[str, list[tuple[MetricsFile, JudgeSummary | None]]]) -> list[str]:
    """Why undefined values are undefined: one line per method and reason."""
    notes: dict[tuple[str, str], list[str]] = defaultdict(list)
    for method, results in groups.items():
        for name, reason in {n: r for m, _ in results for n, r in m.null_reasons.items()}.items():
            notes[(method, reason)].append(f"`{name}`")
    if not notes:
        return []
    lines = [f"- {method}, {', '.join(names)}: {reason}" for (method, reason), names in notes.items()]
    return ["### Undefined values", "", *lines, ""]


def write_report(folders: list[Path], out: Path, training_run: Path | None = None) -> Path:
    """Write `report.md`, `roc.png`, `reliability.png` (and `epochs.png` for a training run) into `out`."""
    if not folders:
        raise ValueError("no result folders: pass the --out folders of `evaluate run` / `evaluate baseline`")
    groups: dict[str, list[tuple[MetricsFile, JudgeSummary | None]]] = defaultdict(list)
    first_folder: dict[str, Path] = {}
    for folder in folders:
        summary, judged = load_result(Path(folder))
        groups[summary.method].append((summary, judged))
        first_folder.setdefault(summary.method, Path(folder))
    splits = sorted({m.split for results in groups.values() for m, _ in results})
    out.mkdir(parents=True, exist_ok=True)
    lines = [
        f"# Evaluation report ({', '.join(splits)} split)",
        "",
        "Mean ± sample std over seeds; a single run shows its bootstrap 95% interval in brackets.",
        "",
        *table("Classification (Table 2)", TABLE2, groups),
        *table("Head-text consistency (Table 3)", TABLE3, groups, judge=True),
        *null_notes(groups),
    ]
    roc_plot({m: read_predictions(first_folder[m] / PREDICTIONS) for m in groups}, out / "roc.png")
    reliability_plot({m: results[0][0] for m, results in groups.items()}, out / "reliability.png")
    lines += ["![ROC](roc.png) ![Reliability](reliability.png)", ""]
    if training_run is not None:
        lines += figure1(Path(training_run), out)
    path = out / "report.md"
    atomic_write_bytes(path, "\n".join(lines).encode())
    return path


def dev_values_by_epoch(run: Path) -> dict[int, dict[str, float | None]]:
    """Figure-1 metrics by epoch: the trainer's head metrics (metrics.jsonl), overridden by `evaluate run` dev
    metrics where a checkpoint has them (parsability and kappa exist only there)."""
    trainer_keys = [key for key in FIGURE1_KEYS if key in DevEpochMetrics.model_fields]
    epochs = {epoch: row.model_dump(include=set(trainer_keys)) for epoch, row in read_dev_metrics(run).items()}
    for epoch, summary in evaluated_dev_metrics(run).items():
        epochs.setdefault(epoch, {}).update({key: summary.metrics.get(key) for key in FIGURE1_KEYS})
    return dict(sorted(epochs.items()))


def figure1(run: Path, out: Path) -> list[str]:
    """The Figure-1 curve of a training run (dev parsability, AUROC and kappa by epoch), or a line saying why not."""
    epochs = dev_values_by_epoch(run)
    if not epochs:
        raise ValueError(f"{run} has no dev metrics by epoch (metrics.jsonl or evaluate run outputs)")
    keys = [key for key in FIGURE1_KEYS if any(row.get(key) is not None for row in epochs.values())]
    lines = ["## Dev metrics by epoch (Figure 1)", "", f"From {run}.", ""]
    if not keys:
        (out / EPOCHS_PNG).unlink(missing_ok=True)
        why = f"No figure: none of {', '.join(FIGURE1_KEYS)} has a dev value at any of the {len(epochs)} epoch(s)."
        return [*lines, why, ""]
    epoch_plot(epochs, keys, out / EPOCHS_PNG)
    one = [f"One epoch only: epoch {next(iter(epochs))}'s values are drawn as points, with no curve.", ""]
    return [*lines, *(one if len(epochs) == 1 else []), f"![epochs]({EPOCHS_PNG})", ""]
