"""`evaluate`: dual-output inference, metrics, checkpoint selection, LLM judge, baselines and reports."""

from pathlib import Path
from typing import Annotated, Literal

import typer

from evaluate.baseline_inputs import TrainOn
from evaluate.config import EvalConfig, build_eval_config
from evaluate.io import MetricsFile
from schemas.exits import exit_on_bad_input, fail
from schemas.files import check_output_folder

app = typer.Typer(no_args_is_help=True, add_completion=False, help=__doc__)
BaselineMethod = Literal["verbalized-prob", "label", "self-consistency", "tfidf-logreg"]
PredictEngine = Literal["hf", "vllm"]

ConfigOpt = Annotated[Path | None, typer.Option("--config", help="EvalConfig YAML; options below override it")]
MaxNewOpt = Annotated[int | None, typer.Option(help="max tokens of a generated explanation")]
BatchOpt = Annotated[int | None, typer.Option(help="prompts per batch")]
DeviceOpt = Annotated[str, typer.Option(help="torch device (cuda, cuda:1, cpu); auto: CUDA if available, else CPU")]
BootOpt = Annotated[int | None, typer.Option(help="bootstrap resamples for the 95% intervals (0: none)")]
ThresholdsOpt = Annotated[
    Path | None, typer.Option(help="dev-tuned thresholds: a selection.json, tuned_thresholds.json or its folder")
]


def eval_config(path: Path | None, **overrides: object) -> EvalConfig:
    """The EvalConfig of a command (file + CLI overrides), exit 2 when invalid."""
    with exit_on_bad_input():
        return build_eval_config(path, overrides)


def show(summary: MetricsFile, out: Path) -> None:
    """Print the headline metrics of a summary."""
    keys = ["auroc", "f1_at_05", "f1_tuned", "parsability", "auroc_align", "kappa_at_05", "ece", "brier"]
    shown = ", ".join(f"{k} {'null' if summary.metrics[k] is None else f'{summary.metrics[k]:.3f}'}" for k in keys)
    typer.echo(f"{summary.method} on {summary.split} (n={summary.n}): {shown}\nwrote {out}")


@app.command()
def run(
    checkpoint: Annotated[Path, typer.Option(help="a `train run` checkpoint folder, RUN/epoch-N")],
    dataset: Annotated[
        Path | None, typer.Option(help="published dataset version folder, REGISTRY/NAME/X.Y.Z (or --input)")
    ] = None,
    input_file: Annotated[
        Path | None,
        typer.Option(
            "--input",
            help="instead of --dataset: a labelled CSV / JSON Lines / Parquet file, read with the task's columns"
            " (the built-in task's mapping, else `id`, the task's field names and `label`)",
        ),
    ] = None,
    split: Annotated[
        str, typer.Option(help="split of --dataset to evaluate; with --input, the split name recorded for the file")
    ] = "test",
    out: Annotated[
        Path | None,
        typer.Option(help="output folder; default CHECKPOINT/eval/SPLIT (with --input: CHECKPOINT/eval/input-STEM)"),
    ] = None,
    config: ConfigOpt = None,
    thresholds: ThresholdsOpt = None,
    name: Annotated[str, typer.Option(help="method name in reports")] = "clsgen",
    seed: Annotated[int | None, typer.Option(help="training seed (reports average over seeds)")] = None,
    device: DeviceOpt = "auto",
    limit: Annotated[int | None, typer.Option(min=1, help="evaluate only the first N examples")] = None,
    max_new_tokens: MaxNewOpt = None,
    batch_size: BatchOpt = None,
    n_bootstrap: BootOpt = None,
) -> None:
    """Head probability and explanation from one prefill per example, on a published split or a labelled file;
    writes predictions.parquet and metrics.json, and refreshes the checkpoint's model card."""
    from evaluate.pipeline import evaluate_checkpoint

    if (dataset is None) == (input_file is None):
        raise fail("pass exactly one of --dataset VERSION (with --split) or --input FILE (a labelled file)")
    cfg = eval_config(config, max_new_tokens=max_new_tokens, batch_size=batch_size, n_bootstrap=n_bootstrap)
    target = out or checkpoint / "eval" / (f"input-{input_file.stem}" if input_file else split)
    with exit_on_bad_input():
        check_output_folder(target)
        summary = evaluate_checkpoint(
            checkpoint, dataset, split, target, cfg, thresholds, name, seed, device, limit, input_file
        )
    show(summary, target)


