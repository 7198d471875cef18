"""What each `evaluate` command does, end to end: read inputs, predict, summarize, write the output folder."""

import json
from pathlib import Path
from typing import Any

from rich.console import Console

from evaluate.config import EvalConfig
from evaluate.data import check_same_task, file_split, split_sha256, version_split
from evaluate.io import METRICS, PREDICTIONS, MetricsFile, PredictionRow, write_metrics, write_predictions
from evaluate.metrics import Thresholds, tune_thresholds
from evaluate.select import SELECTION, Selection, selected_thresholds
from evaluate.summary import arrays, summarize
from schemas.example import Example
from schemas.files import atomic_write_bytes, file_sha256, folder_lock
from schemas.task import TaskSpec

TUNED_THRESHOLDS = "tuned_thresholds.json"


class TunedThresholds(Thresholds):
    """`tuned_thresholds.json`: thresholds tuned on this folder's own split (pass a dev one to --thresholds)."""

    tuned_on: str
    reasons: dict[str, str] = {}


def load_thresholds(path: Path) -> tuple[Thresholds, str]:
    """Thresholds from a `selection.json` or a `tuned_thresholds.json` (or a folder holding one)."""
    if path.is_dir():
        path = next((path / n for n in (SELECTION, TUNED_THRESHOLDS) if (path / n).is_file()), path / TUNED_THRESHOLDS)
    try:
        data = json.loads(path.read_text())
        if "best_epoch" in data:
            return Selection.model_validate(data).thresholds, str(path)
        tuned = TunedThresholds.model_validate(data)
    except (OSError, ValueError) as err:
        raise ValueError(
            f"cannot read thresholds from {path}: {err}; pass a selection.json or tuned_thresholds.json"
        ) from err
    return Thresholds(f1=tuned.f1, kappa=tuned.kappa), str(path)


def write_outputs(rows: list[PredictionRow], summary: MetricsFile, out: Path) -> None:
    """Write predictions, metrics and the thresholds tuned on this split into `out`."""
    out.mkdir(parents=True, exist_ok=True)
    thresholds, reasons = tune_thresholds(*arrays(rows))
    tuned = TunedThresholds(f1=thresholds.f1, kappa=thresholds.kappa, tuned_on=summary.split, reasons=reasons)
    write_predictions(rows, out / PREDICTIONS)
    atomic_write_bytes(out / TUNED_THRESHOLDS, tuned.model_dump_json(indent=2).encode())
    write_metrics(summary, out / METRICS)


def summarize_into(
    rows: list[PredictionRow],
    examples: list[Example],
    out: Path,
    *,
    method: str,
    split: str,
    thresholds: tuple[Thresholds, str] | None,
    config: EvalConfig,
    seed: int | None,
    source: dict[str, Any],
) -> MetricsFile:
    """Every metric of `rows` (the predictions of `examples`) at the given (thresholds, where they came from), with
    the examples' content hash, written into the output folder."""
    tuned, origin = thresholds or (None, None)
    summary = summarize(
        rows,
        method=method,
        split=split,
        thresholds=tuned,
        threshold_source=origin,
        n_bootstrap=config.n_bootstrap,
        seed=seed,
        source=source,
    ).model_copy(update={"examples_sha256": split_sha256(examples)})
    write_outputs(rows, summary, out)
    return summary


def task_source(task: TaskSpec) -> dict[str, Any]:
    """The task part of a metrics file's `source` (the judge reads the spec back from it)."""
    return {"task": task.name, "task_spec": task.model_dump(mode="json")}


def file_input(path: Path, task: TaskSpec, split: str) -> tuple[list[Example], dict[str, Any]]:
    """The examples of a labelled file read with the checkpoint's task, and what the metrics file records about it:
    its path and sha256, so results on different files are never taken for one test set."""
    return file_split(path, task, split), {"input": str(Path(path).resolve()), "input_sha256": file_sha256(Path(path))}


def refresh_card(checkpoint: Path) -> None:
    """Rewrite the checkpoint's model card with the evaluations now known (a card that fails says why, on stderr)."""
    from train.card import CARD, write_card

    if (Path(checkpoint) / CARD).is_file():
        try:
            write_card(checkpoint)
        except (OSError, ValueError) as err:
            Console(stderr=True, soft_wrap=True).print(
                f"warning: {checkpoint / CARD} was not refreshed ({err}); run `train card {checkpoint}`",
                highlight=False,
                markup=False,
            )


