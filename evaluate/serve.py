"""`evaluate serve`: a checkpoint behind FastAPI. `POST /predict` takes the task's fields (one object or a list) and
answers probability, label, explanation and parse status; requests are batched dynamically (an asyncio queue
gathers up to `batch_size` rows or waits `max_wait_ms`, then one batched predict runs in a worker thread).
`/health`: the process is up; `/ready`: the model is loaded. Bodies over `max_body_bytes` get 413, malformed ones
422 naming the field. Logs carry counts and timings only, never document text.
"""

import asyncio
import json
import logging
import threading
import time
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, TypeAdapter, ValidationError, create_model

from evaluate.decision import Decision
from evaluate.io import Document, ModelOutput
from evaluate.predict_run import Predicted, predicted
from schemas.base import Strict
from schemas.task import TaskSpec

log = logging.getLogger("clsgen.serve")
Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]
PredictBatch = Callable[[list[Document]], list[ModelOutput]]


class ServeSettings(Strict):
    """How the service batches and what it accepts."""

    batch_size: int = Field(8, ge=1, description="rows per batched predict call")
    max_wait_ms: float = Field(5.0, ge=0.0, description="how long a batch waits for more rows once it has one")
    max_body_bytes: int = Field(1_000_000, ge=1, description="larger request bodies get 413")
    max_rows: int = Field(256, ge=1, description="rows one request may hold; more get 422")


def log_to_stderr() -> None:
    """Send the service's own INFO lines (batch sizes and timings, load status) to stderr beside uvicorn's."""
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(levelname)s:     %(message)s"))
    log.addHandler(handler)
    log.setLevel(logging.INFO)


def request_model(task: TaskSpec) -> type[BaseModel]:
    """The body of one row: each of the task's fields as non-empty text, an optional id, nothing else."""
    fields: dict[str, Any] = {name: (Text, ...) for name in task.input_fields}
    return create_model("PredictRequest", __config__=ConfigDict(extra="forbid"), id=(str | None, None), **fields)


def error_lines(err: ValidationError) -> list[str]:
    """One `where: what` line per validation error, without the submitted values (they may be document text)."""
    return [
        f"{'.'.join(str(part) for part in item['loc']) or 'body'}: {item['msg']}"
        for item in err.errors(include_input=False, include_url=False)
    ]


def parse_rows(body: bytes, row_model: type[BaseModel]) -> tuple[list[BaseModel], bool]:
    """(rows, whether the body was a list) of a JSON object or list of objects; ValueError / ValidationError say
    what is wrong."""
    try:
        data = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"the body is not valid JSON ({err})") from None
    if isinstance(data, dict):
        return [row_model.model_validate(data)], False
    if isinstance(data, list):
        return TypeAdapter(list[row_model]).validate_python(data), True  # type: ignore[valid-type]
    raise ValueError(f"the body is a JSON {type(data).__name__}, not an object or a list of objects")


@dataclass
class Pending:
    """One row waiting for the next batch, and the future its request awaits."""

    document: Document
    future: asyncio.Future


@dataclass
class Batcher:
    """Gathers rows from concurrent requests into batches for one worker thread."""

    predict: PredictBatch
    settings: ServeSettings
    queue: asyncio.Queue = field(default_factory=asyncio.Queue)
    executor: ThreadPoolExecutor = field(default_factory=lambda: ThreadPoolExecutor(max_workers=1))
    counter: int = 0

    async def submit(self, rows: list[dict[str, Any]]) -> list[ModelOutput]:
        """The outputs of `rows` (task fields), once the batches holding them have run."""
        loop = asyncio.get_running_loop()
        waiting = []
        for row in rows:
            self.counter += 1
            pending = Pending(Document(id=str(self.counter), fields=row), loop.create_future())
            waiting.append(pending.future)
            await self.queue.put(pending)
        return list(await asyncio.gather(*waiting))

    async def gather_batch(self) -> list[Pending]:
        """The next batch: the first row, then whatever arrives within `max_wait_ms`, up to `batch_size`."""
        batch = [await self.queue.get()]
        deadline = time.monotonic() + self.settings.max_wait_ms / 1000
        while len(batch) < self.settings.batch_size:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            try:
                batch.append(await asyncio.wait_for(self.queue.get(), remaining))
            except TimeoutError:
                break
        return batch

    async def run(self) -> None:
        """Forever: gather a batch, predict it in the worker thread, resolve its futures."""
        loop = asyncio.get_running_loop()
        while True:
            batch = await self.gather_batch()
            began = time.perf_counter()
            try:
                outputs = await loop.run_in_executor(self.executor, self.predict, [p.document for p in batch])
            except Exception as err:  # a failed batch fails its requests, not the server
                log.exception("batch of %d rows failed", len(batch))
                for pending in batch:
                    pending.future.set_exception(err)
                continue
            by_id = {output.id: output for output in outputs}
            for pending in batch:
                pending.future.set_result(by_id[pending.document.id])
            log.info("batch of %d rows in %.3f s", len(batch), time.perf_counter() - began)


