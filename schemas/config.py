"""Run configurations: YAML files with CLI overrides; every field documented."""

import hashlib
import json
from pathlib import Path
from typing import Any, Literal, TypeVar

import yaml
from pydantic import Field, ValidationError

from schemas.base import Strict
from schemas.task import InputMapping

__all__ = [
    "GenerateConfig",
    "InputMapping",
    "RayConfig",
    "SamplingConfig",
    "load_yaml_config",
    "merged",
    "validated_config",
]

ConfigModel = TypeVar("ConfigModel", bound=Strict)


class SamplingConfig(Strict):
    """Teacher sampling parameters."""

    temperature: float = Field(0.7, ge=0.0, description="sampling temperature; 0 means greedy")
    top_p: float = Field(0.95, gt=0.0, le=1.0, description="nucleus sampling mass")
    max_tokens: int = Field(512, gt=0, description="max new tokens per trial; a longer answer is `truncated`")


class RayConfig(Strict):
    """Where the `ray:` engine places its vLLM replicas; none of it changes what a trial produces, except `dtype`."""

    address: str | None = Field(None, description="Ray cluster address; default RAY_ADDRESS, else a local cluster")
    replicas: int = Field(1, ge=1, description="long-lived vLLM replicas (one per GPU or node)")
    gpus_per_replica: float = Field(0.0, ge=0.0, description="GPUs each replica reserves (0: vLLM-CPU)")
    cpus_per_replica: float = Field(1.0, gt=0.0, description="CPUs each replica reserves (its OpenMP threads on CPU)")
    tensor_parallel_size: int = Field(1, ge=1, description="GPUs one replica's model is split over")
    dtype: str = Field("auto", description="vLLM dtype of the replicas, e.g. float32 for batch-invariant samples")
    start_timeout_s: float = Field(600.0, gt=0.0, description="seconds to wait for every replica to load its model")


class GenerateConfig(Strict):
    """`curate generate`: which teacher, how many trials, how to sample and how to read the inputs."""

    task: str = Field("clinifact", description="built-in task name or a task YAML path")
    engine: str = Field(
        "hf:default", description="engine URI: hf:PATH, vllm:PATH_OR_ID, openai:BASE_URL#MODEL, ray:PATH_OR_ID"
    )
    k: int = Field(5, ge=1, le=100, description="max trials per example (Algorithm 1's K)")
    strategy: Literal["rounds", "parallel", "pipelined", "auto"] = Field(
        "auto",
        description="rounds: trial k only if 1..k-1 failed, round by round; parallel: all K at once; pipelined:"
        " an example's next trial as soon as its last one failed (no round barrier on engines that stream);"
        " auto: pipelined on engines that stream (vllm, openai, ray), else rounds",
    )
    sampling: SamplingConfig = SamplingConfig()
    structured_output: Literal["none", "json", "regex"] = Field("none", description="constrain the teacher")
    base_seed: int = Field(0, description="seeds are derived from (base_seed, example id, trial)")
    min_explanation_chars: int = Field(20, ge=0, description="shorter explanations are `invalid`")
    batch_size: int = Field(16, ge=1, description="prompts per engine batch (hf, vllm)")
    concurrency: int = Field(32, ge=1, description="requests in flight (openai; the pipelined strategy on any engine)")
    tokenizer: str | None = Field(None, description="tokenizer folder for length checks with the openai engine")
    columns: InputMapping | None = Field(None, description="column and label mapping; default: the task's")
    ray: RayConfig = Field(RayConfig(), description="replica placement of the ray: engine")

    def identity_hash(self) -> str:
        """Hash of the fields that change what a trial produces; a run refuses to resume under another."""
        keep = self.model_dump(
            mode="json", exclude={"batch_size", "concurrency", "strategy", "min_explanation_chars", "ray"}
        )
        if self.ray.dtype != "auto":  # placement changes no sample; the dtype does (and old runs keep their hash)
            keep["ray_dtype"] = self.ray.dtype
        return hashlib.sha256(json.dumps(keep, sort_keys=True).encode()).hexdigest()[:16]


def load_yaml_config(path: Path) -> dict[str, Any]:
    """Read a YAML mapping of field: value; ValueError names the file when it is unreadable or not a mapping."""
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as err:
        raise ValueError(f"cannot read config {path}: {err}") from err
    if not isinstance(data, dict):
        raise ValueError(f"config {path} must be a YAML mapping of field: value, got {type(data).__name__}")
    return data


def merged(base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """`base` under `overrides`, nested mappings merged field by field (a `sampling:` block keeps the fields a flag
    does not set)."""
    out = dict(base)
    for key, value in overrides.items():
        both_mappings = isinstance(value, dict) and isinstance(out.get(key), dict)
        out[key] = merged(out[key], value) if both_mappings else value
    return out


def validated_config(
    model: type[ConfigModel], path: Path | None, overrides: dict[str, Any], what: str, keep_none: bool = False
) -> ConfigModel:
    """A config model from an optional YAML file plus overrides; ValueError names the file and field. An override of
    None means "flag not given" and keeps the file's value, unless `keep_none` (an explicit `key=null`)."""
    given = overrides if keep_none else {key: value for key, value in overrides.items() if value is not None}
    data = merged(load_yaml_config(path) if path else {}, given)
    try:
        return model.model_validate(data)
    except ValidationError as err:
        sources = ([str(path)] if path else []) + (["the overrides"] if given else [])
        raise ValueError(f"invalid {what} config in {' or '.join(sources)}: {err}") from err
