"""Several reviewers' responses into one decision per example (majority; ties left out) and their agreement."""

import hashlib
import itertools
import json
import math
import warnings

import polars as pl

from curate.review.settings import DECISIONS
from schemas.base import Strict

RESPONSE_SCHEMA = {
    "example_id": pl.String,
    "decision": pl.String,
    "explanation": pl.String,
    "reviewer": pl.String,
    "time": pl.Datetime("us", "UTC"),
}
DECISION_SCHEMA = {**RESPONSE_SCHEMA, "votes": pl.Int64, "responses": pl.Int64}


class PairAgreement(Strict):
    """Cohen's kappa of two reviewers over the records both submitted (None: undefined, one label only)."""

    reviewers: tuple[str, str]
    shared: int
    kappa: float | None


class Agreement(Strict):
    """How often reviewers agree: unanimous share of the records answered by two or more, and kappa per pair."""

    reviewers: list[str]
    multi_reviewed: int
    unanimous: int
    pairs: list[PairAgreement]


def without_explanation(responses: pl.DataFrame) -> pl.DataFrame:
    """Submitted `keep` responses whose explanation is missing or blank."""
    blank = pl.col("explanation").is_null() | (pl.col("explanation").str.strip_chars() == "")
    return responses.filter((pl.col("decision") == "keep") & blank)


def refuse_keep_without_explanation(responses: pl.DataFrame) -> None:
    """Stop the pull when any `keep` lacks an explanation, naming the records and reviewers."""
    missing = without_explanation(responses).sort("example_id", "reviewer")
    if missing.height:
        listed = ", ".join(f"{eid} ({who})" for eid, who in missing.select("example_id", "reviewer").iter_rows())
        raise ValueError(
            f"{missing.height} `keep` responses have no explanation: {listed}. Open these records in Argilla and"
            " write the explanation (or choose another decision), then pull again; nothing was written"
        )


def vote_counts(responses: pl.DataFrame) -> pl.DataFrame:
    """Per example and decision: its votes, the example's response count and whether it holds the most votes."""
    return (
        responses.group_by("example_id", "decision")
        .agg(votes=pl.len())
        .with_columns(
            responses=pl.col("votes").sum().over("example_id"),
            top=pl.col("votes") == pl.col("votes").max().over("example_id"),
        )
        .filter("top")
        .with_columns(tied=pl.len().over("example_id") > 1)
    )


def agreed_decisions(responses: pl.DataFrame) -> tuple[pl.DataFrame, list[str]]:
    """One row per example with a strict-majority decision (its latest agreeing response gives the explanation,
    reviewer and time), and the ids of tied examples, which get no row."""
    counts = vote_counts(responses)
    tied = sorted(set(counts.filter("tied")["example_id"]))
    winners = counts.filter(~pl.col("tied")).select("example_id", "decision", "votes", "responses")
    decided = (
        responses.join(winners, on=["example_id", "decision"])
        .sort("example_id", "time", "reviewer")
        .group_by("example_id", maintain_order=True)
        .last()
    )
    return decided.select(list(DECISION_SCHEMA)).cast(DECISION_SCHEMA), tied


def pair_agreement(by_reviewer: pl.DataFrame, first: str, second: str) -> PairAgreement:
    """Cohen's kappa (scikit-learn) of two reviewer columns of a record x reviewer decision table."""
    from sklearn.metrics import cohen_kappa_score

    both = by_reviewer.select(first, second).drop_nulls()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        kappa = cohen_kappa_score(both[first], both[second], labels=list(DECISIONS)) if both.height else math.nan
    return PairAgreement(
        reviewers=(first, second), shared=both.height, kappa=None if math.isnan(kappa) else round(float(kappa), 4)
    )


def agreement(responses: pl.DataFrame) -> Agreement:
    """Agreement among the reviewers of a queue; pairs only for reviewers who shared a record."""
    reviewers = sorted(set(responses["reviewer"]))
    per_record = responses.group_by("example_id").agg(n=pl.len(), kinds=pl.col("decision").n_unique())
    multi = per_record.filter(pl.col("n") > 1)
    table = responses.pivot("reviewer", index="example_id", values="decision") if responses.height else pl.DataFrame()
    pairs = [pair_agreement(table, a, b) for a, b in itertools.combinations(reviewers, 2)]
    return Agreement(
        reviewers=reviewers,
        multi_reviewed=multi.height,
        unanimous=int((multi["kinds"] == 1).sum()),
        pairs=[pair for pair in pairs if pair.shared],
    )


def decisions_sha256(decided: pl.DataFrame) -> str:
    """A hash of what a pull decided (example, decision, explanation), equal across pulls that decided the same."""
    rows = decided.sort("example_id").select("example_id", "decision", "explanation").rows()
    return hashlib.sha256(json.dumps(rows, ensure_ascii=False).encode()).hexdigest()


def describe(found: Agreement) -> str:
    """The agreement as one line: unanimous share of multiply-reviewed records, then each pair's kappa."""
    if not found.multi_reviewed:
        return f"agreement: no record has two or more submitted responses ({len(found.reviewers)} reviewers)"
    pairs = "; ".join(
        f"{a}/{b} {'undefined (one label only)' if p.kappa is None else f'{p.kappa:.2f}'} over {p.shared}"
        for p in found.pairs
        for a, b in [p.reviewers]
    )
    return (
        f"agreement: {found.unanimous} of {found.multi_reviewed} records with 2+ responses unanimous"
        f" ({found.unanimous / found.multi_reviewed:.0%}); Cohen's kappa {pairs}"
    )
