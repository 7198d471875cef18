"""Run directories in the `curate generate` format, written directly from scripted trial outcomes."""

import io
import random
import time
from pathlib import Path

import pytest
from rich.console import Console

from curate.generation.acceptance import latest_slots
from curate.generation.run_dir import TRIALS, RunInfo
from curate.generation.tables import examples_frame, finalize_run, write_examples
from schemas.config import GenerateConfig
from schemas.example import Example
from schemas.files import Journal
from schemas.inputs import input_mapping, load_examples
from schemas.task import TaskSpec, load_task
from schemas.trial import Trial, TrialStatus

TEACHER = "scripted-teacher"
STATUSES = [s.value for s in TrialStatus]


def make_trial(example: Example, number: int, status: str, task: TaskSpec, created_at: float) -> Trial:
    """A journal row with the raw text, label and explanation a teacher would produce for `status`."""
    gold = example.label
    explanation = f"Trial {number} on {example.id}: the abstract reports results about the claim in detail."
    label, reason, finish, text = gold, None, "stop", explanation
    if status == "wrong_label":
        label, reason = 1 - gold, f"predicted {task.verbalizers[1 - gold]}, gold {task.verbalizers[gold]}"
    elif status == "unparseable":
        label, explanation, reason = None, None, "no Classification line"
    elif status == "invalid":
        explanation, reason, text = "Too short.", "explanation too short (10 < 20 characters)", "Too short."
    elif status == "truncated":
        label, finish, reason = None, "length", "cut off by the token limit"
    elif status == "error":
        label, explanation, reason, text, finish = None, None, "engine error: connection reset", "", "error"
    raw = text if label is None or status == "invalid" else f"{text}\n\nClassification: {task.verbalizers[label]}"
    if status == "invalid":
        raw += f"\n\nClassification: {task.verbalizers[gold]}"
    tokens = 0 if status == "error" else 40 + 7 * number
    return Trial(
        example_id=example.id,
        split=example.split,
        gold_label=gold,
        trial=number,
        seed=1000 * number,
        status=TrialStatus(status),
        reason=reason,
        label=label,
        explanation=explanation,
        raw_text=raw,
        prompt_tokens=0 if status == "error" else 300,
        completion_tokens=tokens,
        finish_reason=finish,
        engine="hf:scripted",
        model_id=TEACHER,
        latency_s=0.5,
        created_at=created_at,
    )


def random_plan(examples: list[Example], k: int, seed: int = 0) -> dict[str, list[str]]:
    """Trial statuses per example: positives fail more often, like the paper's minority class."""
    rng = random.Random(seed)
    plan = {}
    for example in examples:
        p_accept = 0.35 if example.label == 1 else 0.6
        statuses = []
        for _ in range(k):
            status = (
                "accepted"
                if rng.random() < p_accept
                else rng.choice(["wrong_label", "wrong_label", "unparseable", "invalid", "truncated"])
            )
            statuses.append(status)
            if status == "accepted":
                break
        plan[example.id] = statuses
    return plan


def write_run(
    run_dir: Path,
    examples: list[Example],
    plan: dict[str, list[str]],
    task: str = "clinifact",
    k: int = 3,
    extra_trials: list[Trial] = (),
) -> RunInfo:
    """Write run.json, examples.parquet, trials.jsonl (plan order, then `extra_trials`) and the outcome tables."""
    spec = load_task(task)
    run_dir.mkdir(parents=True)
    config = GenerateConfig(task=task, engine="hf:scripted", k=k)
    now = time.time()
    info = RunInfo(
        config=config,
        config_hash=config.identity_hash(),
        task_spec=spec.model_dump(mode="json"),
        task_spec_hash=spec.spec_hash(),
        inputs={ex.split: f"{ex.split}.csv" for ex in examples},
        model_id=TEACHER,
        created_at=now,
        updated_at=now,
        tool_version="test",
    )
    documents = {ex.id: (spec.render_document(ex.fields), False) for ex in examples}
    write_examples(run_dir, examples_frame(examples, documents))
    journal = Journal(run_dir / TRIALS, Trial)
    by_id = {ex.id: ex for ex in examples}
    trials = [
        make_trial(by_id[example_id], number, status, spec, now + 0.1 * i)
        for i, (example_id, number, status) in enumerate(
            (eid, n, s) for eid, statuses in plan.items() for n, s in enumerate(statuses, start=1)
        )
    ]
    for trial in [*trials, *extra_trials]:
        journal.append(trial)
    journal.close()
    finalize_run(run_dir, info, latest_slots(journal.load()))
    return info


def synthetic_examples(n_per_split: int, splits: tuple[str, ...] = ("train", "validation")) -> list[Example]:
    """Short claim/abstract examples, one in three positive."""
    return [
        Example(
            id=f"{split}-{i}",
            split=split,
            label=int(i % 3 == 0),
            fields={"claim": f"Drug {i} improves outcome {i % 5}.", "article_abstract": f"In trial {i}, results..."},
        )
        for split in splits
        for i in range(n_per_split)
    ]


def synthetic_run(run_dir: Path, n_per_split: int, k: int, seed: int) -> tuple[Path, list[Example], dict]:
    """A two-split synthetic run directory from a random plan; returns (run_dir, examples, plan)."""
    examples = synthetic_examples(n_per_split)
    plan = random_plan(examples, k, seed=seed)
    write_run(run_dir, examples, plan, k=k)
    return run_dir, examples, plan


def clinifact_examples(clinifact_dir: Path, n_per_split: int) -> list[Example]:
    """The first rows of CliniFact's train and validation files, read with the task's own mapping."""
    spec = load_task("clinifact")
    mapping = input_mapping(spec, None)
    files = {"train": "train_set.csv", "validation": "validation_set.csv"}
    return [
        ex
        for split, name in files.items()
        for ex in load_examples(clinifact_dir / name, spec, mapping, split)[:n_per_split]
    ]


def terminal(monkeypatch: pytest.MonkeyPatch) -> io.StringIO:
    """Make the curate CLI's console a 120-column terminal (progress bars on) writing into the returned buffer."""
    import curate.cli

    screen = io.StringIO()
    monkeypatch.setattr(curate.cli, "console", Console(file=screen, force_terminal=True, width=120, soft_wrap=True))
    return screen
