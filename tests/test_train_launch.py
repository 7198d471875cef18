"""Launch settings that cannot work are refused before a run starts (exit 2, nothing written); the shipped
accelerate configs say what they are."""

from pathlib import Path

import pytest
import torch
from accelerate.commands.config.config_args import load_config_from_file
from accelerate.state import AcceleratorState
from typer.testing import CliRunner

from tests.conftest import REPO
from tests.train_fixtures import toy_version
from train.cli import app
from train.config import TrainConfig
from train.distributed import model_problem
from train.model import build_model

FAST = ["head_hidden=16", "batch_size=4", "pack_tokens=256", "epochs=1"]


@pytest.fixture
def fresh_accelerate_state():
    """accelerate's process-wide state re-read from the environment (a launcher sets it once per process)."""
    AcceleratorState._reset_state(True)
    yield
    AcceleratorState._reset_state(True)


@pytest.mark.parametrize(
    ("env", "overrides", "message"),
    [
        (
            {"ACCELERATE_MIXED_PRECISION": "fp16"},
            ["precision=bf16"],
            "asks for mixed precision fp16 with a bfloat16 base: the trainer supports bf16 or no; set"
            " `mixed_precision: bf16` (or `no`) in the accelerate config",
        ),
        (
            {"ACCELERATE_USE_FSDP": "true"},
            [],
            "the accelerate config asks for FSDP but accelerate runs NO on cpu (accelerate shards with FSDP on GPUs"
            " only): use a DDP config such as configs/accelerate/4gpu-ddp.yaml",
        ),
        ({}, ["log_with=[tensorboard,mlflow]"], "log_with: mlflow is not installed: `pip install mlflow`"),
    ],
    ids=["fp16-with-bf16-base", "fsdp-on-cpu", "tracker-not-installed"],
)
def test_a_launch_that_cannot_work_exits_2_before_anything_is_written(
    tiny_model_dir, tmp_path, monkeypatch, fresh_accelerate_state, env, overrides, message
):
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    version = toy_version(tmp_path / "registry")
    out = tmp_path / "run"
    args = ["run", "--dataset", version, "--model", tiny_model_dir, "--out", out, *FAST, *overrides]
    result = CliRunner().invoke(app, [str(a) for a in args])
    assert result.exit_code == 2, result.output
    assert message in " ".join(result.output.split())
    assert not out.exists()


def test_fsdp_refuses_a_model_of_mixed_dtypes(tiny_model_dir):
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.bfloat16)
    model = build_model(base, TrainConfig(head_hidden=16), positive_label=1)
    problem = model_problem(True, model)
    assert problem and "FSDP needs one parameter dtype, but the model holds bfloat16, float32" in problem
    assert "set precision: fp32 in the train config and mixed_precision: bf16" in problem
    assert model_problem(False, model) is None
    uniform = build_model(AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32), TrainConfig(), 1)
    assert model_problem(True, uniform) is None


@pytest.mark.parametrize(
    ("name", "processes", "kind", "precision"),
    [("1gpu", 1, "NO", "bf16"), ("4gpu-ddp", 4, "MULTI_GPU", "bf16"), ("4gpu-fsdp", 4, "FSDP", "bf16")],
)
def test_shipped_accelerate_configs_parse_as_accelerate_reads_them(name, processes, kind, precision):
    config = load_config_from_file(str(Path(REPO) / "configs" / "accelerate" / f"{name}.yaml"))
    assert (config.num_processes, config.distributed_type.value, config.mixed_precision) == (processes, kind, precision)
    if kind == "FSDP":
        assert config.fsdp_config["fsdp_version"] == 2
        assert config.fsdp_config["fsdp_transformer_layer_cls_to_wrap"] == "LlamaDecoderLayer"
