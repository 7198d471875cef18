"""`evaluate report`: Table 2 / Table 3 style markdown over methods (mean ± std over seeds) and the plots."""

from collections import defaultdict
from pathlib import Path

import numpy as np

from evaluate.io import METRICS, PREDICTIONS, MetricsFile, read_metrics, read_predictions
from evaluate.judge import JUDGE_JSON, JudgeSummary, read_judge_summary
from evaluate.plots import epoch_plot, loss_plot, reliability_plot, roc_plot
from evaluate.select import evaluated_dev_metrics
from schemas.files import Journal, atomic_write_bytes
from schemas.train_metrics import STEPS, DevEpochMetrics, StepRow, read_dev_metrics

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
LOSSES_PNG = "losses.png"
UNKNOWN = "unknown test set"


Result = tuple[MetricsFile, JudgeSummary | None]
GroupKey = tuple[str, str | None, int]  # method, examples hash (None: unknown), n


def load_result(folder: Path) -> Result:
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


class EvaluatedSets:
    """The test sets the results were evaluated on (by examples hash) and how each is marked in the tables."""

    def __init__(self, folders: dict[GroupKey, list[Path]]) -> None:
        hashes = list(dict.fromkeys(digest for _, digest, _ in folders))
        known = [digest for digest in hashes if digest is not None]
        self.folders = folders
        self.labels: dict[str | None, str] = {digest: f"T{i}" for i, digest in enumerate(known, start=1)}
        if None in hashes:
            self.labels[None] = UNKNOWN
        self.marked = hashes != known[:1]  # anything but one known test set

    def known(self) -> list[str]:
        """The distinct examples hashes on record."""
        return [digest for digest in self.labels if digest is not None]

    def identity(self, digest: str | None) -> str:
        """The sizes evaluated on a test set, and its hash."""
        sizes = ", ".join(sorted({f"n={n}" for _, key_digest, n in self.folders if key_digest == digest}))
        return sizes if digest is None else f"{sizes}, examples sha256 {digest[:12]}"

    def describe(self, digest: str | None) -> str:
        """One line naming a test set: its mark, sizes, hash and the folders evaluated on it."""
        folders = ", ".join(str(folder) for key, found in self.folders.items() if key[1] == digest for folder in found)
        line = f"{self.labels[digest]} ({self.identity(digest)}): {folders}"
        if digest is None:
            line += (
                ": metrics.json from before the examples hash was recorded, so these rows are not known to share a"
                " test set with any other; rerun `evaluate run` / `evaluate baseline` to record it"
            )
        return line

    def check(self, allow_mixed: bool) -> None:
        """Refuse results on different test sets unless `allow_mixed` (then the tables mark each row's set)."""
        if len(self.known()) > 1 and not allow_mixed:
            sets = "; ".join(self.describe(digest) for digest in self.known())
            raise ValueError(
                f"the results were evaluated on {len(self.known())} different test sets ({sets}): report each"
                " test set separately, or pass --allow-mixed-test-sets to mark every row's test set in the tables"
            )

    def header(self) -> list[str]:
        """The line naming the one test set every row shares (none when the tables mark test sets)."""
        if self.marked:
            return []
        return [f"Every row was evaluated on one test set ({self.identity(self.known()[0])}).", ""]

    def footnote(self) -> list[str]:
        """What each mark in the tables' `test set` column stands for (none when there is one known test set)."""
        if not self.marked:
            return []
        lines = [f"- {self.describe(digest)}" for digest in self.labels]
        return ["### Test sets (column `test set`): rows on different sets are not comparable", "", *lines, ""]


def row_name(key: GroupKey, sets: EvaluatedSets) -> str:
    """A group's name in plots and notes: the method, and its test set when the tables mark them."""
    return f"{key[0]} ({sets.labels[key[1]]})" if sets.marked else key[0]


def table(
    title: str, columns: dict[str, str], groups: dict[GroupKey, list[Result]], sets: EvaluatedSets, judge: bool = False
) -> list[str]:
    """One markdown table: a row per method and test set, a column per metric (and `test set` when marked)."""
    heads = list(columns) + (list(JUDGE_COLUMNS) if judge else []) + (["test set"] if sets.marked else [])
    lines = [f"## {title}", "", "| method | seeds | n | " + " | ".join(heads) + " |", "|---" * (len(heads) + 3) + "|"]
    for key, results in groups.items():
        cells = []
        for metric in columns.values():
            one = results[0][0].intervals.get(metric) if len(results) == 1 else None
            cells.append(cell([m.metrics.get(metric) for m, _ in results], one))
        if judge:
            for metric in JUDGE_COLUMNS.values():
                cells.append(cell([getattr(j, metric) if j else None for _, j in results], None))
        if sets.marked:
            cells.append(sets.labels[key[1]])
        lines.append(f"| {key[0]} | {len(results)} | {key[2]} | " + " | ".join(cells) + " |")
    return [*lines, ""]


