"""`EvalConfig`: inference, metric and baseline settings; loadable from YAML, CLI options override."""

from pathlib import Path
from typing import Any

from pydantic import Field

from schemas.base import Strict
from schemas.config import validated_config


class EvalConfig(Strict):
    """Settings shared by `evaluate run`, `judge` and `baseline`."""

    max_new_tokens: int = Field(256, gt=0, description="max tokens of a generated explanation")
    temperature: float = Field(0.0, ge=0.0, description="decoding temperature; 0 is greedy (the default)")
    top_p: float = Field(1.0, gt=0.0, le=1.0, description="nucleus mass when sampling")
    batch_size: int = Field(8, ge=1, description="prompts per batch, grouped by length")
    seed: int = Field(0, description="sampling seed")
    n_bootstrap: int = Field(1000, ge=0, description="bootstrap resamples for the 95% intervals")
    votes: int = Field(10, ge=1, description="label runs per example for self-consistency")
    vote_temperature: float = Field(0.7, gt=0.0, description="sampling temperature of self-consistency votes")
    judge_max_tokens: int = Field(128, gt=0, description="max tokens of a judge answer")
    concurrency: int = Field(32, ge=1, description="requests in flight (openai engine)")


def build_eval_config(path: Path | None, overrides: dict[str, Any]) -> EvalConfig:
    """EvalConfig from an optional YAML file plus CLI overrides; ValueError names the bad field."""
    return validated_config(EvalConfig, path, overrides, "evaluate")
