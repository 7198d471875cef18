"""The openai engine: a real vLLM OpenAI-compatible server, plus transport error paths on httpx2.MockTransport."""

import asyncio
import json
import math
import re
from pathlib import Path

import httpx2
import pytest

from curate.engines import Constraint, EngineError, GenerationRequest, open_engine
from curate.engines.openai import MAX_BACKOFF_S, OpenAIEngine, backoff_delay
from tests.engines_fixtures import SERVED_NAME, free_port

SYSTEM = {"role": "system", "content": "You are a terse assistant."}


def ask(key: str, question: str, seed: int, **options) -> GenerationRequest:
    return GenerationRequest(key=key, messages=[SYSTEM, {"role": "user", "content": question}], seed=seed, **options)


# --- a real server -------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def served(vllm_server: str) -> str:
    return f"openai:{vllm_server}#{SERVED_NAME}"


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_seeded_requests_against_a_real_server(served: str) -> None:
    engine = open_engine(served, concurrency=1)
    question = "Write one sentence about the sea."
    requests = [ask(f"a{i}", question, seed=seed, max_tokens=16, temperature=1.0) for i, seed in enumerate((1, 1, 2))]
    results = {r.key: r for r in engine.generate(requests)}
    assert set(results) == {"a0", "a1", "a2"}
    assert results["a0"].text == results["a1"].text != results["a2"].text
    for result in results.values():
        assert (
            result.prompt_tokens > 10
            and 0 < result.completion_tokens <= 16
            and result.finish_reason in ("stop", "length")
        )


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_concurrent_requests_and_length_finish(served: str) -> None:
    engine = open_engine(served, concurrency=4)
    requests = [ask(f"k{i}", "Tell me a long story about a ship.", seed=i, max_tokens=3) for i in range(6)]
    results = list(engine.generate(requests))
    assert sorted(r.key for r in results) == [f"k{i}" for i in range(6)]
    assert all((r.finish_reason, r.completion_tokens) == ("length", 3) for r in results)


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_structured_outputs_on_a_real_server(served: str) -> None:
    schema = {"type": "object", "properties": {"label": {"enum": ["TRUE", "FALSE"]}}, "required": ["label"]}
    pattern = r"Classification: (TRUE|FALSE)"
    requests = [
        ask(
            "json", "Is the sky blue? Answer in JSON.", seed=0, max_tokens=32, constraint=Constraint(json_schema=schema)
        ),
        ask("regex", "Is water wet?", seed=0, max_tokens=16, constraint=Constraint(regex=pattern)),
    ]
    results = {r.key: r for r in open_engine(served).generate(requests)}
    assert json.loads(results["json"].text)["label"] in {"TRUE", "FALSE"}
    assert re.fullmatch(pattern, results["regex"].text), results["regex"].text


def test_an_unreachable_server_is_an_engine_error() -> None:
    port = free_port()
    with pytest.raises(EngineError, match=rf"cannot reach http://127.0.0.1:{port}/v1.*start the server or fix the URL"):
        open_engine(f"openai:http://127.0.0.1:{port}/v1#teacher")


@pytest.mark.parametrize(
    ("url", "found"),
    [
        ("https://user:sk-live-123@127.0.0.1:9/v1", "user:password@ before the host"),
        ("https://sk-live-123@127.0.0.1:9/v1", "user:password@ before the host"),
        ("http://127.0.0.1:9/v1?api_key=sk-live-123", "the query parameter 'api_key'"),
        ("http://127.0.0.1:9/v1?api-version=1&token=sk-live-123", "the query parameter 'token'"),
    ],
)
def test_credentials_in_the_uri_are_refused_without_echoing_them(url: str, found: str) -> None:
    with pytest.raises(EngineError, match="set OPENAI_API_KEY instead") as refused:
        open_engine(f"openai:{url}#teacher")
    assert found in str(refused.value) and "sk-live-123" not in str(refused.value)


def test_an_unparsable_uri_is_not_echoed_with_its_credentials() -> None:
    with pytest.raises(EngineError, match="cannot parse") as refused:
        open_engine("openai:https://user:sk-live-123@host/v1")
    assert "sk-live-123" not in str(refused.value)


# --- transport error paths (a scripted server: a real one cannot be made to fail on cue) -----------------------


