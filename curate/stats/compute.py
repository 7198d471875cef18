"""Drop statistics of a generate run (the paper's Table 7 and more), computed with polars over the journal."""

from pathlib import Path

import polars as pl
from pydantic import Field

from curate.generation.outcomes import FAILURES, effective_trials, example_outcomes, read_examples, read_trials
from curate.generation.run_dir import read_run_info
from curate.rationalize.state import rationalization
from schemas.base import Strict
from schemas.integrity import DEFAULT_SHARE_MARGIN, balance_problem
from schemas.task import TaskSpec

CLASSES = ("negative", "positive")


class ClassCounts(Strict):
    """Examples per class and the positive share (None when there are none)."""

    negative: int
    positive: int
    positive_share: float | None


class SplitTable(Strict):
    """Table 7 for one split; `pending` counts examples whose K trials are not all journaled yet."""

    original: ClassCounts
    generated: ClassCounts
    failed: ClassCounts
    pending: int
    rationalized: ClassCounts | None = Field(None, description="failed examples recovered by `curate rationalize`")


class TokenStats(Strict):
    """Tokens spent by the teacher over every journaled trial."""

    prompt_total: int
    completion_total: int
    completion_per_accepted: float | None
    accepted_trial_mean: float | None


class Throughput(Strict):
    """Rates over the wall-clock span of the journal (first trial start to last trial end)."""

    wall_s: float
    trials_per_s: float
    completion_tokens_per_s: float
    accepted_per_hour: float


class RationalizationStats(Strict):
    """`curate rationalize`: failed examples tried again with the gold label as a hint, and recovered by trial."""

    k: int = Field(description="K': hinted trials per example")
    tried: dict[str, int] = Field(description="examples tried, by class")
    cumulative: dict[str, list[int]] = Field(description="examples of each class recovered by trial 1, 2, ..., K'")
    trials: int
    completion_tokens: int


class DropReport(Strict):
    """What `curate stats` prints and writes to `stats.json`."""

    run: str
    task: str
    teacher: str
    k: int
    verbalizers: dict[str, str]
    table7: dict[str, SplitTable]
    share_margin: float
    class_warnings: list[str] = Field(description="splits whose generated examples lack a class or moved in share")
    failures: dict[str, dict[str, int]]
    cumulative: dict[str, list[int]]
    class_totals: dict[str, int]
    trials: int
    tokens: TokenStats
    throughput: Throughput | None
    rationalization: RationalizationStats | None = None


def class_counts(frame: pl.DataFrame, positive: int) -> ClassCounts:
    """Negative / positive counts of the `label` column."""
    pos = int((frame["label"] == positive).sum())
    neg = frame.height - pos
    return ClassCounts(negative=neg, positive=pos, positive_share=pos / frame.height if frame.height else None)


def split_tables(outcomes: pl.DataFrame, positive: int, recovered: pl.DataFrame | None) -> dict[str, SplitTable]:
    """Table 7 rows (original, generated, failed, and `recovered` by rationalization when given) for every split,
    in order of first appearance."""
    tables = {}
    for split in outcomes["split"].unique(maintain_order=True).to_list():
        rows = outcomes.filter(pl.col("split") == split)
        rescued = None if recovered is None else class_counts(recovered.filter(pl.col("split") == split), positive)
        tables[split] = SplitTable(
            original=class_counts(rows, positive),
            generated=class_counts(rows.filter(pl.col("outcome") == "accepted"), positive),
            failed=class_counts(rows.filter(pl.col("outcome") == "discarded"), positive),
            pending=int((rows["outcome"] == "pending").sum()),
            rationalized=rescued,
        )
    return tables


def pair(counts: ClassCounts) -> tuple[int, int]:
    """(count, positives) of a Table-7 row."""
    return counts.negative + counts.positive, counts.positive


def class_warnings(tables: dict[str, SplitTable], task: TaskSpec, margin: float) -> list[str]:
    """Splits whose generated examples lack a class, or whose positive share moved more than `margin`."""
    found = [balance_problem(s, pair(t.original), pair(t.generated), task, margin) for s, t in tables.items()]
    return [text for text in found if text]


def with_class(frame: pl.DataFrame, label_column: str, positive: int) -> pl.DataFrame:
    """Add a `class` column, `positive` or `negative`, from a gold-label column."""
    return frame.with_columns(
        pl.when(pl.col(label_column) == positive).then(pl.lit("positive")).otherwise(pl.lit("negative")).alias("class")
    )