@app.command("select")
def select_cmd(
    run_dir: Annotated[Path, typer.Argument(help="a `train run` output folder with epoch-N checkpoints")],
    dataset: Annotated[Path | None, typer.Option(help="dataset version for epochs without dev predictions")] = None,
    config: ConfigOpt = None,
    device: DeviceOpt = "auto",
    max_new_tokens: MaxNewOpt = None,
    batch_size: BatchOpt = None,
    n_bootstrap: BootOpt = None,
) -> None:
    """Pick the epoch with the best dev Quality Score and write its dev-tuned thresholds to RUN/selection.json."""
    from evaluate.pipeline import evaluate_checkpoint
    from evaluate.select import dev_eval_dir, select_epoch

    cfg = eval_config(config, max_new_tokens=max_new_tokens, batch_size=batch_size, n_bootstrap=n_bootstrap)

    def predict_dev(checkpoint: Path) -> None:
        if dataset is None:
            raise ValueError(f"{checkpoint} has no dev predictions yet: pass --dataset to compute them")
        evaluate_checkpoint(
            checkpoint, dataset, "validation", dev_eval_dir(checkpoint), cfg, None, "clsgen", None, device
        )

    with exit_on_bad_input():
        selection = select_epoch(run_dir, predict_dev)
    for score in selection.epochs:
        typer.echo(f"epoch {score.epoch}: quality {score.quality:+.3f}  {score.metrics}")
    for key, reason in selection.left_out.items():
        typer.echo(f"{key}: {reason}")
    typer.echo(f"best epoch {selection.best_epoch}; thresholds {selection.thresholds.model_dump()}")


@app.command()
def judge(
    predictions: Annotated[Path, typer.Argument(help="predictions.parquet or the folder holding it")],
    engine: Annotated[str, typer.Option(help="judge engine URI: hf:PATH, vllm:PATH_OR_ID, openai:BASE_URL#MODEL")],
    task: Annotated[str | None, typer.Option(help="task name or YAML; default: from the folder's metrics.json")] = None,
    out: Annotated[Path | None, typer.Option(help="output folder; default PREDICTIONS_FOLDER/judge")] = None,
    config: ConfigOpt = None,
    limit: Annotated[int | None, typer.Option(min=1, help="judge only the first N predictions")] = None,
) -> None:
    """LLM-as-judge: rationale-label inconsistency, kappa_RL and readability; journaled, resumable."""
    cfg = eval_config(config)
    folder = predictions if predictions.is_dir() else predictions.parent
    with exit_on_bad_input():
        check_output_folder(out or folder / "judge")
        summary = judge_folder(predictions, folder, engine, task, out or folder / "judge", cfg, limit)
    typer.echo(
        f"RLI {summary.rli}, kappa_RL {summary.kappa_rl}, readability {summary.readability_mean}"
        f" over {summary.n_judged} rationales; wrote {out or folder / 'judge'}"
    )


def judge_folder(
    predictions: Path,
    folder: Path,
    engine_uri: str,
    task_name: str | None,
    out: Path,
    cfg: EvalConfig,
    limit: int | None,
):
    """Read the predictions and their task, open the judge engine and judge them."""
    from curate.engines import open_engine
    from evaluate.io import METRICS, read_metrics, read_predictions
    from evaluate.judge import judge_predictions
    from schemas.task import TaskSpec, load_task

    rows = read_predictions(predictions)[:limit]
    if task_name:
        task = load_task(task_name)
    elif (folder / METRICS).is_file() and "task_spec" in read_metrics(folder).source:
        task = TaskSpec.model_validate(read_metrics(folder).source["task_spec"])
    else:
        raise ValueError(f"{folder} has no metrics.json naming the task: pass --task")
    with open_engine(engine_uri, batch_size=cfg.batch_size, concurrency=cfg.concurrency) as engine:
        return judge_predictions(rows, task, engine, out, cfg.judge_max_tokens, str(predictions.resolve()))


