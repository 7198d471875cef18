"""`evaluate predict`: a checkpoint on unlabeled rows, journaled so a killed run resumes without predicting any row
twice; then `predictions.parquet` (and `.jsonl`), with the label at the recorded decision threshold.

OUT holds `journal.jsonl` (one ModelOutput per finished row, appended as each batch ends), `settings.json` (what the
journal answers: a resume under another checkpoint, input or decoding setting is refused) and, once every row is
done, the predictions and `predict.json`.
"""

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Literal

import polars as pl
from pydantic import Field

from evaluate.config import EvalConfig
from evaluate.decision import Decision
from evaluate.engine_calls import check_call_settings
from evaluate.io import Document, ModelOutput
from evaluate.predict import explanation_of
from evaluate.progress import progress
from schemas.base import Strict
from schemas.files import Journal, atomic_write_bytes, atomic_write_parquet, file_sha256, folder_lock
from schemas.task import InputMapping, TaskSpec
from train.checkpoint import ADAPTER, HEAD, DualHeadConfig

Engine = Literal["hf", "vllm"]
JOURNAL = "journal.jsonl"
SETTINGS = "settings.json"
PREDICTIONS = "predictions.parquet"
PREDICTIONS_JSONL = "predictions.jsonl"
INFO = "predict.json"
COLUMNS = {
    "id": pl.String,
    "probability": pl.Float64,
    "label": pl.Int64,
    "explanation": pl.String,
    "verbalized_label": pl.Int64,
    "parse_status": pl.String,
}
Batches = Callable[[list[Document]], Iterator[list[ModelOutput]]]


class Predicted(Strict):
    """One row of `predictions.parquet`: the head's P(positive), the label at the threshold, the explanation."""

    id: str
    probability: float = Field(ge=0.0, le=1.0, description="P(positive) from the classification head")
    label: Literal[0, 1] = Field(description="1 when probability >= the threshold in predict.json")
    explanation: str = Field(description="generated explanation without its Classification line")
    verbalized_label: Literal[0, 1] | None = Field(description="the label the explanation states; null if none")
    parse_status: Literal["ok", "unparseable", "truncated"]


class PredictInfo(Strict):
    """`predict.json`: what was predicted, with which checkpoint and engine, at which threshold (and why)."""

    checkpoint: str
    input: str
    engine: Engine
    device: str | None
    decision: Decision
    rows: int
    resumed_rows: int = Field(description="rows taken from the journal of an earlier, interrupted run")
    parse_status: dict[str, int]
    config: dict[str, Any]
    files: list[str]


def predicted(output: ModelOutput, decision: Decision, task: TaskSpec) -> Predicted:
    """The exported row of a model output."""
    return Predicted(
        id=output.id,
        probability=output.p_head,
        label=decision.label(output.p_head),
        explanation=explanation_of(output.text, task),
        verbalized_label=output.verbalized_label,
        parse_status=output.parse_status,
    )


def run_settings(
    checkpoint: Path, input_path: Path, mapping: InputMapping, engine: Engine, device: str | None, config: EvalConfig
) -> dict[str, Any]:
    """What the journal's outputs depend on: the checkpoint's weights, the input's bytes, engine and decoding."""
    return {
        "checkpoint": str(checkpoint.resolve()),
        "weights_sha256": {name: file_sha256(checkpoint / name) for name in (ADAPTER, HEAD)},
        "input": str(input_path.resolve()),
        "input_sha256": file_sha256(input_path) if input_path.is_file() else None,
        "columns": mapping.model_dump(),
        "engine": engine,
        "device": device,
        "decoding": config.model_dump(include={"max_new_tokens", "temperature", "top_p", "seed"}),
    }


def journaled_outputs(
    documents: list[Document], out: Path, batches: Callable[[], Batches]
) -> tuple[dict[str, ModelOutput], int]:
    """Every document's output by id and how many came from the journal; only the pending ones are predicted (the
    predictor is opened only when some are), and each finished batch is journaled before the next starts."""
    journal = Journal(out / JOURNAL, ModelOutput)
    wanted = {d.id for d in documents}
    done = {o.id: o for o in journal.load() if o.id in wanted}
    pending = [d for d in documents if d.id not in done]
    resumed = len(done)
    try:
        with progress("predict", len(documents)) as advance:
            advance(resumed)
            if pending:
                for batch in batches()(pending):
                    for output in batch:
                        journal.append(output)
                        done[output.id] = output
                    advance(len(batch))
    finally:
        journal.close()
    return done, resumed


def write_predictions(rows: list[Predicted], out: Path, jsonl: bool) -> list[str]:
    """`predictions.parquet` (and `predictions.jsonl`), atomically; the file names written."""
    frame = pl.DataFrame([row.model_dump() for row in rows], schema=COLUMNS)
    atomic_write_parquet(frame, out / PREDICTIONS)
    if not jsonl:
        return [PREDICTIONS]
    lines = "".join(row.model_dump_json() + "\n" for row in rows)
    atomic_write_bytes(out / PREDICTIONS_JSONL, lines.encode())
    return [PREDICTIONS, PREDICTIONS_JSONL]


def predict_file(
    checkpoint: Path,
    head_config: DualHeadConfig,
    documents: list[Document],
    input_path: Path,
    mapping: InputMapping,
    out: Path,
    *,
    engine: Engine,
    device: str | None,
    decision: Decision,
    config: EvalConfig,
    jsonl: bool,
) -> PredictInfo:
    """Predict `documents` (already read and checked) into `out`, resuming its journal; returns `predict.json`."""
    task = TaskSpec.model_validate(head_config.task_spec)
    with folder_lock(out, "evaluate predict"):
        settings = run_settings(checkpoint, input_path, mapping, engine, device, config)
        check_call_settings(out, settings, SETTINGS)
        outputs, resumed = journaled_outputs(
            documents, out, lambda: open_batches(checkpoint, head_config, documents, engine, device, config)
        )
        rows = [predicted(outputs[d.id], decision, task) for d in documents]
        files = write_predictions(rows, out, jsonl)
        statuses = pl.Series([row.parse_status for row in rows]).value_counts()
        info = PredictInfo(
            checkpoint=str(checkpoint),
            input=str(input_path),
            engine=engine,
            device=device,
            decision=decision,
            rows=len(rows),
            resumed_rows=resumed,
            parse_status=dict(statuses.iter_rows()),
            config=config.model_dump(),
            files=files,
        )
        atomic_write_bytes(out / INFO, json.dumps(info.model_dump(), indent=2).encode())
        return info


def open_batches(
    checkpoint: Path,
    head_config: DualHeadConfig,
    documents: list[Document],
    engine: Engine,
    device: str | None,
    config: EvalConfig,
) -> Batches:
    """The batch predictor of an engine, its model loaded: hf (one prefill per batch) or vllm (LoRA + pooling)."""
    if engine == "vllm":
        from evaluate.vllm_predict import VLLMPredictor

        return VLLMPredictor(checkpoint, head_config, config, documents).batches
    from evaluate.predict import hf_batches
    from train.checkpoint import load_checkpoint

    loaded = load_checkpoint(checkpoint, device=device or "cpu")
    return lambda pending: hf_batches(loaded, pending, config)
