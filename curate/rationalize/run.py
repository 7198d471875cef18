"""`curate rationalize RUN`: up to K' gold-label-hinted trials per discarded example, through generate's trial loop."""

from pathlib import Path
from typing import Any

import polars as pl
from rich.console import Console

from curate.engines.base import Constraint, trial_seed
from curate.generation.acceptance import decide
from curate.generation.outcomes import example_outcomes, minority_label, read_examples, read_trials
from curate.generation.run import (
    Asking,
    Plan,
    anchored,
    changed_fields,
    constraint_for,
    journaled_trials,
    open_teacher,
)
from curate.generation.run_dir import ENGINE_LOG, RunInfo, read_run_info
from curate.generation.tables import summarize
from curate.rationalize.state import (
    RATIONALIZE_JSON,
    RATIONALIZED,
    RationalizeInfo,
    read_rationalize_info,
    write_rationalize_info,
)
from schemas.config import GenerateConfig, merged, validated_config
from schemas.example import Example
from schemas.exits import ExitCode
from schemas.inputs import InputError
from schemas.task import TaskSpec
from schemas.trial import Trial, TrialKind

DEFAULT_K = 3  # K': rationalization trials per example unless --k says otherwise


def finished_run(run_dir: Path) -> RunInfo:
    """The run record; InputError when generation is still running or stopped with examples pending."""
    info = read_run_info(run_dir)
    if info.status != "done":
        raise InputError(
            f"{run_dir} is {info.status}: generation has not finished (it is still going, or stopped with examples"
            f" pending); finish it with `curate generate --out {run_dir}`, then rationalize"
        )
    return info


def target_ids(run_dir: Path, info: RunInfo, label: int | None, all_discarded: bool) -> tuple[list[str], int | None]:
    """Ids of the discarded examples to rationalize (gold `label`, by default the minority class's) and the label
    chosen; InputError when there are none, naming what there is instead."""
    examples = read_examples(run_dir)
    outcomes = example_outcomes(examples, read_trials(run_dir, ["status"]), info.config.k)
    discarded = outcomes.filter(pl.col("outcome") == "discarded")
    if discarded.is_empty():
        raise InputError(
            f"{run_dir} has no discarded examples: the teacher was right on every one, nothing to rationalize"
        )
    if all_discarded:
        return discarded["id"].to_list(), None
    label = minority_label(examples) if label is None else label
    chosen = discarded.filter(pl.col("label") == label)
    if chosen.is_empty():
        raise InputError(
            f"{run_dir} has no discarded examples of label {label} ({discarded.height} of label {1 - label}):"
            f" pass --label {1 - label} or --all-discarded"
        )
    return chosen["id"].to_list(), label


def target_examples(run_dir: Path, ids: list[str], task: TaskSpec) -> tuple[list[Example], dict[str, tuple[str, bool]]]:
    """The examples with these ids, in run order, and the documents the teacher saw (as generate cut them)."""
    rows = read_examples(run_dir).filter(pl.col("id").is_in(ids))
    examples, documents = [], {}
    for row in rows.iter_rows(named=True):
        fields = {name: row[name] for name in task.input_fields}
        examples.append(Example(id=row["id"], split=row["split"], label=row["label"], fields=fields))
        documents[row["id"]] = (row["document"], row["truncated"])
    return examples, documents


def rationalize_config(run_dir: Path, info: RunInfo, overrides: dict[str, Any]) -> GenerateConfig:
    """The config rationalization asks with: a rerun's stored one, else the run's with K' = 3, under the given
    flags; InputError when a rerun would ask differently from the trials journaled."""
    stored = read_rationalize_info(run_dir)
    base = (stored.config if stored else info.config.model_copy(update={"k": DEFAULT_K})).model_dump(
        mode="json", exclude_none=True
    )
    config = anchored(validated_config(GenerateConfig, None, merged(base, overrides), "rationalize"))
    if stored and stored.config_hash != config.identity_hash():
        raise InputError(
            f"{run_dir} was rationalized with another config (changed: {changed_fields(stored.config, config)}):"
            f" rerun with the same settings, or remove {RATIONALIZED} and {RATIONALIZE_JSON} to start over"
        )
    return config


def rationalize_asking(plan: Plan, documents: dict[str, tuple[str, bool]], constraint: Constraint | None) -> Asking:
    """Rationalization trials: the gold label given in the prompt, seeds from (base seed, example id,
    "rationalize", trial), so they never repeat a generate trial's sample."""
    config = plan.config
    return Asking(
        k=config.k,
        strategy=config.strategy,
        messages=lambda example: plan.task.rationalize_messages(documents[example.id][0], example.label),
        seed=lambda example, number: trial_seed(config.base_seed, f"{example.id}\x1f{TrialKind.rationalize}", number),
        constraint=constraint,
        kind=TrialKind.rationalize,
    )


def start_rationalization(run_dir: Path, config: GenerateConfig, model_id: str) -> RationalizeInfo:
    """Create or reopen `rationalize.json`, marked running."""
    info = read_rationalize_info(run_dir) or RationalizeInfo.begin(config, model_id)
    info.status = "running"
    write_rationalize_info(run_dir, info)
    return info


def finish_rationalization(run_dir: Path, info: RationalizeInfo, slots: dict[tuple[str, int], Trial]) -> None:
    """Decide every example in the journal and record the counts and status (partial while any is pending)."""
    decisions = {example_id: decide(example_id, slots, info.config.k) for example_id, _ in slots}
    info.counts = summarize(decisions)
    info.status = "partial" if info.counts["pending"] else "done"
    write_rationalize_info(run_dir, info)


def run_rationalize(
    run_dir: Path,
    overrides: dict[str, Any],
    label: int | None,
    all_discarded: bool,
    limit: int | None,
    console: Console,
) -> int:
    """Rationalize (or resume) the chosen discarded examples; 0 done, 1 partial; bad input raises before any write."""
    info = finished_run(run_dir)
    ids, label = target_ids(run_dir, info, label, all_discarded)
    config = rationalize_config(run_dir, info, overrides)
    task = TaskSpec.model_validate(info.task_spec)
    examples, documents = target_examples(run_dir, ids[:limit] if limit else ids, task)
    inputs = {split: Path(path) for split, path in info.inputs.items()}
    plan = Plan(config, task, inputs, examples, open_teacher(config, run_dir / ENGINE_LOG))
    with plan.engine as engine:
        asking = rationalize_asking(plan, documents, constraint_for(config, task, engine))
        state = start_rationalization(run_dir, config, engine.model_id)
        slots = journaled_trials(plan, asking, examples, run_dir / RATIONALIZED, console)
    finish_rationalization(run_dir, state, slots)
    counts = summarize({ex.id: decide(ex.id, slots, config.k) for ex in examples})
    which = "all classes" if label is None else f"label {label}"
    console.print(
        f"{counts['accepted']} recovered, {counts['discarded']} still discarded, {counts['pending']} pending of"
        f" {counts['examples']} discarded examples ({which}), K'={config.k} → {run_dir / RATIONALIZED}"
    )
    return ExitCode.PARTIAL if counts["pending"] else ExitCode.DONE
