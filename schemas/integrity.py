"""Integrity checks of a dataset release, shared by publish, stats, generate, train and evaluate: test rows that
leak from train/validation, and splits left with one class or a shifted class share."""

import hashlib
import re
from collections.abc import Iterable, Mapping

from schemas.manifest import TestOverlap
from schemas.task import TaskSpec

DEFAULT_SHARE_MARGIN = 0.15
SHOWN_IDS = 5
SPACE = re.compile(r"\s+")

Row = tuple[str, Mapping[str, str]]  # (example id, text fields)


def content_hash(fields: Mapping[str, str]) -> str:
    """sha256 of an example's text fields in field-name order, case-folded and with whitespace collapsed."""
    digest = hashlib.sha256()
    for name in sorted(fields):
        digest.update(f"{name}\x1f{SPACE.sub(' ', fields[name]).strip().casefold()}\x1e".encode())
    return digest.hexdigest()


def find_overlap(rows: Iterable[Row], known: Iterable[Row]) -> TestOverlap:
    """Ids of `rows` that also occur in `known`, by id and by normalised content (each list sorted)."""
    ids, hashes = set(), set()
    for example_id, fields in known:  # one pass: `known` may be built as it is read
        ids.add(example_id)
        hashes.add(content_hash(fields))
    by_id, by_content = [], []
    for example_id, fields in rows:
        if example_id in ids:
            by_id.append(example_id)
        if content_hash(fields) in hashes:
            by_content.append(example_id)
    return TestOverlap(by_id=sorted(by_id), by_content=sorted(by_content))


def overlap_ids(overlap: TestOverlap) -> list[str]:
    """Every overlapping id, by id or by content, sorted."""
    return sorted(set(overlap.by_id) | set(overlap.by_content))


def describe_overlap(overlap: TestOverlap, what: str, other: str) -> str:
    """`test shares 3 examples with train/validation (2 by id, 3 by content; e.g. a, b, c)`."""
    ids = overlap_ids(overlap)
    more = f", … (+{len(ids) - SHOWN_IDS})" if len(ids) > SHOWN_IDS else ""
    return (
        f"{what} shares {len(ids)} examples with {other} ({len(overlap.by_id)} by id, {len(overlap.by_content)} by"
        f" content; e.g. {', '.join(ids[:SHOWN_IDS])}{more})"
    )


def class_name(task: TaskSpec, positive: bool) -> str:
    """`positive (TRUE)` or `negative (FALSE)`: the class and its verbalizer."""
    label = task.positive_label if positive else 1 - task.positive_label
    return f"{'positive' if positive else 'negative'} examples ({task.verbalizers[label]})"


def missing_class(split: str, count: int, positives: int, task: TaskSpec) -> str | None:
    """`validation has no negative examples (FALSE)` when a split lacks a class; None when it has both."""
    if count == 0:
        return f"{split} has no examples"
    if positives in (0, count):
        return f"{split} has no {class_name(task, positive=positives == 0)}"
    return None


def share_shift(split: str, original: tuple[int, int], kept: tuple[int, int], margin: float) -> str | None:
    """A sentence when the positive share of `kept` (count, positives) moved more than `margin` from `original`'s."""
    if not original[0] or not kept[0]:
        return None
    before, after = original[1] / original[0], kept[1] / kept[0]
    if abs(after - before) <= margin:
        return None
    return (
        f"{split}: the positive share moved from {before:.2f} in the input to {after:.2f} ({after - before:+.2f},"
        f" more than the {margin:.2f} margin)"
    )


def balance_problem(
    split: str, original: tuple[int, int] | None, kept: tuple[int, int], task: TaskSpec, margin: float
) -> str | None:
    """What is wrong with a split's classes (count, positives): a missing class, else a share moved from the input's."""
    missing = missing_class(split, *kept, task)
    if missing or original is None:
        return missing
    return share_shift(split, original, kept, margin)
