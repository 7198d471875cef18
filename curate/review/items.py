"""Discarded examples of a run as review items: input fields, gold label, every attempt, and what to suggest."""

from pathlib import Path

import polars as pl

from curate.generation.outcomes import example_outcomes, read_examples, read_trials
from curate.generation.run_dir import read_run_info
from curate.rationalize.state import rationalization
from schemas.base import Strict
from schemas.task import TaskSpec
from schemas.trial import TrialKind

# The near miss that pre-fills the explanation: the most complete answer first. An accepted rationalization (the
# teacher given the gold label) is complete; a wrong-label answer passed every check but the label, so it beats an
# invalid one (too short, repetitive), which beats a cut-off or unparseable one.
NEAR_MISS_ORDER = {"accepted": -1, "wrong_label": 0, "invalid": 1, "truncated": 2, "unparseable": 3}
HINTED = {TrialKind.rationalize: "accepted with the gold label given as a hint"}
ATTEMPT_COLUMNS = ["status", "reason", "label", "explanation", "raw_text"]


class Attempt(Strict):
    """One teacher trial, as the reviewer sees it: a failed one, or a rationalization (`kind`)."""

    kind: TrialKind = TrialKind.generate
    trial: int
    status: str
    reason: str | None
    label: int | None
    text: str

    @property
    def name(self) -> str:
        """`trial N`, or `rationalization N` for a trial given the gold label as a hint."""
        return f"{'trial' if self.kind == TrialKind.generate else 'rationalization'} {self.trial}"


class ReviewItem(Strict):
    """One discarded example to review."""

    id: str
    split: str
    label: int
    fields: dict[str, str]
    truncated: bool
    attempts: list[Attempt]
    near_miss: Attempt | None


class DecisionSuggestion(Strict):
    """The decision pre-selected for a reviewer, with the share of attempts behind it."""

    value: str
    score: float


def near_miss(attempts: list[Attempt], gold: int) -> Attempt | None:
    """The attempt whose text best serves as a starting explanation, or None when no attempt has text."""
    usable = [a for a in attempts if a.status in NEAR_MISS_ORDER and a.text.strip()]
    return min(usable, key=lambda a: (NEAR_MISS_ORDER[a.status], a.label != gold, a.trial), default=None)


def suggested_decision(item: ReviewItem) -> DecisionSuggestion | None:
    """`wrong_gold_label` when every attempt that named a label named the other one, `keep` when any named the
    gold label (score: that share of all attempts); None when no attempt named a label."""
    named = [a.label for a in item.attempts if a.label is not None]
    if not named:
        return None
    gold = sum(label == item.label for label in named)
    value = "keep" if gold else "wrong_gold_label"
    return DecisionSuggestion(value=value, score=round((gold or len(named)) / len(item.attempts), 4))


def to_attempts(rows: list[dict]) -> list[Attempt]:
    """Journal rows of one example as attempts; the text is the parsed explanation, else the raw text."""
    return [
        Attempt(
            kind=a["kind"],
            trial=a["trial"],
            status=str(a["status"]),
            reason=a["reason"],
            label=a["label"],
            text=a["explanation"] or a["raw_text"] or "",
        )
        for a in rows
    ]


def recovered_trials(run_dir: Path, discarded: pl.DataFrame) -> pl.DataFrame:
    """Rationalization rows, up to the accepted one, of the `discarded` examples rationalization recovered."""
    found = rationalization(run_dir, discarded, ATTEMPT_COLUMNS)
    if found is None:
        raise ValueError(
            f"{run_dir} was never rationalized: run `curate rationalize {run_dir}` first,"
            " or push without --rationalized"
        )
    recovered = found.outcomes.filter(pl.col("outcome") == "accepted").select("id", "accepted_trial")
    rows = found.trials.join(recovered, left_on="example_id", right_on="id")
    return rows.filter(pl.col("trial") <= pl.col("accepted_trial")).drop("accepted_trial")


def discarded_items(run_dir: Path, label: int | None, rationalized: bool = False) -> list[ReviewItem]:
    """Review items for discarded examples with gold `label` (None: every discarded example), in id order;
    `rationalized`: only those rationalization recovered, its attempts after the teacher's."""
    info = read_run_info(run_dir)
    task = TaskSpec.model_validate(info.task_spec)
    examples = read_examples(run_dir)
    trials = read_trials(run_dir, ATTEMPT_COLUMNS)
    chosen = example_outcomes(examples, trials, info.config.k).filter(pl.col("outcome") == "discarded")
    if label is not None:
        chosen = chosen.filter(pl.col("label") == label)
    trials = trials.filter(pl.col("trial") <= info.config.k).with_columns(kind=pl.lit(TrialKind.generate.value))
    if rationalized:
        hinted = recovered_trials(run_dir, chosen).with_columns(kind=pl.lit(TrialKind.rationalize.value))
        chosen = chosen.join(hinted.select(id="example_id"), on="id", how="semi")
        trials = pl.concat([trials, hinted.select(trials.columns)])
    attempts = (
        trials.join(chosen.select("id"), left_on="example_id", right_on="id")
        .sort("example_id", "kind", "trial")
        .group_by("example_id", maintain_order=True)
        .agg(pl.struct("kind", "trial", "status", "reason", "label", "explanation", "raw_text").alias("attempts"))
    )
    rows = (
        examples.select("id", "split", "label", "truncated", *task.input_fields)
        .join(attempts, left_on="id", right_on="example_id")
        .sort("id")
    )
    items = []
    for row in rows.iter_rows(named=True):
        tries = to_attempts(row["attempts"])
        items.append(
            ReviewItem(
                id=row["id"],
                split=row["split"],
                label=row["label"],
                fields={name: row[name] for name in task.input_fields},
                truncated=row["truncated"],
                attempts=tries,
                near_miss=near_miss(tries, row["label"]),
            )
        )
    return items


def attempts_markdown(item: ReviewItem, task: TaskSpec) -> str:
    """Every attempt of an item as readable markdown: status, predicted label, reason, then the text."""
    blocks = []
    for attempt in item.attempts:
        predicted = task.verbalizers[attempt.label] if attempt.label is not None else "none"
        quoted = "\n".join(f"> {line}" for line in attempt.text.strip().splitlines()) or "> (no text)"
        blocks.append(
            f"**{attempt.name.capitalize()}: {attempt.status}** · predicted label: {predicted}"
            f" · reason: {attempt.reason or HINTED.get(attempt.kind, attempt.status)}\n\n{quoted}"
        )
    return "\n\n---\n\n".join(blocks)