@dataclass
class Service:
    """The served checkpoint: its task, decision threshold, and the predictor once loaded."""

    task: TaskSpec
    decision: Decision
    settings: ServeSettings
    load: Callable[[], PredictBatch]
    batcher: Batcher | None = None
    load_error: str | None = None
    ready: threading.Event = field(default_factory=threading.Event)

    def start_loading(self, loop: asyncio.AbstractEventLoop) -> None:
        """Load the model in a thread; once loaded, start the batcher on `loop`."""

        def load() -> None:
            try:
                predictor = self.load()
            except Exception as err:  # reported by /ready; the process stays up for /health
                self.load_error = f"{type(err).__name__}: {err}"
                log.error("model failed to load: %s", self.load_error)
                return
            self.batcher = Batcher(predictor, self.settings)
            loop.call_soon_threadsafe(lambda: loop.create_task(self.batcher.run()))
            self.ready.set()
            log.info("model loaded")

        threading.Thread(target=load, name="clsgen-load", daemon=True).start()


async def read_body(request: Request, limit: int) -> bytes | None:
    """The request body, or None once it passes `limit` bytes (by Content-Length or while streaming)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        return None
    body = bytearray()
    async for chunk in request.stream():
        body.extend(chunk)
        if len(body) > limit:
            return None
    return bytes(body)


def problem(status: int, message: str, details: list[str] | None = None) -> JSONResponse:
    """A JSON error answer: `{"error": message, "details": [...]}`."""
    return JSONResponse({"error": message, "details": details or []}, status_code=status)


def create_app(service: Service) -> FastAPI:
    """The FastAPI application of a service."""
    row_model = request_model(service.task)
    wanted = f"a JSON object (or a list of them) with the non-empty text fields {', '.join(service.task.input_fields)}"

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        service.start_loading(asyncio.get_running_loop())
        yield

    app = FastAPI(title="clsgen", lifespan=lifespan)

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "up"}

    @app.get("/ready")
    async def ready() -> JSONResponse:
        if service.ready.is_set():
            return JSONResponse({"status": "ready"})
        if service.load_error:
            return problem(500, f"the model failed to load: {service.load_error}")
        return problem(503, "the model is loading")

    @app.post("/predict")
    async def predict(request: Request) -> JSONResponse:
        if not service.ready.is_set() or service.batcher is None:
            return problem(503, "the model is not loaded yet: poll /ready")
        body = await read_body(request, service.settings.max_body_bytes)
        if body is None:
            return problem(
                413, f"request body over {service.settings.max_body_bytes} bytes: send fewer or shorter rows"
            )
        try:
            rows, is_list = parse_rows(body, row_model)
        except ValidationError as err:
            return problem(422, f"the body must be {wanted}", error_lines(err))
        except ValueError as err:
            return problem(422, f"{err}: send {wanted}")
        if not rows or len(rows) > service.settings.max_rows:
            return problem(422, f"a request holds 1 to {service.settings.max_rows} rows, not {len(rows)}")
        outputs = await service.batcher.submit([row.model_dump(include=set(service.task.input_fields)) for row in rows])
        answers = [
            served(predicted(output, service.decision, service.task), row.id, number)
            for number, (row, output) in enumerate(zip(rows, outputs, strict=True))
        ]
        return JSONResponse(answers if is_list else answers[0])

    return app


def served(row: Predicted, request_id: str | None, number: int) -> dict[str, Any]:
    """The answer for one row: its id (the request's, else its position) and the prediction."""
    return json.loads(row.model_copy(update={"id": request_id or str(number)}).model_dump_json())
