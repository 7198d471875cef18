"""Epoch checkpoints: LoRA adapter (vLLM-loadable), head, head config, and the state for exact resume."""

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from accelerate import Accelerator
from accelerate.utils import DistributedType
from peft import PeftModel, set_peft_model_state_dict
from pydantic import Field
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file
from torch.optim.lr_scheduler import LRScheduler
from transformers import AutoModelForCausalLM, AutoTokenizer
from transformers.utils.logging import disable_progress_bar

from schemas.base import Strict
from schemas.files import follow_umask
from schemas.task import TaskSpec
from train.config import TrainConfig
from train.model import ClsHead, DualHeadModel

ADAPTER = "adapter_model.safetensors"
ADAPTER_CONFIG = "adapter_config.json"
HEAD = "cls_head.safetensors"
HEAD_CONFIG = "dual_head.json"
RESUME = "resume"
STATE = "state.json"
EPOCH_DIR = re.compile(r"^epoch-(\d+)$")


class DualHeadConfig(Strict):
    """`dual_head.json`: what evaluate needs besides the adapter to rebuild the dual-head model."""

    base_model: str = Field(description="path (or id) of the base causal LM the adapter was trained on")
    hidden_size: int
    head_hidden: int
    head_dropout: float
    task_spec: dict[str, Any]
    max_input_tokens: int
    eog_token_id: int
    objective: str
    dataset_dir: str
    dataset_version: str = Field(description="NAME@X.Y.Z of the published dataset version")
    epoch: int


class TrainRecord(Strict):
    """`RUN/train.json`: what a run trains on; a resume must match it (the dataset may have moved)."""

    config: TrainConfig
    model: str
    dataset_dir: str
    dataset_version: str
    dataset_sha256: dict[str, str]

    def identity(self) -> dict[str, Any]:
        """The fields a resumed run must share with the checkpoint's run: all but where the dataset lies, the number
        of epochs (raising it continues a finished run) and the trackers."""
        return self.model_dump(mode="json", exclude={"dataset_dir": True, "config": {"epochs", "log_with"}})


class ResumeState(Strict):
    """`epoch-N/resume/state.json`: where training stood when the checkpoint was written."""

    epoch: int
    global_step: int
    world_size: int
    record: TrainRecord


@dataclass
class LoadedCheckpoint:
    """A checkpoint ready for inference."""

    model: DualHeadModel
    tokenizer: Any
    task: TaskSpec
    config: DualHeadConfig


def model_dtype(device: torch.device | str, precision: str = "auto") -> torch.dtype:
    """bf16 for `precision=bf16` or on GPU under `auto`, else fp32."""
    if precision == "bf16" or (precision == "auto" and torch.device(device).type == "cuda"):
        return torch.bfloat16
    return torch.float32


def load_tokenizer(model_path: str):
    """The base model's tokenizer; ValueError names the path when it cannot be read."""
    try:
        return AutoTokenizer.from_pretrained(model_path)
    except (OSError, ValueError) as err:
        raise ValueError(f"cannot load a tokenizer from --model {model_path!r}: {err}") from err


def load_base(model_path: str, device: torch.device | str, precision: str = "auto", attn: str = "sdpa"):
    """The base causal LM on `device` in the run's dtype (without transformers' per-tensor loading bar)."""
    disable_progress_bar()
    try:
        return AutoModelForCausalLM.from_pretrained(
            model_path, dtype=model_dtype(device, precision), attn_implementation=attn, device_map=str(device)
        )
    except (OSError, ValueError) as err:
        raise ValueError(f"cannot load a causal LM from --model {model_path!r}: {err}") from err


def epoch_dirs(run_dir: Path) -> dict[int, Path]:
    """Complete checkpoints of a run (those with resume state), by epoch."""
    found = {}
    for path in Path(run_dir).glob("epoch-*"):
        match = EPOCH_DIR.match(path.name)
        if match and (path / RESUME / STATE).is_file():
            found[int(match.group(1))] = path
    return found


def weights_problem(path: Path) -> str | None:
    """What keeps a checkpoint's weights from loading (a missing or unreadable file, named), or None."""
    for name in (HEAD_CONFIG, ADAPTER_CONFIG, ADAPTER, HEAD):
        if not (path / name).is_file():
            return f"{path / name} is missing"
    for name in (ADAPTER, HEAD):
        try:
            with safe_open(path / name, "pt"):
                pass
        except (SafetensorError, OSError) as err:
            return f"{path / name} is not a readable safetensors file ({err})"
    return None


