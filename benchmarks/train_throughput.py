"""Training throughput: a naive transformers + peft step vs this trainer's step, in one process; prints JSON.

GPU (H200): `python benchmarks/train_throughput.py` (random-init Llama-3.1-8B shape, bf16).
CPU smoke: `python benchmarks/train_throughput.py --tiny` (a 2-layer model, short sequences; ratios mean nothing).
Naive: peft forward with `labels=` and `output_hidden_states=True`, sdpa, gradient checkpointing, batch 1.
Trainer: `train.loop.train_step` (decoder once, lm_head on target tokens only, packed micro-batches).
"""

import argparse
import json
import random
import time

import torch
import torch.nn.functional as F
from accelerate import Accelerator
from transformers import LlamaConfig, LlamaForCausalLM

from train.config import TrainConfig
from train.data import Encoded
from train.loop import train_step
from train.model import build_model, enable_checkpointing

LLAMA_8B = {
    "vocab_size": 128_256,
    "hidden_size": 4096,
    "intermediate_size": 14_336,
    "num_hidden_layers": 32,
    "num_attention_heads": 32,
    "num_key_value_heads": 8,
    "max_position_embeddings": 8192,
    "rope_parameters": {"rope_type": "default", "rope_theta": 500_000.0},
}
TINY = {
    "vocab_size": 512,
    "hidden_size": 64,
    "intermediate_size": 128,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "max_position_embeddings": 2048,
}
# (prompt lengths, target length, examples per optimizer step) of each data shape
SHAPES = {"lcd": ([7040], 384, 2), "clinifact": (list(range(400, 851)), 128, 16)}
TINY_SHAPES = {"lcd": ([448], 32, 2), "clinifact": (list(range(40, 86)), 16, 8)}
TARGETS = {"lcd": {"speedup": 1.5, "peak_gib": 60.0}, "clinifact": {"speedup": 2.0, "peak_gib": None}}


def random_examples(vocab: int, prompts: list[int], target: int, n: int, seed: int) -> list[Encoded]:
    """`n` examples of random tokens with prompt lengths drawn from `prompts`."""
    rng = random.Random(seed)
    examples = []
    for i in range(n):
        length = rng.choice(prompts) + target
        examples.append(Encoded([rng.randrange(vocab) for _ in range(length)], length - target, i % 2, False))
    return examples


def fresh_model(shape: dict, device: torch.device, cfg: TrainConfig):
    """A random-init Llama of `shape` with LoRA and the head (bf16 base on GPU, fp32 on CPU), initialised on `device`
    (8B weights initialised on the CPU took minutes per model)."""
    torch.manual_seed(0)
    return build_model(random_llama(shape, device), cfg, positive_label=1)


def random_llama(shape: dict, device: torch.device) -> LlamaForCausalLM:
    """A random-init Llama of `shape`, built on `device`: bf16 on GPU, fp32 on CPU."""
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    with device:
        return LlamaForCausalLM._from_config(LlamaConfig(**shape), dtype=dtype, attn_implementation="sdpa")


def naive_step(model, examples: list[Encoded], device: torch.device) -> None:
    """Batch 1 per example: full `labels=` forward with all hidden states, head on the last prompt token."""
    for ex in examples:
        ids = torch.tensor([ex.input_ids], device=device)
        labels = torch.tensor([[-100] * ex.prompt_len + ex.input_ids[ex.prompt_len :]], device=device)
        out = model.lm(input_ids=ids, labels=labels, output_hidden_states=True, use_cache=False)
        cls = F.cross_entropy(
            model.head(out.hidden_states[-1][:, ex.prompt_len - 1]), torch.tensor([ex.label], device=device)
        )
        ((out.loss + cls) / len(examples)).backward()


def measure(step, optimizer, device: torch.device, tokens: int, warmup: int, steps: int) -> dict:
    """Tokens/s and peak memory of `steps` optimizer steps after `warmup` untimed ones."""
    for _ in range(warmup):
        step()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    began = time.perf_counter()
    for _ in range(steps):
        step()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    if device.type == "cuda":
        torch.cuda.synchronize()
    seconds = (time.perf_counter() - began) / steps
    peak = torch.cuda.max_memory_allocated() / 2**30 if device.type == "cuda" else None
    return {
        "step_s": round(seconds, 4),
        "tokens_per_s": round(tokens / seconds, 1),
        "peak_gib": None if peak is None else round(peak, 2),
    }


