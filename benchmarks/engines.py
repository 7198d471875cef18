"""vLLM (in-process, bf16, eager) vs the hf engine on the same SmolLM2 CliniFact teacher prompts; prints JSON.

Run: OMP_NUM_THREADS=$(nproc) python benchmarks/engines.py [--rows 16] [--max-tokens 64]
The hf engine runs first: an in-process vLLM engine binds OpenMP threads for the rest of the process.
"""

import argparse
import csv
import json
import os
import sys
import time
from collections.abc import Callable
from functools import partial
from itertools import islice
from pathlib import Path

os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch

from curate.engines import Engine, GenerationRequest
from curate.engines.hf import HFEngine
from curate.engines.vllm import VLLMEngine
from schemas.default_model import DEFAULT_MODEL_ID, smollm2_path
from schemas.task import load_task

WARM_UP = GenerationRequest(key="warm-up", messages=[{"role": "user", "content": "Hi"}], seed=0, max_tokens=2)
CLINIFACT = Path(__file__).resolve().parents[2] / "shared" / "data" / "clinifact" / "validation_set.csv"


def teacher_requests(rows: int, max_tokens: int) -> list[GenerationRequest]:
    """The first `rows` CliniFact validation pairs as teacher prompts, seeds 0..rows-1, temperature 0.7."""
    csv.field_size_limit(sys.maxsize)
    task = load_task("clinifact")
    with CLINIFACT.open(newline="") as handle:
        examples = list(islice(csv.DictReader(handle), rows))
    return [
        GenerationRequest(
            key=row["index"], messages=task.teacher_messages(task.render_document(row)), seed=i, max_tokens=max_tokens
        )
        for i, row in enumerate(examples)
    ]


def measure(name: str, build: Callable[[], Engine], requests: list[GenerationRequest]) -> dict:
    """Load time, a warm-up request (not a benchmark prompt: no prefix-cache head start), then the timed batch."""
    started = time.perf_counter()
    engine = build()
    load_s = time.perf_counter() - started
    list(engine.generate([WARM_UP]))
    started = time.perf_counter()
    results = list(engine.generate(requests))
    wall_s = time.perf_counter() - started
    engine.close()
    tokens = sum(r.completion_tokens for r in results)
    return {
        "engine": name,
        "load_s": round(load_s, 2),
        "requests": len(results),
        "prompt_tokens": sum(r.prompt_tokens for r in results),
        "generated_tokens": tokens,
        "wall_s": round(wall_s, 2),
        "tokens_per_s": round(tokens / wall_s, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=16)
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--hf-bf16", action="store_true", help="also time the hf engine in bf16 (CPU default: fp32)")
    args = parser.parse_args()
    requests = teacher_requests(args.rows, args.max_tokens)
    path = str(smollm2_path())
    hf = partial(HFEngine, path, uri="hf:default", model_id=DEFAULT_MODEL_ID, batch_size=args.rows)
    runs = [measure("hf", hf, requests)]
    if args.hf_bf16:
        runs.append(measure("hf-bf16", partial(hf, dtype=torch.bfloat16), requests))
    vllm = partial(VLLMEngine, path, uri="vllm:default", model_id=DEFAULT_MODEL_ID, dtype="bfloat16")
    runs.append(measure("vllm", vllm, requests))
    by_name = {run["engine"]: run for run in runs}
    report = {
        "model": DEFAULT_MODEL_ID,
        "device": "cuda" if torch.cuda.is_available() else f"cpu x{len(os.sched_getaffinity(0))}",
        "load_average_1m_at_end": round(os.getloadavg()[0], 2),
        "max_tokens": args.max_tokens,
        "runs": runs,
        "vllm_over_hf_tokens_per_s": round(by_name["vllm"]["tokens_per_s"] / by_name["hf"]["tokens_per_s"], 2),
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
