"""Offline rules of the review queue: the near miss, the decision suggestion, majority decisions and agreement."""

from datetime import UTC, datetime

import polars as pl
import pytest

from curate.review.items import Attempt, ReviewItem, near_miss, suggested_decision
from curate.review.merge import (
    RESPONSE_SCHEMA,
    agreed_decisions,
    agreement,
    decisions_sha256,
    describe,
    refuse_keep_without_explanation,
)


def attempt(trial: int, status: str, label: int | None, text: str = "An answer long enough to read.") -> Attempt:
    """A failed attempt."""
    return Attempt(trial=trial, status=status, reason=None, label=label, text=text)


def item(*attempts: Attempt, gold: int = 1) -> ReviewItem:
    """A review item with these attempts."""
    return ReviewItem(
        id="x",
        split="train",
        label=gold,
        fields={},
        truncated=False,
        attempts=list(attempts),
        near_miss=near_miss(list(attempts), gold),
    )


def test_the_near_miss_prefers_a_complete_wrong_label_answer_over_a_too_short_one():
    short, wrong = attempt(1, "invalid", 1, "Too short."), attempt(2, "wrong_label", 0)
    assert near_miss([short, wrong, attempt(3, "truncated", None)], gold=1) == wrong
    assert near_miss([attempt(1, "unparseable", None), short], gold=1) == short
    assert near_miss([attempt(1, "truncated", None, "  ")], gold=1) is None


@pytest.mark.parametrize(
    ("labels", "expected"),
    [((0, 0, None), ("wrong_gold_label", 0.6667)), ((1, 0, None), ("keep", 0.3333)), ((None, None), None)],
)
def test_the_decision_suggestion_follows_the_labels_the_attempts_named(labels, expected):
    tries = [attempt(n, "unparseable" if lab is None else "wrong_label", lab) for n, lab in enumerate(labels, 1)]
    found = suggested_decision(item(*tries))
    assert (found and (found.value, found.score)) == expected


def responses(*rows: tuple[str, str, str | None, str, int]) -> pl.DataFrame:
    """A pulled-responses frame from (example, decision, explanation, reviewer, minute) rows."""
    return pl.DataFrame(
        [
            dict(zip(RESPONSE_SCHEMA, (*row[:4], datetime(2026, 1, 1, 0, row[4], tzinfo=UTC)), strict=True))
            for row in rows
        ],
        schema=RESPONSE_SCHEMA,
    )


def test_majority_decides_ties_are_left_out_and_the_latest_agreeing_explanation_wins():
    frame = responses(
        ("a", "keep", "first", "ann", 1),
        ("a", "keep", "later", "bob", 2),
        ("b", "keep", "mine", "ann", 3),
        ("b", "drop_noise", None, "bob", 4),
        ("c", "drop_noise", None, "ann", 5),
        ("c", "drop_noise", None, "bob", 6),
        ("c", "keep", "odd one out", "cy", 7),
        ("d", "wrong_gold_label", None, "ann", 8),
    )
    decided, ties = agreed_decisions(frame)
    assert ties == ["b"]
    assert decided.select("example_id", "decision", "explanation", "reviewer", "votes", "responses").rows() == [
        ("a", "keep", "later", "bob", 2, 2),
        ("c", "drop_noise", None, "bob", 2, 3),
        ("d", "wrong_gold_label", None, "ann", 1, 1),
    ]
    assert decisions_sha256(decided) == decisions_sha256(decided.reverse())


def test_agreement_counts_unanimous_records_and_cohen_kappa_per_pair():
    frame = responses(
        ("a", "keep", "x", "ann", 1),
        ("a", "keep", "y", "bob", 2),
        ("b", "drop_noise", None, "ann", 3),
        ("b", "drop_noise", None, "bob", 4),
        ("c", "keep", "x", "ann", 5),
        ("c", "wrong_gold_label", None, "bob", 6),
        ("d", "keep", "x", "ann", 7),
    )
    found = agreement(frame)
    assert (found.reviewers, found.multi_reviewed, found.unanimous) == (["ann", "bob"], 3, 2)
    ((pair),) = found.pairs
    assert pair.reviewers == ("ann", "bob") and pair.shared == 3 and pair.kappa == pytest.approx(0.5)
    assert "2 of 3" in describe(found) and "ann/bob 0.50 over 3" in describe(found)
    single = agreement(responses(("a", "keep", "x", "ann", 1), ("a", "keep", "y", "bob", 2)))
    assert single.pairs[0].kappa is None and "undefined" in describe(single)
    assert "no record" in describe(agreement(responses()))


def test_keep_without_an_explanation_is_refused_with_the_record_ids():
    frame = responses(("a", "keep", " ", "ann", 1), ("b", "keep", None, "bob", 2), ("c", "keep", "ok", "ann", 3))
    with pytest.raises(ValueError, match=r"2 `keep` responses have no explanation: a \(ann\), b \(bob\)"):
        refuse_keep_without_explanation(frame)
    refuse_keep_without_explanation(frame.filter(pl.col("example_id") == "c"))
