"""Discarded examples of a run as review items: document, gold label, every attempt and the best near miss."""

from pathlib import Path

import polars as pl

from curate.generation.outcomes import example_outcomes, read_examples, read_trials
from curate.generation.run_dir import read_run_info
from schemas.base import Strict
from schemas.task import TaskSpec

# A near miss to pre-fill: an attempt with the gold label first, then by how close its status is to acceptance.
NEAR_MISS_ORDER = {"invalid": 0, "truncated": 1, "unparseable": 2, "wrong_label": 3}


class Attempt(Strict):
    """One failed teacher trial, as the reviewer sees it."""

    trial: int
    status: str
    reason: str | None
    label: int | None
    text: str


class ReviewItem(Strict):
    """One discarded example to review."""

    id: str
    split: str
    label: int
    document: str
    attempts: list[Attempt]
    near_miss: Attempt | None


def near_miss(attempts: list[Attempt], gold: int) -> Attempt | None:
    """The attempt whose text best serves as a starting explanation, or None when no attempt has text."""
    usable = [a for a in attempts if a.status in NEAR_MISS_ORDER and a.text.strip()]
    return min(usable, key=lambda a: (a.label != gold, NEAR_MISS_ORDER[a.status], a.trial), default=None)


def minority_label(examples: pl.DataFrame) -> int:
    """The rarer gold label over all examples of a run (ties go to 1)."""
    positives = int(examples["label"].sum())
    return 1 if positives <= examples.height - positives else 0


def discarded_items(run_dir: Path, label: int | None) -> list[ReviewItem]:
    """Review items for discarded examples with gold `label` (None: every discarded example), in id order."""
    info = read_run_info(run_dir)
    examples = read_examples(run_dir)
    trials = read_trials(run_dir, ["status", "reason", "label", "explanation", "raw_text"])
    outcomes = example_outcomes(examples, trials, info.config.k)
    chosen = outcomes.filter(pl.col("outcome") == "discarded")
    if label is not None:
        chosen = chosen.filter(pl.col("label") == label)
    attempts = (
        trials.join(chosen.select("id"), left_on="example_id", right_on="id")
        .sort("example_id", "trial")
        .group_by("example_id", maintain_order=True)
        .agg(pl.struct("trial", "status", "reason", "label", "explanation", "raw_text").alias("attempts"))
    )
    rows = (
        examples.select("id", "split", "label", "document")
        .join(attempts, left_on="id", right_on="example_id")
        .sort("id")
    )
    items = []
    for row in rows.iter_rows(named=True):
        tries = [
            Attempt(
                trial=a["trial"],
                status=str(a["status"]),
                reason=a["reason"],
                label=a["label"],
                text=a["explanation"] or a["raw_text"] or "",
            )
            for a in row["attempts"]
            if a["trial"] <= info.config.k
        ]
        items.append(
            ReviewItem(
                id=row["id"],
                split=row["split"],
                label=row["label"],
                document=row["document"],
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
            f"**Trial {attempt.trial}: {attempt.status}** · predicted label: {predicted}"
            f" · reason: {attempt.reason or attempt.status}\n\n{quoted}"
        )
    return "\n\n---\n\n".join(blocks)
