"""One vLLM replica inside a Ray actor: the project's in-process vLLM engine, fed from calls of the driver."""

import asyncio
import os
import queue
import threading
from collections.abc import AsyncIterator, Sequence
from typing import Any

from curate.engines.base import GenerationRequest, GenerationResult

Delivery = tuple[GenerationRequest, asyncio.AbstractEventLoop, asyncio.Queue]


def replica_environment(cpus: float, on_gpu: bool) -> dict[str, str]:
    """Environment of a replica's worker: vLLM's engine core in the actor's process (so a killed replica takes its
    engine with it), a 1 GiB KV cache and as many OpenMP threads as reserved CPUs, unbound (replicas share nodes)."""
    env = {"VLLM_ENABLE_V1_MULTIPROCESSING": "0", "VLLM_LOGGING_LEVEL": "WARNING"}
    if not on_gpu:
        threads = str(max(int(cpus), 1))
        env |= {"VLLM_CPU_KVCACHE_SPACE": "1", "VLLM_CPU_OMP_THREADS_BIND": "nobind", "OMP_NUM_THREADS": threads}
    if "HF_HUB_OFFLINE" in os.environ:
        env["HF_HUB_OFFLINE"] = os.environ["HF_HUB_OFFLINE"]
    return env


class Replica:
    """A Ray async actor holding one VLLMEngine; a thread owns the engine, steps it and takes new requests between
    results, so requests of later calls join the running batch."""

    def __init__(self, model: str, tokenizer: str | None, dtype: str, tensor_parallel_size: int) -> None:
        self.inbox: queue.SimpleQueue[list[Delivery]] = queue.SimpleQueue()
        self.error: str | None = None
        started = threading.Event()
        arguments = (model, tokenizer, dtype, tensor_parallel_size, started)
        self.thread = threading.Thread(target=self._serve, args=arguments, name="vllm-replica", daemon=True)
        self.thread.start()
        started.wait()

    async def ready(self) -> tuple[str, int, str | None]:
        """(node address, process id, the start error or None)."""
        import ray

        return ray.util.get_node_ip_address(), os.getpid(), self.error

    async def generate(self, requests: Sequence[GenerationRequest]) -> AsyncIterator[GenerationResult]:
        """Yield each result of `requests` as the engine finishes it (a Ray streaming generator)."""
        loop, results = asyncio.get_running_loop(), asyncio.Queue()
        self.inbox.put([(request, loop, results) for request in requests])
        for _ in requests:
            yield await results.get()

    def _serve(
        self, model: str, tokenizer: str | None, dtype: str, tensor_parallel_size: int, started: threading.Event
    ) -> None:
        """Start the engine on this thread (vLLM's OpenMP setup binds the calling thread), then serve forever."""
        from curate.engines.vllm import VLLMEngine

        try:
            engine = VLLMEngine(
                model,
                uri=f"vllm:{model}",
                model_id=model,
                tokenizer=tokenizer,
                dtype=dtype,
                tensor_parallel_size=tensor_parallel_size,
            )
        except Exception as err:  # reported by `ready` to the driver, which names the replica and the fix
            self.error = f"{type(err).__name__}: {err}"
            return
        finally:
            started.set()
        while True:
            waiting: dict[str, Delivery] = {}
            try:
                self._drain(engine, waiting)
            except Exception as err:  # a failed step fails its requests, not the replica
                for request, loop, results in waiting.values():
                    failed = GenerationResult(key=request.key, finish_reason="error", error=f"replica: {err}")
                    loop.call_soon_threadsafe(results.put_nowait, failed)

    def _drain(self, engine: Any, waiting: dict[str, Delivery]) -> None:
        """Wait for a call, run it to completion and submit new arrivals each time a result comes back."""
        stream = engine.stream()
        self._admit(stream, waiting, block=True)
        for result in stream:
            request, loop, results = waiting.pop(result.key)
            loop.call_soon_threadsafe(results.put_nowait, result)
            self._admit(stream, waiting, block=False)

    def _admit(self, stream: Any, waiting: dict[str, Delivery], block: bool) -> None:
        """Submit the calls in the inbox (waiting for one when `block`)."""
        deliveries: list[Delivery] = []
        try:
            deliveries.extend(self.inbox.get(block=block))
            while True:
                deliveries.extend(self.inbox.get_nowait())
        except queue.Empty:
            pass
        if deliveries:
            waiting.update({delivery[0].key: delivery for delivery in deliveries})
            stream.submit([delivery[0] for delivery in deliveries])
