"""`curate review push / pull`: discarded examples into an Argilla queue, submitted reviews back into the run."""

import io
import re
import warnings
from contextlib import redirect_stderr
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

import polars as pl
from pydantic import ValidationError
from rich.progress import Progress

from curate.generation.outcomes import minority_label, read_examples
from curate.generation.run_dir import read_run_info
from curate.review.items import ReviewItem, attempts_markdown, discarded_items, suggested_decision
from curate.review.merge import (
    RESPONSE_SCHEMA,
    Agreement,
    agreed_decisions,
    agreement,
    decisions_sha256,
    refuse_keep_without_explanation,
)
from curate.review.server import ReviewServerError, connect, server_errors
from curate.review.settings import DECISIONS, check_fields, check_questions, review_settings
from schemas.base import Strict
from schemas.files import atomic_write_bytes, atomic_write_parquet
from schemas.task import TaskSpec

REVIEW_STATE = "review.json"
REVIEWS = "reviews.parquet"  # one agreed decision per example: what publish merges
RESPONSES = "review_responses.parquet"  # one row per (example, reviewer) submitted response
PULL_SUMMARY = "review_pull.json"
DEFAULT_WORKSPACE = "curation"
PAGE = 1000
PUSH_BATCH = 100  # records per upload, one step of the progress bar
DECISION_AGENT = "curate-attempt-labels"
AGENT_CHARS = re.compile(r"[^a-zA-Z0-9_:./\s-]")  # what Argilla accepts in a suggestion agent


class ReviewState(Strict):
    """`review.json`: where a run's review queue lives and which examples were sent (never the API key)."""

    api_url: str
    workspace: str
    dataset: str
    pushed: list[str]


class PushResult(Strict):
    """What `review push` did."""

    dataset: str
    workspace: str
    label: int | None
    rationalized: bool = False
    discarded: int
    added: int


class SubmittedResponse(Strict):
    """One reviewer's submitted answer to one record, as pulled."""

    example_id: str
    decision: Literal[tuple(DECISIONS)]
    explanation: str | None
    reviewer: str
    time: datetime


class PullSummary(Strict):
    """`review_pull.json`: what the last pull read and decided (the rule: majority; ties are left out)."""

    workspace: str
    dataset: str
    responses: int
    decided: dict[str, int]
    ties: list[str]
    agreement: Agreement
    decisions_sha256: str


def default_dataset(run_dir: Path) -> str:
    """Queue name for a run: its folder name plus `-review`."""
    return f"{Path(run_dir).resolve().name}-review"


def read_state(run_dir: Path) -> ReviewState | None:
    """The run's `review.json`, if a push wrote one."""
    path = Path(run_dir) / REVIEW_STATE
    return ReviewState.model_validate_json(path.read_text()) if path.is_file() else None


def to_record(item: ReviewItem, task: TaskSpec, teacher: str):
    """An Argilla record for one item: its id is the example id; a decision and the near miss are suggested."""
    import argilla as rg

    suggestions = []
    decision = suggested_decision(item)
    if decision is not None:
        suggestions.append(rg.Suggestion("decision", decision.value, score=decision.score, agent=DECISION_AGENT))
    if item.near_miss is not None:
        agent = AGENT_CHARS.sub("-", f"{teacher} {item.near_miss.name} {item.near_miss.status}")
        suggestions.append(rg.Suggestion("explanation", item.near_miss.text.strip(), agent=agent))
    return rg.Record(
        id=item.id,
        fields={
            **item.fields,
            "gold_label": f"{task.verbalizers[item.label]} ({item.label})",
            "attempts": attempts_markdown(item, task),
        },
        metadata={
            "example_id": item.id,
            "split": item.split,
            "label": str(item.label),
            "n_attempts": len(item.attempts),
            "reasons": sorted({a.status for a in item.attempts}),
            "truncated": "yes" if item.truncated else "no",
        },
        suggestions=suggestions,
    )


def find_dataset(client, workspace: str, name: str):
    """The named dataset in a workspace, or None."""
    if client.workspaces(workspace) is None:
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return client.datasets(name=name, workspace=workspace)


def open_queue(client, workspace: str, name: str, task: TaskSpec, annotators: int):
    """Reuse the review dataset if it exists (checking its questions and fields), else create it (and the workspace)."""
    import argilla as rg

    dataset = find_dataset(client, workspace, name)
    if dataset is None:
        if client.workspaces(workspace) is None:
            rg.Workspace(name=workspace, client=client).create()
        settings = review_settings(task, annotators)
        return rg.Dataset(name=name, workspace=workspace, settings=settings, client=client).create()
    check_questions(dataset.settings, f"{workspace}/{name}")
    check_fields(dataset.settings, task, f"{workspace}/{name}")
    return dataset


def send(queue, records: list, progress: Progress) -> None:
    """Upload records in batches, advancing a `records pushed` bar (instead of the SDK's own tqdm bar)."""
    bar = progress.add_task("records pushed", total=len(records))
    for start in range(0, len(records), PUSH_BATCH):
        batch = records[start : start + PUSH_BATCH]
        with redirect_stderr(io.StringIO()):
            queue.records.log(batch)
        progress.advance(bar, len(batch))