@app.command()
def baseline(
    method: Annotated[BaselineMethod, typer.Option(help="which baseline")],
    out: Annotated[Path, typer.Option(help="output folder")],
    dataset: Annotated[Path | None, typer.Option(help="published dataset version folder")] = None,
    train: Annotated[
        Path | None, typer.Option(help="train split file (tfidf-logreg); with --dataset, the original train split")
    ] = None,
    validation: Annotated[Path | None, typer.Option(help="validation split file (threshold tuning)")] = None,
    train_on: Annotated[
        TrainOn,
        typer.Option(
            help="with --dataset, tfidf-logreg fits on the original input rows of the version's source run"
            " (RUN/examples.parquet), or on the version's teacher-filtered rows"
        ),
    ] = "original",
    test: Annotated[Path | None, typer.Option(help="split file to evaluate")] = None,
    task: Annotated[str | None, typer.Option(help="task name or YAML (with split files)")] = None,
    split: Annotated[str, typer.Option(help="split of --dataset to evaluate")] = "test",
    engine: Annotated[str | None, typer.Option(help="engine URI for the LLM baselines")] = None,
    name: Annotated[
        str | None,
        typer.Option(help="method name in reports; default: the method (tfidf-logreg-filtered on filtered rows)"),
    ] = None,
    config: ConfigOpt = None,
    thresholds: ThresholdsOpt = None,
    limit: Annotated[int | None, typer.Option(min=1, help="evaluate only the first N examples")] = None,
    max_new_tokens: MaxNewOpt = None,
    votes: Annotated[int | None, typer.Option(help="self-consistency label runs per example")] = None,
    n_bootstrap: BootOpt = None,
) -> None:
    """Inference-only baselines (verbalized-prob, label, self-consistency) and TF-IDF + logistic regression."""
    from evaluate.baseline_inputs import TrainingRows, baseline_splits, default_name
    from evaluate.pipeline import engine_baseline, tfidf_baseline

    cfg = eval_config(config, max_new_tokens=max_new_tokens, votes=votes, n_bootstrap=n_bootstrap)
    if method != "tfidf-logreg" and engine is None:
        raise fail(f"--method {method} needs --engine URI (e.g. hf:default)")
    with exit_on_bad_input():
        check_output_folder(out)
        splits, task_spec, source = baseline_splits(dataset, train, validation, test, task, split, method, train_on)
        evaluated, name = splits["evaluate"][:limit], name or default_name(method, train_on)
        if method == "tfidf-logreg":
            summary = tfidf_baseline(
                splits["train"], splits.get("validation"), evaluated, task_spec, split, out, cfg, name, source
            )
            typer.echo(TrainingRows.model_validate(source["training"]).line())
        else:
            summary = engine_baseline(evaluated, task_spec, engine, method, split, out, cfg, thresholds, name, source)
    show(summary, out)


@app.command()
def report(
    folders: Annotated[list[Path], typer.Argument(help="output folders of `evaluate run` / `evaluate baseline`")],
    out: Annotated[Path, typer.Option(help="report folder: report.md and PNG figures")],
    training_run: Annotated[Path | None, typer.Option(help="a `train run` folder for the Figure-1 epoch curve")] = None,
    allow_mixed_test_sets: Annotated[
        bool,
        typer.Option(help="report results on different test sets, each row marked with its set, instead of refusing"),
    ] = False,
) -> None:
    """Table 2 / Table 3 style markdown over methods (mean ± std over seeds), ROC and reliability plots; refuses
    results evaluated on different test sets (by the examples hash in metrics.json) unless told to mark them."""
    from evaluate.report import write_report

    with exit_on_bad_input():
        check_output_folder(out)
        path = write_report(folders, out, training_run, allow_mixed_test_sets)
    typer.echo(f"wrote {path}")


ThresholdOpt = Annotated[
    float | None, typer.Option(min=0.0, max=1.0, help="decision threshold on P(positive), in [0, 1]")
]
DecisionFileOpt = Annotated[
    Path | None,
    typer.Option(
        "--thresholds",
        help="a selection.json or tuned_thresholds.json whose F1 threshold to use; default: the run's selection.json"
        " when it selected this checkpoint, else 0.5",
    ),
]


