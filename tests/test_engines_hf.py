"""The hf engine: batching, per-request seeded sampling, finish reasons, token counts, URI errors."""

import csv
import re
import sys
from itertools import islice
from pathlib import Path

import pytest
from transformers import AutoTokenizer

from curate.engines import EngineError, GenerationRequest, open_engine
from curate.engines.hf import HFEngine
from schemas.task import load_task

PROMPTS = [
    "Claim: the drug improves survival.",
    "Hi",
    "Reasoning: the abstract reports positive results, and the trial showed a significant improvement in survival.",
    "The patient was discharged home in stable condition.",
    "Explain your reasoning, then answer TRUE or FALSE.",
]


def request(key: str, text: str, seed: int, **options) -> GenerationRequest:
    return GenerationRequest(key=key, messages=[{"role": "user", "content": text}], seed=seed, **options)


@pytest.fixture(scope="module")
def tiny_engine(tiny_model_dir: Path) -> HFEngine:
    engine = open_engine(f"hf:{tiny_model_dir}", batch_size=3)
    yield engine
    engine.close()


def test_every_request_gets_one_result_with_its_key(tiny_engine: HFEngine) -> None:
    requests = [request(f"ex{i}/1", text, seed=i, max_tokens=6) for i, text in enumerate(PROMPTS)]
    results = list(tiny_engine.generate(requests))
    assert sorted(r.key for r in results) == sorted(r.key for r in requests)
    assert all(r.finish_reason in ("stop", "length") and r.latency_s > 0 for r in results)


@pytest.mark.parametrize("temperature", [0.8, 0.0])
def test_a_request_gives_the_same_text_alone_and_in_a_batch(tiny_engine: HFEngine, temperature: float) -> None:
    target = request("target", PROMPTS[0], seed=7, max_tokens=10, temperature=temperature, top_p=0.9)
    others = [request(f"other{i}", text, seed=100 + i, max_tokens=14) for i, text in enumerate(PROMPTS[1:])]
    alone = next(tiny_engine.generate([target]))
    batched = {r.key: r for r in tiny_engine.generate([*others[:2], target, *others[2:]])}
    assert batched["target"].text == alone.text
    assert batched["target"].completion_tokens == alone.completion_tokens


def test_different_seeds_sample_different_texts(tiny_engine: HFEngine) -> None:
    results = list(
        tiny_engine.generate([request(f"s{seed}", PROMPTS[0], seed=seed, max_tokens=12) for seed in range(4)])
    )
    assert len({r.text for r in results}) == 4


def test_prompt_tokens_count_the_chat_template_ids_once(tiny_engine: HFEngine, tiny_model_dir: Path) -> None:
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    messages = [{"role": "user", "content": PROMPTS[2]}]
    prompt_ids = tokenizer.apply_chat_template(messages, add_generation_prompt=True)["input_ids"]
    result = next(tiny_engine.generate([GenerationRequest(key="k", messages=messages, seed=0, max_tokens=3)]))
    assert prompt_ids.count(tokenizer.bos_token_id) == 1
    assert result.prompt_tokens == len(prompt_ids)


@pytest.mark.parametrize("temperature", [0.0, 1.0])
def test_finish_reason_and_counts_agree_with_a_longer_run(tiny_engine: HFEngine, temperature: float) -> None:
    """Cut at 5 tokens: 'length' with 5 tokens when the 40-token run went past 5, else the same 'stop' result."""
    requests = [
        request(f"{i}/{limit}", text, seed=i, max_tokens=limit, temperature=temperature)
        for i, text in enumerate(PROMPTS)
        for limit in (5, 40)
    ]
    results = {r.key: r for r in tiny_engine.generate(requests)}
    for i in range(len(PROMPTS)):
        short, long = results[f"{i}/5"], results[f"{i}/40"]
        assert long.finish_reason == ("length" if long.completion_tokens == 40 else "stop")
        if long.completion_tokens > 5:
            assert (short.finish_reason, short.completion_tokens) == ("length", 5)
        else:
            assert (short.finish_reason, short.completion_tokens, short.text) == (
                "stop",
                long.completion_tokens,
                long.text,
            )


def test_truncate_keeps_the_start_within_the_budget(tiny_engine: HFEngine) -> None:
    text = PROMPTS[2]
    total = tiny_engine.count_tokens(text)
    cut = tiny_engine.truncate_to_tokens(text, 5)
    assert text.startswith(cut) and len(cut) < len(text)
    assert tiny_engine.count_tokens(cut) == 5
    assert tiny_engine.truncate_to_tokens(text, total) == text
    assert tiny_engine.truncate_to_tokens(text, 0) == ""


def test_constraints_are_refused(tiny_engine: HFEngine) -> None:
    from curate.engines import Constraint

    assert tiny_engine.supports_constraints is False
    with pytest.raises(EngineError, match="constraint"):
        list(tiny_engine.generate([request("c", "x", seed=0, constraint=Constraint(regex="TRUE|FALSE"))]))


@pytest.mark.parametrize(
    "uri", ["hf:", "nope:model", "hf", "openai:http://127.0.0.1:8000/v1", "openai:127.0.0.1:8000#m", "vllm:"]
)
def test_malformed_uris_name_the_uri_and_the_accepted_forms(uri: str) -> None:
    with pytest.raises(EngineError) as err:
        open_engine(uri)
    assert repr(uri) in str(err.value) and "openai:BASE_URL#MODEL" in str(err.value)


def test_a_missing_model_path_names_the_path(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-model"
    with pytest.raises(EngineError, match=re.escape(str(missing))):
        open_engine(f"hf:{missing}")


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_smollm2_answers_clinifact_teacher_prompts(smollm2_dir: Path, clinifact_dir: Path) -> None:
    csv.field_size_limit(sys.maxsize)
    with (clinifact_dir / "validation_set.csv").open(newline="") as handle:
        rows = list(islice(csv.DictReader(handle), 2))
    task = load_task("clinifact")
    engine = open_engine("hf:default", batch_size=2)
    assert "SmolLM2" in engine.model_id
    requests = [
        GenerationRequest(
            key=row["index"], messages=task.teacher_messages(task.render_document(row)), seed=1, max_tokens=24
        )
        for row in rows
    ]
    results = {r.key: r for r in engine.generate(requests)}
    assert set(results) == {row["index"] for row in rows}
    for result in results.values():
        assert result.prompt_tokens > engine.count_tokens(rows[0]["claim"]) and 0 < result.completion_tokens <= 24
        assert len([word for word in result.text.split() if word.isalpha()]) >= 3, result.text
    engine.close()


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_smollm2_stops_at_eos_and_counts_it(smollm2_dir: Path) -> None:
    engine = open_engine(f"hf:{smollm2_dir}")
    messages = [{"role": "system", "content": "You are a terse assistant."}, {"role": "user", "content": "Say hello."}]
    result = next(
        engine.generate([GenerationRequest(key="hi", messages=messages, seed=0, max_tokens=48, temperature=0)])
    )
    assert result.finish_reason == "stop" and result.text
    assert result.completion_tokens == engine.count_tokens(result.text) + 1
    engine.close()
