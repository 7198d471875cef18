"""Any OpenAI-compatible server: one seeded chat completion per request, bounded concurrency, retries with backoff."""

import asyncio
import contextlib
import os
import queue
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from curate.engines.base import BatchStreams, ClosesOnExit, EngineError, GenerationRequest, GenerationResult
from curate.engines.tokens import CharEstimateCounter, CountsTokens, load_tokenizer
from schemas.redact import redact
from schemas.truncation import TokenCounter, TokenizerCounter

try:
    import httpx2
    import openai
except ModuleNotFoundError as err:
    raise EngineError(f"the openai engine needs the openai client ({err}): pip install 'clsgen[openai]'") from err

RETRYABLE = (openai.APITimeoutError, openai.APIConnectionError, openai.RateLimitError, openai.InternalServerError)
MAX_BACKOFF_S = 30.0


def chat_body(model: str, request: GenerationRequest) -> dict[str, Any]:
    """`chat.completions.create` arguments: a JSON schema goes in response_format, a regex in vLLM's extra body."""
    body: dict[str, Any] = {
        "model": model,
        "messages": request.messages,
        "seed": request.seed,
        "temperature": request.temperature,
        "top_p": request.top_p,
        "max_tokens": request.max_tokens,
    }
    constraint = request.constraint
    if constraint is not None and constraint.json_schema is not None:
        body["response_format"] = {
            "type": "json_schema",
            "json_schema": {"name": "output", "schema": constraint.json_schema},
        }
    if constraint is not None and constraint.regex is not None:
        body["extra_body"] = {"structured_outputs": {"regex": constraint.regex}}
    return body


def backoff_delay(attempt: int, base_s: float) -> float:
    """Seconds to wait after failed attempt `attempt` (1-based): doubling from `base_s`, at most MAX_BACKOFF_S."""
    return min(base_s * 2 ** (attempt - 1), MAX_BACKOFF_S)


class OpenAIEngine(BatchStreams, CountsTokens, ClosesOnExit):
    """Chat completions through `AsyncOpenAI`; the API key comes from OPENAI_API_KEY (default "EMPTY")."""

    supports_constraints = True

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        uri: str,
        concurrency: int = 32,
        tokenizer: str | None = None,
        max_attempts: int = 5,
        backoff_s: float = 1.0,
        timeout_s: float = 600.0,
        transport: httpx2.MockTransport | None = None,
    ) -> None:
        self.uri, self.model_id, self.base_url = uri, model, base_url.rstrip("/")
        self.concurrency, self.max_attempts, self.backoff_s, self.timeout_s = (
            concurrency,
            max_attempts,
            backoff_s,
            timeout_s,
        )
        self.transport = transport
        self.counter: TokenCounter = TokenizerCounter(load_tokenizer(tokenizer)) if tokenizer else CharEstimateCounter()
        self._check_server()

    def _api_key(self) -> str:
        return os.environ.get("OPENAI_API_KEY", "EMPTY")

    def _check_server(self) -> None:
        """GET {base}/models once, so a wrong URL or a stopped server fails before any work starts."""
        http_client = httpx2.Client(transport=self.transport) if self.transport else None
        with openai.OpenAI(
            base_url=self.base_url, api_key=self._api_key(), max_retries=0, timeout=10.0, http_client=http_client
        ) as client:
            try:
                client.models.list()
            except openai.APIConnectionError as err:
                raise EngineError(
                    f"cannot reach {self.base_url}/models ({redact(str(err))}): start the server or fix the URL"
                ) from err
            except openai.AuthenticationError as err:
                raise EngineError(f"{self.base_url} rejected the API key: set OPENAI_API_KEY") from err
            except openai.APIStatusError as err:
                raise EngineError(f"{self.base_url}/models answered HTTP {err.status_code}: check the URL") from err

    def generate(self, requests: Sequence[GenerationRequest]) -> Iterator[GenerationResult]:
        """Run the requests on an event loop in a thread and yield each result as it arrives."""
        results: queue.Queue[GenerationResult | None] = queue.Queue()
        running = threading.Event()
        state: dict[str, Any] = {}

        async def main() -> None:
            state["loop"], state["task"] = asyncio.get_running_loop(), asyncio.current_task()
            running.set()
            await self._generate_all(requests, results.put)

        def run() -> None:
            try:
                asyncio.run(main())
            except BaseException as err:
                state["error"] = err
            finally:
                running.set()
                results.put(None)

        thread = threading.Thread(target=run, name="openai-engine", daemon=True)
        thread.start()
        try:
            while (result := results.get()) is not None:
                yield result
        finally:
            running.wait()
            if thread.is_alive():
                with contextlib.suppress(RuntimeError):  # the loop closed in between: nothing left to cancel
                    state["loop"].call_soon_threadsafe(state["task"].cancel)
            thread.join()
        if "error" in state:
            raise state["error"]

    async def _generate_all(
        self, requests: Sequence[GenerationRequest], emit: Callable[[GenerationResult], None]
    ) -> None:
        semaphore = asyncio.Semaphore(self.concurrency)
        http_client = httpx2.AsyncClient(transport=self.transport) if self.transport else None
        async with openai.AsyncOpenAI(
            base_url=self.base_url,
            api_key=self._api_key(),
            max_retries=0,
            timeout=self.timeout_s,
            http_client=http_client,
        ) as client:

            async def one(request: GenerationRequest) -> None:
                async with semaphore:
                    emit(await self._complete(client, request))

            await asyncio.gather(*(one(request) for request in requests))

    async def _complete(self, client: openai.AsyncOpenAI, request: GenerationRequest) -> GenerationResult:
        """Retry transport errors, rate limits and 5xx with exponential backoff; a final failure is an error result."""
        started, error = time.perf_counter(), "no attempt made (max_attempts < 1)"
        for attempt in range(1, self.max_attempts + 1):
            try:
                response = await client.chat.completions.create(**chat_body(self.model_id, request))
                return self._result(request, response, time.perf_counter() - started)
            except RETRYABLE as err:
                error = f"{type(err).__name__} after {attempt} attempt(s): {redact(str(err))}"
                if attempt < self.max_attempts:
                    await asyncio.sleep(backoff_delay(attempt, self.backoff_s))
            except openai.APIError as err:
                error = f"{type(err).__name__}: {redact(str(err))}"
                break
        return GenerationResult(
            key=request.key, finish_reason="error", error=error, latency_s=time.perf_counter() - started
        )

    def _result(self, request: GenerationRequest, response: Any, latency: float) -> GenerationResult:
        """Map a chat completion; token counts from `usage`, estimated when the server sends none."""
        choice = response.choices[0]
        text = choice.message.content or ""
        usage = response.usage
        return GenerationResult(
            key=request.key,
            text=text,
            prompt_tokens=usage.prompt_tokens
            if usage
            else sum(self.counter.count(m["content"]) for m in request.messages),
            completion_tokens=usage.completion_tokens if usage else self.counter.count(text),
            finish_reason="length" if choice.finish_reason == "length" else "stop",
            latency_s=latency,
        )

    def close(self) -> None:
        """Nothing to release: each `generate` call opens and closes its own client."""
