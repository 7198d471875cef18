"""Two-process DDP on CPU (gloo, launched by torchrun) agrees with the single-process run on the same data, resumes
exactly after a kill, and refuses what cannot work across process counts."""

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from tests.conftest import REPO
from tests.test_train_loop import kill_during_epoch_2, read_jsonl
from tests.train_fixtures import toy_version
from train.config import TrainConfig
from train.loop import train_run

# no dropout, so both runs draw no random numbers during training; batch 4 = 2 examples per process
SETTINGS = {
    "epochs": 2,
    "batch_size": 4,
    "pack_tokens": 96,
    "head_hidden": 32,
    "learning_rate": 5e-3,
    "lora_dropout": 0.0,
    "head_dropout": 0.0,
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def torchrun(
    version: Path, model: Path, out: Path, log_dir: Path | None = None, **overrides
) -> subprocess.CompletedProcess:
    """`train run` in two gloo processes (with `log_dir`: each process's stderr in its own file there)."""
    settings = {**SETTINGS, **overrides}
    logs = [f"--log-dir={log_dir}", "--redirects=2"] if log_dir else []
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        *logs,
        "--nproc_per_node=2",
        "--master_addr=127.0.0.1",
        f"--master_port={free_port()}",
        "-m",
        "train",
        "run",
        "--dataset",
        str(version),
        "--model",
        str(model),
        "--out",
        str(out),
        *(f"{k}={v}" for k, v in settings.items()),
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    return subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def runs(tiny_model_dir, tmp_path_factory):
    """A single-process run, a two-process run, and the two-process run killed while saving epoch 2, resumed."""
    tmp = tmp_path_factory.mktemp("ddp")
    version = toy_version(tmp / "registry", n_train=8, n_dev=5)
    single = train_run(TrainConfig(**SETTINGS), version, str(tiny_model_dir), tmp / "single")
    ddp = tmp / "ddp"
    done = torchrun(version, tiny_model_dir, ddp)
    assert done.returncode == 0, done.stderr[-3000:]
    killed = tmp / "killed"  # kill -9 while epoch 2 was being saved: its staging folder half written
    shutil.copytree(ddp, killed)
    (killed / "epoch-2").rename(killed / ".epoch-2.partial")
    (killed / ".epoch-2.partial" / "resume" / "state.json").unlink()
    (killed / ".epoch-2.partial" / "cls_head.safetensors").write_bytes(b"torn")
    kill_during_epoch_2(killed / "steps.jsonl", rows_of_epoch_2=1)
    kill_during_epoch_2(killed / "metrics.jsonl", rows_of_epoch_2=0)
    resumed = torchrun(version, tiny_model_dir, killed)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    return {"version": version, "single": single, "ddp": ddp, "killed": killed, "log": done.stdout + done.stderr}


def test_two_process_ddp_matches_single_process(runs):
    single, ddp = runs["single"], runs["ddp"]
    assert "train run: 2 process(es) (MULTI_CPU) on cpu, accelerate mixed precision no;" in runs["log"]
    state = json.loads((ddp / "epoch-2" / "resume" / "state.json").read_text())
    assert state["world_size"] == 2
    assert {"random_states_0.pkl", "random_states_1.pkl", "optimizer.bin"} <= {
        p.name for p in (ddp / "epoch-2" / "resume").iterdir()
    }
    assert not list((ddp / "epoch-2" / "resume").glob("model*")), "the adapter and head are the checkpoint's weights"
    rows = [read_jsonl(run / "steps.jsonl") for run in (single, ddp)]
    assert len(rows[0]) == len(rows[1]) == 4
    for a, b in zip(*rows, strict=True):
        for key in ("loss", "lm_loss", "cls_loss", "grad_norm"):
            assert abs(a[key] - b[key]) < 1e-5 * max(1.0, abs(a[key])), (key, a, b)
    dev = [read_jsonl(run / "metrics.jsonl")[-1] for run in (single, ddp)]
    assert dev[0]["n"] == dev[1]["n"] == 5
    assert abs(dev[0]["cls_loss"] - dev[1]["cls_loss"]) < 1e-5 and dev[0]["auroc"] == dev[1]["auroc"]
    for name in ("adapter_model.safetensors", "cls_head.safetensors"):
        want, got = load_file(single / "epoch-2" / name), load_file(ddp / "epoch-2" / name)
        assert want.keys() == got.keys()
        for key in want:
            torch.testing.assert_close(got[key], want[key], rtol=1e-4, atol=1e-6)


def test_two_process_run_killed_while_saving_resumes_like_the_uninterrupted_run(runs):
    ddp, killed = runs["ddp"], runs["killed"]
    assert read_jsonl(killed / "steps.jsonl") == read_jsonl(ddp / "steps.jsonl")
    assert not list(killed.glob(".epoch-*")), "the half-written staging folder is gone"
    for name in ("adapter_model.safetensors", "cls_head.safetensors"):
        want, got = load_file(ddp / "epoch-2" / name), load_file(killed / "epoch-2" / name)
        assert want.keys() == got.keys() and all(torch.equal(want[k], got[k]) for k in want)


def test_a_checkpoint_of_two_processes_is_refused_by_one_before_anything_changes(runs, tiny_model_dir):
    ddp = runs["ddp"]
    before = {p: p.stat().st_mtime_ns for p in ddp.rglob("*")}
    cfg = TrainConfig(**{**SETTINGS, "epochs": 3})
    with pytest.raises(ValueError, match=r"written by 2 process\(es\) and this run has 1: .*--num_processes 2"):
        train_run(cfg, runs["version"], str(tiny_model_dir), ddp)
    assert {p: p.stat().st_mtime_ns for p in ddp.rglob("*")} == before


def test_a_batch_the_processes_do_not_divide_exits_2_before_the_run_starts(runs, tiny_model_dir, tmp_path):
    out = tmp_path / "odd"
    done = torchrun(runs["version"], tiny_model_dir, out, log_dir=tmp_path / "logs", batch_size=3)
    agent = " ".join(done.stderr.split())  # torchrun stops the other process once one has ended
    assert done.returncode != 0 and "exitcode : 2" in agent and "exitcode : 1 " not in agent, done.stderr[-3000:]
    ranks = [" ".join(path.read_text().split()) for path in (tmp_path / "logs").rglob("stderr.log")]
    message = "error: batch_size=3 is not a multiple of the 2 processes: set batch_size to a multiple of 2"
    assert any(message in stderr for stderr in ranks), "exit 2 (bad input) with one line naming the setting and fix"
    assert not any("Traceback" in stderr for stderr in ranks)
    assert not out.exists()
