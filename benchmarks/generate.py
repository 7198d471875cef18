"""Generated tokens and wall time of K-trial strategies on the same examples and seeds; prints JSON.

rounds (Algorithm 1, batched by round) vs parallel (all K at once) vs pipelined (an example's next trial as soon as
its last one failed, no round barrier on engines that stream), on one engine (any URI: hf, vllm, openai, or another
scheme open_engine knows); optionally a naive loop too (one example at a time, trials one after another, batch 1).
Every prompt is prefilled once before the timed runs, so prefix caching favours no strategy.
Usage: python benchmarks/generate.py [--examples 16] [--k 5] [--max-tokens 64] [--engine URI]
       [--structured-output none|regex|json] [--concurrency 32] [--dtype float32] [--naive] [--order A B C]
e.g. the issue-12 figures: --engine vllm:default --dtype float32 --examples 32 --structured-output regex
"""

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

from rich.console import Console

from curate.engines import Engine, model_location, open_engine
from curate.generation.acceptance import decide, judge, trial_from_result
from curate.generation.run import Plan, constraint_for, generation_asking, request_for, run_trials
from schemas import GenerateConfig, Trial, load_task
from schemas.files import Journal
from schemas.inputs import load_examples

STRATEGIES = ("rounds", "parallel", "pipelined")
CLINIFACT = Path(__file__).resolve().parents[2] / "shared" / "data" / "clinifact" / "validation_set.csv"


def measure_strategy(plan: Plan, strategy: str, documents: dict) -> dict:
    """Run one strategy from an empty journal; tokens, seconds and the accepted set."""
    plan.config = plan.config.model_copy(update={"strategy": strategy})
    with tempfile.TemporaryDirectory() as tmp:
        journal, slots = Journal(Path(tmp) / "trials.jsonl", Trial), {}
        start = time.perf_counter()
        asking = generation_asking(plan, documents, constraint_for(plan.config, plan.task, plan.engine))
        run_trials(plan, asking, plan.examples, slots, journal, Console(quiet=True))
        seconds = time.perf_counter() - start
        journal.close()
    return summary(plan, slots, seconds)


def open_teacher(uri: str, concurrency: int, dtype: str | None) -> Engine:
    """The engine of `uri`; a vllm: one in `dtype` if given (fp32 samples do not depend on the batch on CPU)."""
    if dtype is None or not uri.startswith("vllm:"):
        return open_engine(uri, batch_size=16, concurrency=concurrency)
    from curate.engines.vllm import VLLMEngine

    path, model_id = model_location(uri.partition(":")[2])
    return VLLMEngine(path, uri=uri, model_id=model_id, dtype=dtype)


def warm_up(plan: Plan, documents: dict) -> None:
    """One token for every example's prompt, so each timed strategy finds the same prompts cached."""
    asking = generation_asking(plan, documents, constraint_for(plan.config, plan.task, plan.engine))
    requests = [request_for(plan, asking, example, 1).model_copy(update={"max_tokens": 1}) for example in plan.examples]
    for _ in plan.engine.generate(requests):
        pass


def measure_naive(plan: Plan, documents: dict) -> dict:
    """Algorithm 1 as written: for each example, trial after trial, one request at a time."""
    slots, engine, start = {}, plan.engine, time.perf_counter()
    asking = generation_asking(plan, documents, constraint_for(plan.config, plan.task, engine))
    for example in plan.examples:
        for number in range(1, plan.config.k + 1):
            request = request_for(plan, asking, example, number)
            result = next(iter(engine.generate([request])))
            raw = trial_from_result(result, example, number, request.seed, engine.uri, engine.model_id)
            slots[(example.id, number)] = trial = judge(raw, plan.task, plan.config.min_explanation_chars)
            if trial.status == "accepted":
                break
    return summary(plan, slots, time.perf_counter() - start)


def summary(plan: Plan, slots: dict, seconds: float) -> dict:
    """Tokens, trials, wall time and the accepted (example, trial) pairs of a finished strategy."""
    tokens = sum(t.completion_tokens for t in slots.values())
    decisions = {ex.id: decide(ex.id, slots, plan.config.k) for ex in plan.examples}
    return {
        "trials": len(slots),
        "generated_tokens": tokens,
        "seconds": round(seconds, 2),
        "tokens_per_s": round(tokens / seconds, 1),
        "accepted": sorted((i, d.trial) for i, d in decisions.items() if d.state == "accepted"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--examples", type=int, default=16)
    parser.add_argument("--k", type=int, default=5)
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--engine", default="hf:default", help="teacher engine URI, e.g. vllm:default")
    parser.add_argument("--structured-output", default="none", choices=["none", "regex", "json"])
    parser.add_argument("--concurrency", type=int, default=32, help="requests in flight (pipelined, openai)")
    parser.add_argument("--dtype", default=None, help="vllm: engines only, e.g. float32 (default: the model's)")
    parser.add_argument("--naive", action="store_true", help="also time the one-request-at-a-time loop")
    parser.add_argument(
        "--order", nargs=3, choices=STRATEGIES, default=list(STRATEGIES), help="the order the strategies run in"
    )
    opts = parser.parse_args()
    if sorted(opts.order) != sorted(STRATEGIES):
        parser.error(f"--order names each of {', '.join(STRATEGIES)} once")
    task = load_task("clinifact")
    examples = load_examples(CLINIFACT, task, task.input_mapping, "validation")[: opts.examples]
    config = GenerateConfig(
        k=opts.k,
        sampling={"max_tokens": opts.max_tokens, "temperature": 0.7},
        structured_output=opts.structured_output,
        concurrency=opts.concurrency,
    )
    engine = open_teacher(opts.engine, opts.concurrency, opts.dtype)
    plan = Plan(config, task, {}, examples, engine)
    documents = {ex.id: (task.render_document(ex.fields), False) for ex in examples}
    warm_up(plan, documents)
    results = {strategy: measure_strategy(plan, strategy, documents) for strategy in opts.order}
    if opts.naive:
        results["naive"] = measure_naive(plan, documents)
    engine.close()
    rounds, parallel, pipelined = results["rounds"], results["parallel"], results["pipelined"]
    ratios = {
        "parallel_tokens_over_rounds": round(parallel["generated_tokens"] / rounds["generated_tokens"], 2),
        "pipelined_tokens_over_rounds": round(pipelined["generated_tokens"] / rounds["generated_tokens"], 2),
        "rounds_seconds_over_parallel": round(rounds["seconds"] / parallel["seconds"], 2),
        "pipelined_seconds_over_parallel": round(pipelined["seconds"] / parallel["seconds"], 2),
        **{f"same_accepted_rounds_{name}": rounds["accepted"] == results[name]["accepted"] for name in results},
    }
    if opts.naive:
        ratios["naive_seconds_over_rounds"] = round(results["naive"]["seconds"] / rounds["seconds"], 2)
    for result in results.values():
        result["accepted"] = len(result["accepted"])
    json.dump(
        {
            "engine": opts.engine,
            "streams": engine.streams,
            "dtype": opts.dtype,
            "structured_output": opts.structured_output,
            "examples": len(examples),
            "k": opts.k,
            "max_tokens": opts.max_tokens,
            "concurrency": opts.concurrency,
            "order": opts.order,
            **results,
            "ratios": ratios,
        },
        sys.stdout,
        indent=2,
    )
    print()


if __name__ == "__main__":
    main()
