"""Two-process DDP on CPU (gloo, launched by torchrun) agrees with the single-process run on the same data."""

import json
import os
import socket
import subprocess
import sys

import torch
from safetensors.torch import load_file

from tests.conftest import REPO
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


def test_two_process_ddp_matches_single_process(tiny_model_dir, tmp_path):
    version = toy_version(tmp_path / "registry", n_train=8, n_dev=5)
    single = train_run(TrainConfig(**SETTINGS), version, str(tiny_model_dir), tmp_path / "single")

    ddp = tmp_path / "ddp"
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node=2",
        "--master_addr=127.0.0.1",
        f"--master_port={free_port()}",
        "-m",
        "train",
        "run",
        "--dataset",
        str(version),
        "--model",
        str(tiny_model_dir),
        "--out",
        str(ddp),
        *(f"{k}={v}" for k, v in SETTINGS.items()),
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]

    state = json.loads((ddp / "epoch-2" / "resume" / "state.json").read_text())
    assert state["world_size"] == 2 and (ddp / "epoch-2" / "resume" / "rng-rank1.pt").is_file()
    rows = [[json.loads(line) for line in (run / "steps.jsonl").read_text().splitlines()] for run in (single, ddp)]
    assert len(rows[0]) == len(rows[1]) == 4
    for a, b in zip(*rows, strict=True):
        for key in ("loss", "lm_loss", "cls_loss", "grad_norm"):
            assert abs(a[key] - b[key]) < 1e-5 * max(1.0, abs(a[key])), (key, a, b)
    dev = [[json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()][-1] for run in (single, ddp)]
    assert dev[0]["n"] == dev[1]["n"] == 5
    assert abs(dev[0]["cls_loss"] - dev[1]["cls_loss"]) < 1e-5 and dev[0]["auroc"] == dev[1]["auroc"]
    for name in ("adapter_model.safetensors", "cls_head.safetensors"):
        want, got = load_file(single / "epoch-2" / name), load_file(ddp / "epoch-2" / name)
        assert want.keys() == got.keys()
        for key in want:
            torch.testing.assert_close(got[key], want[key], rtol=1e-4, atol=1e-6)