class ScriptedServer:
    """Answers GET /models, and each chat completion with the next scripted status (or raised error), then 200."""

    def __init__(self, script: list[int | Exception] | None = None, delay_s: float = 0.0) -> None:
        self.script, self.delay_s = list(script or []), delay_s
        self.calls = self.in_flight = self.max_in_flight = 0
        self.authorization: set[str] = set()

    def __call__(self, request: httpx2.Request) -> httpx2.Response:
        self.authorization.add(request.headers["authorization"])
        if request.url.path.endswith("/models"):
            return httpx2.Response(
                200, json={"object": "list", "data": [{"id": "m", "object": "model", "created": 0, "owned_by": "t"}]}
            )
        return self.complete(request)

    async def complete(self, request: httpx2.Request) -> httpx2.Response:
        self.calls += 1
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        await asyncio.sleep(self.delay_s)
        self.in_flight -= 1
        outcome = self.script.pop(0) if self.script else 200
        if isinstance(outcome, Exception):
            raise outcome
        if outcome != 200:
            return httpx2.Response(outcome, json={"error": {"message": f"scripted {outcome}", "type": "server_error"}})
        body = json.loads(request.content)
        message = {"role": "assistant", "content": f"seed {body['seed']}\n\nClassification: TRUE"}
        return httpx2.Response(
            200,
            json={
                "id": "x", "object": "chat.completion", "created": 0, "model": body["model"],
                "choices": [{"index": 0, "finish_reason": "stop", "message": message}],
                "usage": {"prompt_tokens": 7, "completion_tokens": 5, "total_tokens": 12},
            },
        )  # fmt: skip


def scripted_engine(server: ScriptedServer, **options) -> OpenAIEngine:
    options = {"max_attempts": 3, "backoff_s": 0.001, **options}
    return OpenAIEngine(
        "http://scripted/v1", "m", uri="openai:http://scripted/v1#m", transport=httpx2.MockTransport(server), **options
    )


@pytest.mark.parametrize("failure", [503, 500, 429, httpx2.ConnectError("refused"), httpx2.ReadTimeout("slow")])
def test_transient_failures_are_retried(failure: int | Exception) -> None:
    server = ScriptedServer([failure, failure])
    result = next(scripted_engine(server).generate([ask("k", "q", seed=5)]))
    assert (result.finish_reason, result.text, result.completion_tokens) == (
        "stop",
        "seed 5\n\nClassification: TRUE",
        5,
    )
    assert server.calls == 3


def test_a_request_failing_every_attempt_is_an_error_result() -> None:
    server = ScriptedServer([503] * 10)
    results = list(scripted_engine(server, max_attempts=4).generate([ask("k", "q", seed=1)]))
    assert [(r.key, r.finish_reason) for r in results] == [("k", "error")]
    assert "InternalServerError after 4 attempt(s)" in results[0].error and server.calls == 4


def test_a_client_error_is_not_retried() -> None:
    server = ScriptedServer([400])
    result = next(scripted_engine(server).generate([ask("k", "q", seed=1)]))
    assert result.finish_reason == "error" and "BadRequestError" in result.error and server.calls == 1


def test_backoff_doubles_up_to_a_bound() -> None:
    assert [backoff_delay(attempt, 0.5) for attempt in (1, 2, 3, 4)] == [0.5, 1.0, 2.0, 4.0]
    assert backoff_delay(20, 0.5) == MAX_BACKOFF_S


def test_concurrency_is_bounded_and_results_keep_their_keys() -> None:
    server = ScriptedServer(delay_s=0.02)
    results = list(scripted_engine(server, concurrency=3).generate([ask(f"k{i}", "q", seed=i) for i in range(10)]))
    assert sorted(r.key for r in results) == sorted(f"k{i}" for i in range(10))
    assert all(r.text.startswith(f"seed {r.key[1:]}\n") for r in results)
    assert server.max_in_flight == 3


def test_closing_the_stream_early_stops_sending() -> None:
    server = ScriptedServer(delay_s=0.05)
    stream = scripted_engine(server, concurrency=2).generate([ask(f"k{i}", "q", seed=i) for i in range(20)])
    next(stream)
    stream.close()
    assert server.calls < 20


def test_the_api_key_is_sent_but_never_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-secret-123")
    server = ScriptedServer([500] * 10)
    result = next(scripted_engine(server, max_attempts=2).generate([ask("k", "q", seed=1)]))
    assert server.authorization == {"Bearer sk-secret-123"}
    assert "sk-secret" not in result.error


def test_token_counts_use_the_tokenizer_when_given(tiny_model_dir: Path) -> None:
    from transformers import AutoTokenizer

    text = "Claim: the drug improves survival. Abstract: the trial showed a significant improvement."
    exact = scripted_engine(ScriptedServer(), tokenizer=str(tiny_model_dir))
    estimate = scripted_engine(ScriptedServer())
    assert exact.count_tokens(text) == len(
        AutoTokenizer.from_pretrained(tiny_model_dir)(text, add_special_tokens=False)["input_ids"]
    )
    assert estimate.count_tokens(text) == math.ceil(len(text) / 4)
    assert estimate.truncate_to_tokens(text, 3) == text[:12]
