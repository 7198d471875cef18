"""The effective distributed setup of a run (what accelerate resolved from its config, environment and launcher),
its one-line log, and the settings that cannot work, refused before anything is written."""

import os

import torch
from accelerate import Accelerator
from accelerate.utils import DistributedType

from train.config import TrainConfig

ACCELERATE_CONFIGS = "configs/accelerate/"


def setup_line(accelerator: Accelerator, model: torch.nn.Module, base_dtype: torch.dtype, autocast_bf16: bool) -> str:
    """One line on the effective distributed setup: processes, distributed type, FSDP version, accelerate's mixed
    precision and the dtypes the model holds and computes in (a stale accelerate config shows here)."""
    dtypes = "/".join(sorted({str(p.dtype).removeprefix("torch.") for p in model.parameters() if p.requires_grad}))
    fsdp = f" FSDP{accelerator.state.fsdp_plugin.fsdp_version}," if is_fsdp(accelerator) else ""
    return (
        f"train run: {accelerator.num_processes} process(es) ({accelerator.distributed_type.value}) on"
        f" {accelerator.device.type},{fsdp} accelerate mixed precision {accelerator.mixed_precision};"
        f" base weights {str(base_dtype).removeprefix('torch.')}, trainable weights {dtypes},"
        f" {'bf16 autocast' if autocast_bf16 else 'no autocast'}"
    )


def is_fsdp(accelerator: Accelerator) -> bool:
    """Whether accelerate shards the model with FSDP."""
    return accelerator.distributed_type == DistributedType.FSDP


def launch_problem(cfg: TrainConfig, accelerator: Accelerator, base_dtype: torch.dtype) -> str | None:
    """What in the accelerate setup cannot train this config (mixed precision, batch split, FSDP on CPU), or None."""
    precision, world = accelerator.mixed_precision, accelerator.num_processes
    if precision not in ("no", "bf16"):
        return (
            f"the accelerate config (or ACCELERATE_MIXED_PRECISION / --mixed_precision) asks for mixed precision"
            f" {precision} with a {str(base_dtype).removeprefix('torch.')} base: the trainer supports bf16 or no;"
            f" set `mixed_precision: bf16` (or `no`) in the accelerate config, e.g. {ACCELERATE_CONFIGS}1gpu.yaml"
        )
    if cfg.batch_size % world:
        return (
            f"batch_size={cfg.batch_size} is not a multiple of the {world} processes: set batch_size to a multiple"
            f" of {world}, or launch a process count that divides {cfg.batch_size} (accelerate launch --num_processes)"
        )
    if os.environ.get("ACCELERATE_USE_FSDP", "false").lower() == "true" and not is_fsdp(accelerator):
        return (
            f"the accelerate config asks for FSDP but accelerate runs {accelerator.distributed_type.value} on"
            f" {accelerator.device.type} (accelerate shards with FSDP on GPUs only): use a DDP config such as"
            f" {ACCELERATE_CONFIGS}4gpu-ddp.yaml, or run on GPUs"
        )
    return None


def model_problem(fsdp: bool, model: torch.nn.Module) -> str | None:
    """Under FSDP, parameters of more than one dtype (FSDP shards one dtype per layer), or None."""
    dtypes = sorted({str(p.dtype).removeprefix("torch.") for p in model.parameters()})
    if fsdp and len(dtypes) > 1:
        return (
            f"FSDP needs one parameter dtype, but the model holds {', '.join(dtypes)} (the base in one, LoRA and head"
            " in another): set precision: fp32 in the train config and mixed_precision: bf16 in the accelerate"
            f" config (FSDP2 then keeps fp32 shards and computes in bf16), as {ACCELERATE_CONFIGS}4gpu-fsdp.yaml does"
        )
    return None