def failure_counts(counted: pl.DataFrame) -> dict[str, dict[str, int]]:
    """Failed trials (up to acceptance) by class and status."""
    grouped = counted.filter(pl.col("status") != "accepted").group_by("class", "status").len()
    table = {name: dict.fromkeys(FAILURES, 0) for name in CLASSES}
    for name, status, count in grouped.iter_rows():
        table[name][status] = count
    return table


def cumulative_acceptance(outcomes: pl.DataFrame, k: int) -> dict[str, list[int]]:
    """Examples of each class accepted at or before trial 1, 2, ..., K."""
    accepted = outcomes.filter(pl.col("accepted_trial").is_not_null()).group_by("class", "accepted_trial").len()
    curves = {}
    for name in CLASSES:
        rows = dict(accepted.filter(pl.col("class") == name).select("accepted_trial", "len").iter_rows())
        running, curve = 0, []
        for trial in range(1, k + 1):
            running += rows.get(trial, 0)
            curve.append(running)
        curves[name] = curve
    return curves


def token_stats(trials: pl.DataFrame, accepted_trials: pl.DataFrame) -> TokenStats:
    """Totals over every journaled slot, and per accepted example."""
    completion = int(trials["completion_tokens"].sum())
    n_accepted = accepted_trials.height
    return TokenStats(
        prompt_total=int(trials["prompt_tokens"].sum()),
        completion_total=completion,
        completion_per_accepted=completion / n_accepted if n_accepted else None,
        accepted_trial_mean=float(accepted_trials["completion_tokens"].mean()) if n_accepted else None,
    )


def throughput(trials: pl.DataFrame, completion_total: int, n_accepted: int) -> Throughput | None:
    """Rates over the journal's time span; None when trials carry no timestamps."""
    stamped = trials.filter(pl.col("created_at") > 0)
    if stamped.is_empty():
        return None
    start = float((stamped["created_at"] - stamped["latency_s"]).min())
    wall = max(float(stamped["created_at"].max()) - start, 1e-9)
    return Throughput(
        wall_s=wall,
        trials_per_s=trials.height / wall,
        completion_tokens_per_s=completion_total / wall,
        accepted_per_hour=n_accepted * 3600 / wall,
    )


def rationalization_stats(tried: pl.DataFrame, trials: pl.DataFrame, k: int) -> RationalizationStats:
    """Examples tried and recovered by trial, per class (`tried` carries a `class` column), and the trials' cost."""
    return RationalizationStats(
        k=k,
        tried={name: int((tried["class"] == name).sum()) for name in CLASSES},
        cumulative=cumulative_acceptance(tried, k),
        trials=trials.height,
        completion_tokens=int(trials["completion_tokens"].sum()),
    )


def compute_report(run_dir: Path, share_margin: float = DEFAULT_SHARE_MARGIN) -> DropReport:
    """Everything `curate stats` shows, from `run.json`, `examples.parquet` and `trials.jsonl`."""
    info = read_run_info(run_dir)
    task = TaskSpec.model_validate(info.task_spec)
    positive, k = task.positive_label, info.config.k
    trials = read_trials(
        run_dir, ["gold_label", "status", "prompt_tokens", "completion_tokens", "latency_s", "created_at"]
    )
    outcomes = with_class(example_outcomes(read_examples(run_dir), trials, k), "label", positive)
    counted = with_class(effective_trials(trials, outcomes, k), "gold_label", positive)
    accepted_trials = counted.filter(pl.col("status") == "accepted")
    tokens = token_stats(trials, accepted_trials)
    found = rationalization(run_dir, outcomes, ["completion_tokens"])
    tried = found and with_class(found.outcomes, "label", positive)
    tables = split_tables(outcomes, positive, tried.filter(pl.col("outcome") == "accepted") if found else None)
    return DropReport(
        run=str(run_dir),
        task=task.name,
        teacher=info.model_id,
        k=k,
        verbalizers={"negative": task.verbalizers[1 - positive], "positive": task.verbalizers[positive]},
        table7=tables,
        share_margin=share_margin,
        class_warnings=class_warnings(tables, task, share_margin),
        failures=failure_counts(counted),
        cumulative=cumulative_acceptance(outcomes, k),
        class_totals={name: int((outcomes["class"] == name).sum()) for name in CLASSES},
        trials=trials.height,
        tokens=tokens,
        throughput=throughput(trials, tokens.completion_total, accepted_trials.height),
        rationalization=found and rationalization_stats(tried, found.trials, found.info.config.k),
    )
