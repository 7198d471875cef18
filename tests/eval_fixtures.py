"""A small published dataset version (the `curate publish` contract), written directly for evaluate tests."""

import io
from pathlib import Path

import pytest
from datasets.utils.logging import disable_progress_bar
from rich.console import Console

import evaluate.progress
from schemas.inputs import input_mapping, load_examples
from schemas.task import TaskSpec, load_task
from tests.train_fixtures import write_version

disable_progress_bar()
FILES = {"train": "train_set.csv", "validation": "validation_set.csv", "test": "test_set.csv"}


def explanation_for(label: int) -> str:
    """A stand-in teacher explanation that agrees with the label."""
    if label == 1:
        return "The abstract reports a significant improvement in the primary outcome, which supports the claim."
    return "The abstract does not report a significant improvement in the primary outcome for the claim."


def version_rows(clinifact_dir: Path, task: TaskSpec, per_split: int) -> dict[str, list[dict]]:
    """The first `per_split` rows of each CliniFact split (both classes), in the published-version columns."""
    splits = {}
    for split, name in FILES.items():
        examples = load_examples(clinifact_dir / name, task, input_mapping(task, None), split)
        chosen = [e for e in examples if e.label == 1][: per_split // 2] + [e for e in examples if e.label == 0][
            : per_split - per_split // 2
        ]
        rows = []
        for e in chosen:
            labelled = split != "test"
            explanation = explanation_for(e.label) if labelled else None
            rows.append(
                {
                    "id": e.id,
                    "label": e.label,
                    **e.fields,
                    "explanation": explanation,
                    "target": task.render_target(explanation, e.label) if labelled else None,
                    "provenance": "teacher" if labelled else None,
                    "trial": 1 if labelled else None,
                }
            )
        splits[split] = rows
    return splits


def clinifact_version(clinifact_dir: Path, registry: Path, per_split: int = 6, task: TaskSpec | None = None) -> Path:
    """A small CliniFact version (per_split rows per split, both classes)."""
    task = task or load_task("clinifact")
    return write_version(registry, "clinifact-mini", "1.0.0", version_rows(clinifact_dir, task, per_split), task)


def train_one_epoch(
    version: Path, model_dir: Path, out: Path, max_input_tokens: int = 768, head_hidden: int = 16
) -> Path:
    """A one-epoch dual-head run through train's own API; returns the run folder (with epoch-1)."""
    from train.config import TrainConfig
    from train.loop import train_run

    cfg = TrainConfig(
        epochs=1,
        batch_size=4,
        head_hidden=head_hidden,
        max_input_tokens=max_input_tokens,
        learning_rate=1e-3,
        warmup_ratio=0.0,
    )
    return train_run(cfg, version, str(model_dir), out)


def draw_progress_into(monkeypatch: pytest.MonkeyPatch) -> io.StringIO:
    """Make evaluate's progress bars draw into the returned buffer as if stderr were a terminal."""
    drawn = io.StringIO()
    console = Console(file=drawn, force_terminal=True, width=100)
    monkeypatch.setattr(evaluate.progress, "stderr_console", lambda: console)
    return drawn


def published_clinifact_run(clinifact_dir: Path, root: Path, keep_every: int = 15) -> tuple[Path, Path]:
    """A scripted `curate generate` run over the full CliniFact train and validation files whose teacher passes
    every `keep_every`-th example only, published with the full test file through `curate publish`:
    (run dir, version dir)."""
    from typer.testing import CliRunner

    from curate.cli import app as curate_app
    from tests.run_fixtures import clinifact_examples, write_run

    examples = clinifact_examples(clinifact_dir, n_per_split=10_000)
    plan = {e.id: ["accepted"] if i % keep_every == 0 else ["wrong_label"] * 3 for i, e in enumerate(examples)}
    run = root / "run"
    write_run(run, examples, plan, k=3)
    registry = root / "registry"
    args = ["publish", run, "--name", "clinifact-filtered", "--version", "1.0.0", "--registry", registry]
    args += ["--cards-dir", root / "cards", "--test", clinifact_dir / "test_set.csv"]
    result = CliRunner().invoke(curate_app, [str(a) for a in args])
    assert result.exit_code == 0, result.output
    return run, registry / "clinifact-filtered" / "1.0.0"