def null_notes(groups: dict[GroupKey, list[Result]], sets: EvaluatedSets) -> list[str]:
    """Why undefined values are undefined: one line per method and reason."""
    notes: dict[tuple[str, str], list[str]] = defaultdict(list)
    for key, results in groups.items():
        for name, reason in {n: r for m, _ in results for n, r in m.null_reasons.items()}.items():
            notes[(row_name(key, sets), reason)].append(f"`{name}`")
    if not notes:
        return []
    lines = [f"- {method}, {', '.join(names)}: {reason}" for (method, reason), names in notes.items()]
    return ["### Undefined values", "", *lines, ""]


def group_results(folders: list[Path]) -> tuple[dict[GroupKey, list[Result]], dict[GroupKey, list[Path]]]:
    """Results by (method, test set, n), the seeds of one method on one test set together, and their folders."""
    if not folders:
        raise ValueError("no result folders: pass the --out folders of `evaluate run` / `evaluate baseline`")
    groups: dict[GroupKey, list[Result]] = defaultdict(list)
    where: dict[GroupKey, list[Path]] = defaultdict(list)
    for folder in map(Path, folders):
        summary, judged = load_result(folder)
        key = (summary.method, summary.examples_sha256, summary.n)
        groups[key].append((summary, judged))
        where[key].append(folder)
    return dict(groups), dict(where)


def write_report(
    folders: list[Path], out: Path, training_run: Path | None = None, allow_mixed_test_sets: bool = False
) -> Path:
    """Write `report.md`, `roc.png`, `reliability.png` (and `epochs.png`, `losses.png` for a training run); results
    on different test sets are refused unless `allow_mixed_test_sets`, then marked in the tables."""
    groups, where = group_results(folders)
    sets = EvaluatedSets(where)
    sets.check(allow_mixed_test_sets)
    splits = sorted({m.split for results in groups.values() for m, _ in results})
    out.mkdir(parents=True, exist_ok=True)
    lines = [
        f"# Evaluation report ({', '.join(splits)} split)",
        "",
        "Mean ± sample std over seeds; a single run shows its bootstrap 95% interval in brackets.",
        "",
        *sets.header(),
        *table("Classification (Table 2)", TABLE2, groups, sets),
        *table("Head-text consistency (Table 3)", TABLE3, groups, sets, judge=True),
        *sets.footnote(),
        *null_notes(groups, sets),
    ]
    roc_plot({row_name(k, sets): read_predictions(where[k][0] / PREDICTIONS) for k in groups}, out / "roc.png")
    reliability_plot({row_name(k, sets): results[0][0] for k, results in groups.items()}, out / "reliability.png")
    lines += ["![ROC](roc.png) ![Reliability](reliability.png)", ""]
    if training_run is not None:
        lines += figure1(Path(training_run), out) + loss_curves(Path(training_run), out)
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


def loss_curves(run: Path, out: Path) -> list[str]:
    """The training curves of a run from its step log (LM, classification and total loss per optimizer step) with
    the dev AUROC at each epoch's last step, or a line saying why there is no figure."""
    steps, _ = Journal(run / STEPS, StepRow).read()
    lines = ["## Training curves", "", f"From {run / STEPS}.", ""]
    if not steps:
        (out / LOSSES_PNG).unlink(missing_ok=True)
        return [*lines, f"No figure: {run / STEPS} has no complete step row.", ""]
    last_step = {row.epoch: row.step for row in steps}
    auroc = {
        last_step[e]: row.auroc for e, row in read_dev_metrics(run).items() if e in last_step and row.auroc is not None
    }
    loss_plot(steps, auroc, out / LOSSES_PNG)
    note = [] if auroc else ["No dev AUROC in metrics.jsonl (no validation split, or one class): losses only.", ""]
    return [*lines, *note, f"![losses]({LOSSES_PNG})", ""]