def push(
    run_dir: Path,
    label: int | None,
    all_discarded: bool,
    workspace: str,
    dataset: str | None,
    annotators: int,
    progress: Progress,
    rationalized: bool = False,
) -> PushResult:
    """Send the run's discarded examples (of `label`, the minority class by default; `rationalized`: those
    rationalization recovered) not yet in the queue; a new queue asks `annotators` reviewers per record."""
    info = read_run_info(run_dir)
    task = TaskSpec.model_validate(info.task_spec)
    if all_discarded:
        label = None
    elif label is None:
        label = minority_label(read_examples(run_dir))
    items = discarded_items(run_dir, label, rationalized)
    name = dataset or default_dataset(run_dir)
    client = connect()
    with server_errors(client.api_url):
        queue = open_queue(client, workspace, name, task, annotators)
        present = {record.id for record in queue.records(with_suggestions=False, with_responses=False)}
        new = [item for item in items if item.id not in present]
        if new:
            send(queue, [to_record(item, task, info.model_id) for item in new], progress)
    previous = read_state(run_dir)
    pushed = sorted({*(previous.pushed if previous and previous.dataset == name else []), *(i.id for i in items)})
    state = ReviewState(api_url=client.api_url, workspace=workspace, dataset=name, pushed=pushed)
    atomic_write_bytes(Path(run_dir) / REVIEW_STATE, state.model_dump_json(indent=2).encode())
    return PushResult(
        dataset=name, workspace=workspace, label=label, rationalized=rationalized, discarded=len(items), added=len(new)
    )


def submitted_response(record: dict, answer: dict, reviewer: str) -> SubmittedResponse:
    """A submitted answer as a row; an answer outside the queue's decisions is a clear error naming the record."""
    values = answer["values"] or {}
    try:
        return SubmittedResponse(
            example_id=record["external_id"],
            decision=(values.get("decision") or {}).get("value"),
            explanation=(values.get("explanation") or {}).get("value"),
            reviewer=reviewer,
            time=datetime.fromisoformat(answer["updated_at"]).replace(tzinfo=UTC),
        )
    except ValidationError:
        raise ValueError(
            f"record {record['external_id']!r}: {reviewer}'s submitted answer {values} has no decision among"
            f" {list(DECISIONS)}: fix it in Argilla (or restore the queue's questions); nothing was written"
        ) from None


def submitted_responses(client, dataset, progress: Progress) -> list[SubmittedResponse]:
    """Every submitted response of the queue, paged over REST: the SDK's response model drops `updated_at`."""
    usernames: dict[str, str] = {}
    rows, offset = [], 0
    bar = progress.add_task("records read", total=None)
    while True:
        response = client.http_client.get(
            f"/api/v1/datasets/{dataset.id}/records",
            params={"include": ["responses"], "offset": offset, "limit": PAGE},
        )
        response.raise_for_status()
        page = response.json()
        records = page["items"]
        progress.update(bar, total=page.get("total"), advance=len(records))
        for record in records:
            for answer in record.get("responses") or []:
                if answer["status"] == "submitted":
                    user = answer["user_id"]
                    if user not in usernames:
                        found = client.users(id=user)
                        usernames[user] = found.username if found else user
                    rows.append(submitted_response(record, answer, usernames[user]))
        if len(records) < PAGE:
            return rows
        offset += PAGE


def write_pull(run_dir: Path, responses: pl.DataFrame, decided: pl.DataFrame, summary: PullSummary) -> None:
    """Write the responses, the agreed decisions and the summary (each file atomically)."""
    atomic_write_parquet(responses, Path(run_dir) / RESPONSES)
    atomic_write_parquet(decided, Path(run_dir) / REVIEWS)
    atomic_write_bytes(Path(run_dir) / PULL_SUMMARY, summary.model_dump_json(indent=2).encode())


def pull(run_dir: Path, workspace: str | None, dataset: str | None, progress: Progress) -> PullSummary:
    """Fetch every submitted response of the run's queue, agree one decision per example by majority (ties left
    out) and write them with the agreement (replacing the last pull); a bad response writes nothing."""
    read_run_info(run_dir)
    state = read_state(run_dir)
    name = dataset or (state.dataset if state else default_dataset(run_dir))
    workspace = workspace or (state.workspace if state else DEFAULT_WORKSPACE)
    client = connect()
    with server_errors(client.api_url):
        queue = find_dataset(client, workspace, name)
        if queue is None:
            raise ReviewServerError(
                f"no Argilla dataset {name!r} in workspace {workspace!r}: run `curate review push {run_dir}` first"
            )
        check_questions(queue.settings, f"{workspace}/{name}")
        rows = submitted_responses(client, queue, progress)
    responses = pl.DataFrame([row.model_dump() for row in rows], schema=RESPONSE_SCHEMA).sort("example_id", "reviewer")
    refuse_keep_without_explanation(responses)
    decided, ties = agreed_decisions(responses)
    summary = PullSummary(
        workspace=workspace,
        dataset=name,
        responses=responses.height,
        decided=dict(sorted(decided.group_by("decision").len().iter_rows())),
        ties=ties,
        agreement=agreement(responses),
        decisions_sha256=decisions_sha256(decided),
    )
    write_pull(run_dir, responses, decided, summary)
    return summary
