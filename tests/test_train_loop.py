"""The training loop on a tiny random Llama: the loss falls, checkpoints reload, resume is exact."""

import json
import os
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from schemas.dataset_version import load_version
from tests.train_fixtures import toy_version
from train.checkpoint import load_checkpoint
from train.collate import pack
from train.config import TrainConfig
from train.data import encode_split
from train.loop import train_run

FAST = {"head_hidden": 32, "batch_size": 4, "pack_tokens": 256}


def read_jsonl(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def without_seconds(path):
    return [{k: v for k, v in row.items() if k != "seconds"} for row in read_jsonl(path)]


def kill_during_epoch_2(path, rows_of_epoch_2: int) -> None:
    """Cut a log as a kill during epoch 2 leaves it: epoch 1, some rows of epoch 2, then half a line."""
    lines = path.read_text().splitlines(keepends=True)
    first = next(i for i, line in enumerate(lines) if json.loads(line)["epoch"] == 2)
    torn = lines[first + rows_of_epoch_2]
    path.write_text("".join(lines[: first + rows_of_epoch_2]) + torn[: len(torn) // 2])


def test_loss_falls_and_checkpoints_hold_the_trained_weights(tiny_model_dir, tmp_path):
    version = toy_version(tmp_path / "registry")
    cfg = TrainConfig(epochs=4, learning_rate=5e-3, warmup_ratio=0.1, **FAST)
    out = train_run(cfg, version, str(tiny_model_dir), tmp_path / "run")
    steps = read_jsonl(out / "steps.jsonl")
    assert [s["step"] for s in steps] == list(range(1, 9))
    first, last = sum(s["loss"] for s in steps[:2]) / 2, sum(s["loss"] for s in steps[-2:]) / 2
    assert last < first - 0.1
    metrics = read_jsonl(out / "metrics.jsonl")
    assert [(m["epoch"], m["split"]) for m in metrics] == [(e, s) for e in range(1, 5) for s in ("train", "validation")]
    dev = metrics[-1]
    assert dev["n"] == 4 and 0.0 <= dev["auroc"] <= 1.0
    assert abs(dev["loss"] - (dev["lm_loss"] + dev["cls_loss"])) < 1e-9

    loaded = load_checkpoint(out / "epoch-4")
    data, _ = load_version(version)
    examples = encode_split(
        loaded.tokenizer,
        loaded.task,
        data["validation"],
        loaded.config.max_input_tokens,
        loaded.config.eog_token_id,
        "validation",
    )
    with torch.no_grad():
        parts = loaded.model(pack(examples))
    assert abs(parts.cls_loss.mean().item() - dev["cls_loss"]) < 1e-5
    assert abs((parts.lm_sum.sum() / parts.lm_count.sum()).item() - dev["lm_loss"]) < 1e-5


def test_resume_continues_exactly_like_an_uninterrupted_run(tiny_model_dir, tmp_path):
    version = toy_version(tmp_path / "registry", n_train=12)
    cfg = TrainConfig(epochs=3, learning_rate=5e-3, **FAST)  # default LoRA and head dropout: the RNG state matters
    full = train_run(cfg, version, str(tiny_model_dir), tmp_path / "full")
    expected = read_jsonl(full / "steps.jsonl")

    killed = tmp_path / "killed"  # killed during epoch 2: some of its step rows written, the last one torn
    shutil.copytree(full, killed)
    shutil.rmtree(killed / "epoch-2")
    shutil.rmtree(killed / "epoch-3")
    kill_during_epoch_2(killed / "steps.jsonl", rows_of_epoch_2=1)
    kill_during_epoch_2(killed / "metrics.jsonl", rows_of_epoch_2=0)
    train_run(cfg, version, str(tiny_model_dir), killed)
    assert read_jsonl(killed / "steps.jsonl") == expected
    assert without_seconds(killed / "metrics.jsonl") == without_seconds(full / "metrics.jsonl")

    branch = train_run(cfg, version, str(tiny_model_dir), tmp_path / "branch", resume_from=full / "epoch-2")
    assert read_jsonl(branch / "steps.jsonl") == expected[-3:]
    for name in ("adapter_model.safetensors", "cls_head.safetensors"):
        want = load_file(full / "epoch-3" / name)
        for got in (load_file(killed / "epoch-3" / name), load_file(branch / "epoch-3" / name)):
            assert want.keys() == got.keys() and all(torch.equal(want[k], got[k]) for k in want)


def test_a_second_train_run_on_a_held_output_folder_is_refused_on_every_rank(tmp_path: Path) -> None:
    from accelerate import Accelerator

    from schemas.files import folder_lock
    from train.loop import output_lock

    out = tmp_path / "run"
    held = pytest.raises(ValueError, match=f"in use by pid {os.getpid()} ")
    with folder_lock(out, "train run"), held, output_lock(Accelerator(cpu=True), out):
        pass
    with output_lock(Accelerator(cpu=True), out):
        assert (out / ".lock").is_file()
    assert not out.exists(), "a folder the lock created and nothing filled is removed again"


def test_an_in_process_run_keeps_the_process_group_it_found(tiny_model_dir, tmp_path):
    """An in-process vLLM engine holds a one-process gloo group; a `train_run` beside it must not destroy it."""
    import torch.distributed as dist

    created = not dist.is_initialized()
    if created:
        dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'store'}", rank=0, world_size=1)
    try:
        train_run(
            TrainConfig(epochs=1, **FAST), toy_version(tmp_path / "registry"), str(tiny_model_dir), tmp_path / "run"
        )
        assert dist.is_initialized()
    finally:
        if created and dist.is_initialized():
            dist.destroy_process_group()