def naive(shape: dict, cfg: TrainConfig, examples: list[Encoded], device: torch.device, args) -> dict:
    """The baseline, on peft as shipped (fp32 LoRA input casts, no autocast) with full checkpointing."""
    model = fresh_model(shape, device, cfg.model_copy(update={"gradient_checkpointing": False})).train()
    model.autocast_bf16 = False
    for module in model.modules():
        if hasattr(module, "cast_input_dtype_enabled"):
            module.cast_input_dtype_enabled = True
    enable_checkpointing(model.lm.get_base_model(), 1)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-5)
    tokens = sum(len(ex.input_ids) for ex in examples)
    return measure(lambda: naive_step(model, examples, device), optimizer, device, tokens, args.warmup, args.steps)


def trainer(shape: dict, cfg: TrainConfig, examples: list[Encoded], device: torch.device, args) -> dict:
    """This trainer's step (`train.loop.train_step`) on all examples of one optimizer step."""
    accelerator = Accelerator(cpu=device.type == "cpu")
    model = fresh_model(shape, device, cfg).train()
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-5)
    model, optimizer = accelerator.prepare(model, optimizer)
    step, tokens = list(range(len(examples))), sum(len(ex.input_ids) for ex in examples)
    return measure(
        lambda: train_step(accelerator, model, cfg, examples, step), optimizer, device, tokens, args.warmup, args.steps
    )


def run_shape(name: str, shape: dict, data: tuple, cfg: TrainConfig, args, device: torch.device) -> dict:
    """Naive vs trainer on one data shape, each on a freshly built model; `met` says if the targets hold."""
    prompts, target, per_step = data
    examples = random_examples(shape["vocab_size"], prompts, target, per_step, seed=1)
    results = {"shape": name, "examples_per_step": per_step, "tokens_per_step": sum(len(e.input_ids) for e in examples)}
    for label, run in (("naive", naive), ("trainer", trainer)):
        results[label] = run(shape, cfg, examples, device, args)
        if device.type == "cuda":
            torch.cuda.empty_cache()
    speedup = results["trainer"]["tokens_per_s"] / results["naive"]["tokens_per_s"]
    goal, peak = TARGETS[name], results["trainer"]["peak_gib"]
    fits = goal["peak_gib"] is None or (peak is not None and peak <= goal["peak_gib"])
    results.update(
        speedup=round(speedup, 3), targets=goal, met=None if args.tiny else speedup >= goal["speedup"] and fits
    )
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiny", action="store_true", help="CPU smoke run on a 2-layer model with short sequences")
    parser.add_argument("--shapes", default="lcd,clinifact", help="comma-separated: lcd, clinifact")
    parser.add_argument("--steps", type=int, default=3, help="timed optimizer steps per measurement")
    parser.add_argument("--warmup", type=int, default=1, help="untimed optimizer steps first")
    parser.add_argument("--pack-tokens", type=int, default=TrainConfig().pack_tokens)
    parser.add_argument("--checkpointing", action="store_true", help="trainer with gradient checkpointing")
    parser.add_argument("--every-n-layers", type=int, default=1, help="with --checkpointing: every n-th layer")
    args = parser.parse_args()

    device = torch.device("cpu" if args.tiny or not torch.cuda.is_available() else "cuda")
    shape, shapes = (TINY, TINY_SHAPES) if args.tiny else (LLAMA_8B, SHAPES)
    cfg = TrainConfig(
        pack_tokens=args.pack_tokens,
        gradient_checkpointing=args.checkpointing,
        checkpoint_every_n_layers=args.every_n_layers,
    )
    report = {
        "device": torch.cuda.get_device_name() if device.type == "cuda" else "cpu",
        "tiny": args.tiny,
        "torch": torch.__version__,
        "config": cfg.model_dump(include={"pack_tokens", "gradient_checkpointing", "checkpoint_every_n_layers"}),
        "results": [run_shape(name, shape, shapes[name], cfg, args, device) for name in args.shapes.split(",")],
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