def check_weights(path: Path) -> None:
    """ValueError naming the file when a checkpoint's weights are missing or corrupt, before any model loads."""
    problem = weights_problem(Path(path))
    if problem:
        raise ValueError(f"{problem}: pass another RUN/epoch-N checkpoint, or train this epoch again")


def save_weights(path: Path, lm: PeftModel, state_dict: dict[str, torch.Tensor], config: DualHeadConfig) -> None:
    """Write the LoRA adapter, the head and `dual_head.json` from a full (gathered) wrapper state dict."""
    lm_state = {k.removeprefix("lm."): v for k, v in state_dict.items() if k.startswith("lm.")}
    head_state = {
        k.removeprefix("head."): v.detach().cpu().contiguous() for k, v in state_dict.items() if k.startswith("head.")
    }
    lm.save_pretrained(path, state_dict=lm_state)
    save_file(head_state, path / HEAD)
    follow_umask(path / ADAPTER, path / HEAD)
    (path / HEAD_CONFIG).write_text(config.model_dump_json(indent=2))


def keep_model_weights_out_of_state(accelerator: Accelerator) -> None:
    """Under DDP or one process, `save_state` / `load_state` skip the model: its trainable weights are the
    checkpoint's published adapter and head; FSDP and DeepSpeed keep their sharded model state in `resume/`."""
    if accelerator.distributed_type in (DistributedType.FSDP, DistributedType.DEEPSPEED):
        return
    accelerator.register_save_state_pre_hook(lambda models, weights, output_dir: weights.clear())
    accelerator.register_load_state_pre_hook(lambda models, input_dir: models.clear())


def save_training_state(accelerator: Accelerator, path: Path, state: "ResumeState") -> None:
    """Optimizer, scheduler and every process's RNG state through `accelerator.save_state` (called on all
    processes), then `state.json`, written last by the main process: a checkpoint without it is incomplete."""
    accelerator.save_state(str(path / RESUME))
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        (path / RESUME / STATE).write_text(state.model_dump_json(indent=2))


def read_resume_state(path: Path) -> ResumeState:
    """`state.json` of a checkpoint; ValueError if the folder is not a complete checkpoint."""
    file = Path(path) / RESUME / STATE
    if not file.is_file():
        raise ValueError(f"{path} is not a complete train checkpoint (no {RESUME}/{STATE})")
    return ResumeState.model_validate_json(file.read_text())


def load_trainable_weights(path: Path, model: DualHeadModel) -> None:
    """Load a checkpoint's adapter and head into a freshly built model; ValueError on any key mismatch."""
    result = set_peft_model_state_dict(model.lm, load_file(path / ADAPTER))
    if result.unexpected_keys:
        raise ValueError(f"{path / ADAPTER} has keys the model lacks: {result.unexpected_keys[:3]}")
    model.head.load_state_dict(load_file(path / HEAD, device=str(model.head.net[1].weight.device)), strict=True)


def load_training_state(accelerator: Accelerator, path: Path, scheduler: LRScheduler) -> None:
    """Restore optimizer, scheduler and RNG state (all processes); the optimizer's learning rate then follows the
    schedule of this run at the restored step, so a run given more epochs decays over its new length."""
    accelerator.load_state(str(Path(path) / RESUME))
    step = scheduler.last_epoch
    rates = [base * rate(step) for base, rate in zip(scheduler.base_lrs, scheduler.lr_lambdas, strict=True)]
    for group, lr in zip(scheduler.optimizer.param_groups, rates, strict=True):
        group["lr"] = lr


def load_checkpoint(path: Path | str, device: str = "cpu") -> LoadedCheckpoint:
    """Base model + adapter + head of an epoch checkpoint, in eval mode on `device` (bf16 on GPU, fp32 on CPU)."""
    path = Path(path)
    if not (path / HEAD_CONFIG).is_file():
        raise ValueError(f"{path} is not a train checkpoint (no {HEAD_CONFIG}): pass RUN/epoch-N")
    check_weights(path)
    config = DualHeadConfig.model_validate_json((path / HEAD_CONFIG).read_text())
    task = TaskSpec.model_validate(config.task_spec)
    tokenizer = load_tokenizer(config.base_model)
    # adapter weights in the base dtype: what autocast computes with in training, and what vLLM serves
    lm = PeftModel.from_pretrained(
        load_base(config.base_model, device), path, is_trainable=False, autocast_adapter_dtype=False
    )
    head = ClsHead(config.hidden_size, config.head_hidden, config.head_dropout).to(device)
    head.load_state_dict(load_file(path / HEAD, device=str(device)), strict=True)
    return LoadedCheckpoint(DualHeadModel(lm, head, task.positive_label).eval(), tokenizer, task, config)