@app.command("predict")
def predict_cmd(
    checkpoint: Annotated[Path, typer.Option(help="a `train run` checkpoint folder, RUN/epoch-N")],
    input_path: Annotated[Path, typer.Option("--input", help="rows to predict: .csv, .jsonl, .parquet or a dataset")],
    out: Annotated[Path, typer.Option(help="output folder (resumed if a run of the same settings stopped in it)")],
    engine: Annotated[
        PredictEngine, typer.Option(help="hf (transformers, one prefill) or vllm (LoRA + pooling, two prefills)")
    ] = "hf",
    id_column: Annotated[
        str | None, typer.Option(help="column of the row ids (default: the task's; else row-N)")
    ] = None,
    column: Annotated[
        list[str] | None, typer.Option(help="FIELD=COLUMN: read a task field from another column (repeatable)")
    ] = None,
    threshold: ThresholdOpt = None,
    thresholds: DecisionFileOpt = None,
    jsonl: Annotated[bool, typer.Option("--jsonl", help="also write predictions.jsonl")] = False,
    config: ConfigOpt = None,
    device: DeviceOpt = "auto",
    limit: Annotated[int | None, typer.Option(min=1, help="predict only the first N rows")] = None,
    max_new_tokens: MaxNewOpt = None,
    batch_size: BatchOpt = None,
) -> None:
    """Probability, label, explanation and parse status for every row of an unlabeled file; journaled, resumable."""
    from evaluate.checkpoint_check import check_checkpoint
    from evaluate.decision import decision_for
    from evaluate.predict import resolve_device
    from evaluate.predict_inputs import document_mapping, read_documents
    from evaluate.predict_run import predict_file
    from schemas.task import TaskSpec

    cfg = eval_config(config, max_new_tokens=max_new_tokens, batch_size=batch_size)
    with exit_on_bad_input():
        check_output_folder(out)
        head_config = check_checkpoint(checkpoint)
        task = TaskSpec.model_validate(head_config.task_spec)
        mapping = document_mapping(task, id_column, column or [])
        documents = read_documents(input_path, task, mapping)[:limit]
        decision = decision_for(checkpoint, threshold, thresholds)
        typer.echo(f"threshold {decision.threshold:.4f} ({decision.source})")
        try:
            info = predict_file(
                checkpoint,
                head_config,
                documents,
                input_path,
                mapping,
                out,
                engine=engine,
                device=resolve_device(device) if engine == "hf" else None,
                decision=decision,
                config=cfg,
                jsonl=jsonl,
            )
        except KeyboardInterrupt:
            typer.echo(f"interrupted: finished rows are journaled in {out}; rerun the same command to resume", err=True)
            raise typer.Exit(1) from None
    typer.echo(f"{info.rows} rows ({info.resumed_rows} resumed), parse status {info.parse_status}; wrote {out}")


@app.command("serve")
def serve_cmd(
    checkpoint: Annotated[Path, typer.Option(help="a `train run` checkpoint folder, RUN/epoch-N")],
    host: Annotated[str, typer.Option(help="address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="port to listen on")] = 8000,
    threshold: ThresholdOpt = None,
    thresholds: DecisionFileOpt = None,
    max_wait_ms: Annotated[float, typer.Option(min=0.0, help="how long a batch waits for more requests")] = 5.0,
    max_body_bytes: Annotated[int, typer.Option(min=1, help="larger request bodies get 413")] = 1_000_000,
    max_rows: Annotated[int, typer.Option(min=1, help="rows one request may hold")] = 256,
    config: ConfigOpt = None,
    device: DeviceOpt = "auto",
    max_new_tokens: MaxNewOpt = None,
    batch_size: BatchOpt = None,
) -> None:
    """HTTP service: POST /predict with the task's fields -> probability, label, explanation; /health, /ready."""
    import uvicorn

    from evaluate.checkpoint_check import check_checkpoint
    from evaluate.decision import decision_for
    from evaluate.predict import hf_batches, resolve_device
    from evaluate.serve import ServeSettings, Service, create_app, log_to_stderr
    from schemas.task import TaskSpec
    from train.checkpoint import load_checkpoint

    cfg = eval_config(config, max_new_tokens=max_new_tokens, batch_size=batch_size)
    with exit_on_bad_input():
        head_config = check_checkpoint(checkpoint)
        decision = decision_for(checkpoint, threshold, thresholds)
    typer.echo(f"threshold {decision.threshold:.4f} ({decision.source})")

    def load():
        loaded = load_checkpoint(checkpoint, device=resolve_device(device))
        return lambda documents: [output for batch in hf_batches(loaded, documents, cfg) for output in batch]

    settings = ServeSettings(
        batch_size=cfg.batch_size, max_wait_ms=max_wait_ms, max_body_bytes=max_body_bytes, max_rows=max_rows
    )
    service = Service(TaskSpec.model_validate(head_config.task_spec), decision, settings, load)
    log_to_stderr()
    uvicorn.run(create_app(service), host=host, port=port, log_level="info")
