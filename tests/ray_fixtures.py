"""A private local Ray cluster for the ray engine tests: own port and temp dir, stopped by PID (never `ray stop`)."""

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.engines_fixtures import free_port, log_tail


@pytest.fixture(scope="session")
def ray_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`ray start --head --num-cpus=4 --block` as a subprocess; yields its address (127.0.0.1:PORT).

    4 logical CPUs on this 2-core machine: two replicas of 2 OpenMP threads each, the in-process engine's count
    (fp32 sums, and so samples, depend on the thread count)."""
    port = free_port()
    temp_dir = Path(tempfile.mkdtemp(prefix="ray-t-", dir="/tmp"))  # short: Ray's socket paths live under it
    log_path = tmp_path_factory.mktemp("ray-cluster") / "head.log"
    command = [
        str(Path(sys.executable).with_name("ray")), "start", "--head", "--num-cpus=4", f"--port={port}",
        f"--temp-dir={temp_dir}", "--include-dashboard=false", "--disable-usage-stats", "--block",
    ]  # fmt: skip
    with log_path.open("wb") as log:
        env = {**os.environ, "RAY_AUTH_MODE": "disabled"}  # a token would live in ~/.ray, shared with other runs
        head = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    try:
        wait_for_port(port, head, log_path)
        yield f"127.0.0.1:{port}"
    finally:
        head.terminate()  # `ray start --block` stops the processes it started
        try:
            head.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(head.pid, 9)
            head.wait()
        shutil.rmtree(temp_dir, ignore_errors=True)


def wait_for_port(port: int, head: subprocess.Popen, log_path: Path, timeout_s: float = 120.0) -> None:
    """Wait until the head's GCS port accepts connections; fail with the log's tail if it exits or never does."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if head.poll() is not None:
            pytest.fail(f"ray head exited with {head.returncode}:\n{log_tail(log_path)}")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.5)
    pytest.fail(f"ray head not listening after {timeout_s:.0f} s:\n{log_tail(log_path)}")
