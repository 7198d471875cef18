"""`train run` configuration: YAML file plus key=value overrides; defaults follow the paper's Table 5."""

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import Field

from schemas.base import Strict
from schemas.config import validated_config

Objective = Literal["joint", "cls-only", "gen-only"]
Tracker = Literal["tensorboard", "wandb", "mlflow"]


class TrainConfig(Strict):
    """Hyper-parameters of one dual-head fine-tuning run (model, data and output paths come from the CLI)."""

    objective: Objective = Field(
        "joint", description="joint: LM + head loss (CLSGen); cls-only: head loss only; gen-only: LM loss only (SFT)"
    )
    lora_r: int = Field(8, ge=1, description="LoRA rank (paper: 8)")
    lora_alpha: int = Field(16, ge=1, description="LoRA alpha (paper: 16)")
    lora_dropout: float = Field(0.05, ge=0.0, lt=1.0, description="dropout on the LoRA input (paper: 0.05)")
    lora_target_modules: list[str] = Field(
        ["q_proj", "k_proj", "v_proj", "o_proj"], min_length=1, description="modules that get LoRA (paper: q/k/v/o)"
    )
    head_hidden: int = Field(
        2048, ge=1, description="hidden width of the 2-layer MLP classification head (paper: 2048)"
    )
    head_dropout: float = Field(0.1, ge=0.0, lt=1.0, description="dropout inside the classification head (paper: 0.1)")
    epochs: int = Field(
        5,
        ge=1,
        description="training epochs; a checkpoint is written after each (not known from Table 5: a common value)",
    )
    learning_rate: float = Field(
        1e-4, gt=0.0, description="AdamW peak learning rate (not known from Table 5: the usual LoRA value)"
    )
    weight_decay: float = Field(0.0, ge=0.0, description="AdamW weight decay (not known from Table 5: the usual 0)")
    warmup_ratio: float = Field(
        0.03, ge=0.0, lt=1.0, description="share of the optimizer steps with linear warmup, then linear decay to 0"
    )
    max_grad_norm: float = Field(1.0, gt=0.0, description="gradient clipping norm (not known from Table 5: usual 1.0)")
    batch_size: int = Field(
        16, ge=1, description="examples per optimizer step over all processes (not known from Table 5: a common value)"
    )
    pack_tokens: int = Field(
        4096,
        ge=1,
        description="micro-batches pack examples up to this many tokens (position ids restart); a longer example "
        "runs alone at batch 1 without padding; gradients accumulate over a step's micro-batches",
    )
    max_input_tokens: int | None = Field(
        None, ge=1, description="document token limit (only the task's truncate field is cut); default: the task spec's"
    )
    precision: Literal["auto", "bf16", "fp32"] = Field(
        "auto",
        description="auto: bf16 base weights on GPU, fp32 on CPU and under FSDP (LoRA and head weights stay fp32)",
    )
    attn_implementation: str = Field("sdpa", description="transformers attention backend: sdpa, eager, flex_attention")
    gradient_checkpointing: bool = Field(
        False, description="recompute activations in backward; only if memory needs it"
    )
    checkpoint_every_n_layers: int = Field(1, ge=1, description="with checkpointing: only every n-th decoder layer")
    seed: int = Field(0, description="seeds LoRA/head init, the epoch shuffles and dropout")
    log_with: list[Tracker] = Field(
        ["tensorboard"],
        description="accelerate trackers the run logs to: tensorboard (into RUN/tracking/), wandb, mlflow (each when"
        " installed); [] for none; may change when a run is resumed",
    )
    allow_one_class_dev: bool = Field(
        False,
        description="train on a version whose validation split lacks a class (or is empty); refused by default, since"
        " dev AUROC is then undefined and dev F1 / accuracy say nothing about the model",
    )


def parse_overrides(items: list[str]) -> dict[str, Any]:
    """`key=value` arguments as a mapping, each value parsed as a YAML scalar (`epochs=3`, `max_input_tokens=null`)."""
    pairs: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValueError(f"override {item!r} is not key=value (e.g. learning_rate=2e-4)")
        try:
            pairs[key.strip()] = yaml.safe_load(value)
        except yaml.YAMLError as err:
            raise ValueError(f"override {item!r}: cannot parse the value: {err}") from err
    return pairs


def build_train_config(path: Path | None, overrides: list[str]) -> TrainConfig:
    """TrainConfig from an optional YAML file and `key=value` overrides (`key=null` sets the field to null)."""
    return validated_config(TrainConfig, path, parse_overrides(overrides), "train", keep_none=True)