def evaluate_checkpoint(
    checkpoint: Path,
    dataset: Path | None,
    split: str,
    out: Path,
    config: EvalConfig,
    thresholds_path: Path | None,
    name: str,
    seed: int | None,
    device: str = "auto",
    limit: int | None = None,
    input_file: Path | None = None,
) -> MetricsFile:
    """`evaluate run`: dual-output predictions of a checkpoint on (the first `limit` examples of) one split of a
    published version or a labelled `input_file`, on `device` (`auto`: CUDA if available, else CPU); refreshes the
    checkpoint's model card."""
    from evaluate.predict import predict, resolve_device
    from train.checkpoint import load_checkpoint

    with folder_lock(out, "evaluate run"):
        version = version_split(dataset, split) if input_file is None else None  # fails before the model loads
        device = resolve_device(device)
        loaded = load_checkpoint(checkpoint, device=device)
        if version:
            examples, evaluated = version[0], {"dataset": str(dataset)}
            check_same_task(loaded.task, version[1], checkpoint, dataset)
        else:
            examples, evaluated = file_input(input_file, loaded.task, split)
        examples = examples[:limit]
        found = load_thresholds(thresholds_path) if thresholds_path else selected_thresholds(checkpoint)
        rows = predict(loaded, examples, config)
        summary = summarize_into(
            rows,
            examples,
            out,
            method=name,
            split=split,
            thresholds=found,
            config=config,
            seed=seed,
            source={
                "checkpoint": str(checkpoint),
                **evaluated,
                **task_source(loaded.task),
                "config": config.model_dump(),
                "limit": limit,
                "device": device,
            },
        )
    refresh_card(checkpoint)
    return summary


def tfidf_baseline(
    train: list[Example],
    validation: list[Example] | None,
    test: list[Example],
    task: TaskSpec,
    split: str,
    out: Path,
    config: EvalConfig,
    name: str,
    source: dict[str, Any],
) -> MetricsFile:
    """`evaluate baseline --method tfidf-logreg`: fit on train, tune the F1 threshold on validation if given
    (`source` says which rows those are)."""
    from evaluate.tfidf import fit_tfidf_logreg, predict_tfidf_logreg

    with folder_lock(out, "evaluate baseline"):
        model = fit_tfidf_logreg(train, task)
        thresholds = None
        if validation:
            tuned, _ = tune_thresholds(*arrays(predict_tfidf_logreg(model, validation, task)))
            thresholds = (tuned, "validation split (tuned by this command)")
        return summarize_into(
            predict_tfidf_logreg(model, test, task),
            test,
            out,
            method=name,
            split=split,
            thresholds=thresholds,
            config=config,
            seed=config.seed,
            source={**source, **task_source(task)},
        )


def engine_baseline(
    examples: list[Example],
    task: TaskSpec,
    engine_uri: str,
    method: str,
    split: str,
    out: Path,
    config: EvalConfig,
    thresholds_path: Path | None,
    name: str,
    source: dict[str, Any],
) -> MetricsFile:
    """`evaluate baseline --method verbalized-prob|label|self-consistency`: journaled engine calls in `out`."""
    from curate.engines import open_engine
    from evaluate.baselines import baseline_requests, baseline_rows
    from evaluate.engine_calls import check_call_settings, run_journaled

    with folder_lock(out, "evaluate baseline"):
        found = load_thresholds(thresholds_path) if thresholds_path else None
        with open_engine(engine_uri, batch_size=config.batch_size, concurrency=config.concurrency) as engine:
            check_call_settings(
                out,
                {
                    "engine": engine_uri,
                    "method": method,
                    **source,
                    "config": config.model_dump(),
                    "task_spec": task.spec_hash(),
                },
            )
            results = run_journaled(engine, baseline_requests(examples, task, engine, method, config), out, method)
            model_id = engine.model_id
        return summarize_into(
            baseline_rows(examples, results, task, method, config.votes),
            examples,
            out,
            method=name,
            split=split,
            thresholds=found,
            config=config,
            seed=config.seed,
            source={**source, **task_source(task), "engine": engine_uri, "model_id": model_id},
        )
