"""FSDP2 check on GPUs (accelerate runs FSDP on GPUs only, so the CPU suite cannot): `train run` under
`configs/accelerate/4gpu-fsdp.yaml` on the tiny random Llama must match a one-process run, resume exactly after a
kill, and train in bf16 mixed precision. Prints JSON; exits 1 when a check fails.

GPU: `python benchmarks/fsdp_check.py` (FSDP over min(2, GPUs) processes; one GPU still runs fully_shard).
CPU smoke of this script's logic: `python benchmarks/fsdp_check.py --cpu` (2 gloo processes, DDP instead of FSDP).
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.test_train_ddp import SETTINGS  # noqa: E402
from tests.test_train_loop import kill_during_epoch_2, read_jsonl  # noqa: E402
from tests.tiny_model import build_tiny_model  # noqa: E402
from tests.train_fixtures import toy_version  # noqa: E402

FSDP_CONFIG = REPO / "configs" / "accelerate" / "4gpu-fsdp.yaml"
ONE_GPU_CONFIG = REPO / "configs" / "accelerate" / "1gpu.yaml"


def launch(launcher: list[str], version: Path, model: Path, out: Path, **overrides) -> subprocess.CompletedProcess:
    """`accelerate launch LAUNCHER -m train run` on the tiny model and toy version."""
    settings = {**SETTINGS, "precision": "fp32", **overrides}
    command = [sys.executable, "-m", "accelerate.commands.launch", *launcher, "-m", "train", "run"]
    command += ["--dataset", str(version), "--model", str(model), "--out", str(out)]
    command += [f"{k}={v}" for k, v in settings.items()]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    if "--multi_gpu" in launcher and not torch.cuda.is_available():
        env["ACCELERATE_USE_CPU"] = "true"  # the CPU smoke: accelerate's multi-process launcher, gloo processes
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=900)
    if done.returncode:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stderr[-4000:]}")
    return done


def max_relative_difference(a: Path, b: Path) -> float:
    """The largest relative difference of the step losses and gradient norms of two runs."""
    worst = 0.0
    for x, y in zip(read_jsonl(a / "steps.jsonl"), read_jsonl(b / "steps.jsonl"), strict=True):
        for key in ("loss", "lm_loss", "cls_loss", "grad_norm"):
            worst = max(worst, abs(x[key] - y[key]) / max(1.0, abs(x[key])))
    return worst


def main() -> None:
    """Reference run, sharded run, killed-and-resumed sharded run, bf16 sharded run; one JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cpu", action="store_true", help="smoke-test the script on CPU with DDP")
    args = parser.parse_args()
    processes = 2 if args.cpu else min(2, torch.cuda.device_count())
    if processes < 1:
        raise SystemExit("no CUDA device: run on GPUs, or pass --cpu for a DDP smoke test")
    sharded = ["--multi_gpu"] if args.cpu else ["--config_file", str(FSDP_CONFIG)]
    sharded += ["--num_processes", str(processes), "--mixed_precision", "no"]
    single = ["--cpu", "--num_processes", "1"] if args.cpu else ["--config_file", str(ONE_GPU_CONFIG)]
    single += ["--mixed_precision", "no"]
    root = Path(tempfile.mkdtemp(prefix="fsdp-check-"))
    model = build_tiny_model(root / "tiny")
    version = toy_version(root / "registry", n_train=8, n_dev=5)

    launch(single, version, model, root / "single")
    log = launch(sharded, version, model, root / "sharded")
    killed = root / "killed"
    shutil.copytree(root / "sharded", killed)
    shutil.rmtree(killed / "epoch-2")
    kill_during_epoch_2(killed / "steps.jsonl", rows_of_epoch_2=1)
    kill_during_epoch_2(killed / "metrics.jsonl", rows_of_epoch_2=0)
    launch(sharded, version, model, killed)
    bf16 = sharded[:-1] + ["bf16"]
    bf16_log = launch(bf16, version, model, root / "bf16")
    setup = [line for line in (log.stdout + log.stderr).splitlines() if line.startswith("train run:")]
    bf16_losses = [row["loss"] for row in read_jsonl(root / "bf16" / "steps.jsonl")]
    result = {
        "processes": processes,
        "setup": setup[0] if setup else None,
        "bf16_setup": next((ln for ln in bf16_log.stdout.splitlines() if ln.startswith("train run:")), None),
        "sharded_vs_single_max_rel_diff": max_relative_difference(root / "single", root / "sharded"),
        "resumed_vs_uninterrupted_max_rel_diff": max_relative_difference(root / "sharded", killed),
        "bf16_losses_finite": all(abs(v) < float("inf") for v in bf16_losses),
    }
    result["ok"] = (
        result["sharded_vs_single_max_rel_diff"] < 1e-4
        and result["resumed_vs_uninterrupted_max_rel_diff"] < 1e-5
        and result["bf16_losses_finite"]
        and (args.cpu or "FSDP2" in (result["setup"] or ""))
    )
    print(json.dumps(result))
    shutil.rmtree(root)
    raise SystemExit(0 if result["ok"] else 1)


if __name__ == "__main__":
    main()
