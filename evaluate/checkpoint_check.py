"""Refuse a checkpoint that cannot serve before any weights load: missing head or adapter files, or an adapter
(or head) whose shapes do not fit the base model `dual_head.json` names (an adapter trained on another base)."""

from pathlib import Path

import torch
from safetensors import safe_open
from transformers import AutoConfig, AutoModelForCausalLM

from train.checkpoint import ADAPTER, HEAD, HEAD_CONFIG, DualHeadConfig, check_weights

LORA_KEY = ".lora_"  # peft: base_model.model.<module>.lora_A.weight / .lora_B.weight


def tensor_shapes(path: Path) -> dict[str, tuple[int, ...]]:
    """Name -> shape of every tensor in a safetensors file, read from its header only."""
    with safe_open(path, "pt") as handle:
        return {key: tuple(handle.get_slice(key).get_shape()) for key in handle.keys()}  # noqa: SIM118 (safe_open is no mapping)


def base_linear_shapes(base_model: str) -> tuple[dict[str, tuple[int, int]], int]:
    """(module name -> (in, out) features of every linear layer, hidden size) of the base model, built on the meta
    device from its config (no weights read)."""
    try:
        config = AutoConfig.from_pretrained(base_model)
    except (OSError, ValueError) as err:
        raise ValueError(f"cannot read the base model {base_model!r} that {HEAD_CONFIG} names: {err}") from err
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config)
    linears = {
        name: (module.in_features, module.out_features)
        for name, module in model.named_modules()
        if isinstance(module, torch.nn.Linear)
    }
    return linears, config.hidden_size


def adapter_mismatch(shapes: dict[str, tuple[int, ...]], linears: dict[str, tuple[int, int]]) -> str | None:
    """The first LoRA tensor that does not fit a linear layer of the base (named with both shapes), or None."""
    for key, shape in shapes.items():
        if LORA_KEY not in key:
            continue
        module = key.removeprefix("base_model.model.").split(LORA_KEY)[0]
        if module not in linears:
            return f"{key} adapts {module!r}, which the base model does not have"
        n_in, n_out = linears[module]
        fits = shape[1] == n_in if ".lora_A." in key else shape[0] == n_out
        if not fits:
            return f"{key} has shape {list(shape)} but the base's {module} is {n_in} -> {n_out}"
    return None


def check_checkpoint(path: Path) -> DualHeadConfig:
    """`dual_head.json` of a checkpoint whose adapter and head files exist and fit its base model; ValueError names
    the file and the fix otherwise."""
    path = Path(path)
    if not (path / HEAD_CONFIG).is_file():
        raise ValueError(f"{path} is not a train checkpoint (no {HEAD_CONFIG}): pass a RUN/epoch-N folder")
    check_weights(path)
    try:
        config = DualHeadConfig.model_validate_json((path / HEAD_CONFIG).read_text())
    except ValueError as err:
        raise ValueError(f"{path / HEAD_CONFIG} is not a valid head config: {err}") from err
    linears, hidden = base_linear_shapes(config.base_model)
    problem = adapter_mismatch(tensor_shapes(path / ADAPTER), linears)
    if problem:
        raise ValueError(
            f"{path / ADAPTER} was not trained on the base model {config.base_model!r} ({problem}):"
            f" pass a checkpoint trained on that model, or fix base_model in {path / HEAD_CONFIG}"
        )
    head_in = tensor_shapes(path / HEAD).get("net.1.weight", (None, None))[1]
    if config.hidden_size != hidden or head_in != hidden:
        raise ValueError(
            f"{path / HEAD} reads hidden states of size {head_in} ({HEAD_CONFIG}: {config.hidden_size}) but the base"
            f" model {config.base_model!r} has {hidden}: pass a checkpoint trained on that model"
        )
    return config
