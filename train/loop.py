"""The training loop on accelerate: AdamW, warmup + linear decay, packed micro-batches, epoch eval and checkpoints."""

import json
import math
import shutil
import time
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

import torch
from accelerate import Accelerator
from accelerate.utils import gather_object
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from sklearn.metrics import f1_score, roc_auc_score
from transformers import get_linear_schedule_with_warmup

from schemas.dataset_version import load_version
from schemas.task import TaskSpec
from train import checkpoint as ckpt
from train.collate import pack, plan_micro_batches
from train.config import TrainConfig
from train.data import Encoded, encode_split, eog_token_id
from train.model import DualHeadModel, build_model, objective_loss

RECORD = "train.json"
METRICS = "metrics.jsonl"
STEPS = "steps.jsonl"


@dataclass
class Prepared:
    """Everything read and checked before a run touches its output folder."""

    record: ckpt.TrainRecord
    task: TaskSpec
    tokenizer: object
    train: list[Encoded]
    dev: list[Encoded]
    max_input_tokens: int
    eog_id: int
    resume_from: Path | None


def prepare(
    cfg: TrainConfig, dataset_dir: Path, model_path: str, out: Path, resume_from: Path | None, world_size: int
) -> Prepared:
    """Load and encode the dataset version, check the model path and the resume point; ValueError on bad input."""
    data, manifest = load_version(dataset_dir)
    if "train" not in data:
        raise ValueError(f"{dataset_dir} has no 'train' split")
    task = TaskSpec.model_validate(manifest.task_spec)
    tokenizer = ckpt.load_tokenizer(model_path)
    max_input_tokens = cfg.max_input_tokens or task.max_input_tokens
    eog_id = eog_token_id(tokenizer)
    train = encode_split(tokenizer, task, data["train"], max_input_tokens, eog_id, "train")
    dev = (
        encode_split(tokenizer, task, data["validation"], max_input_tokens, eog_id, "validation")
        if "validation" in data
        else []
    )
    record = ckpt.TrainRecord(
        config=cfg,
        model=str(model_path),
        dataset_dir=str(Path(dataset_dir).resolve()),
        dataset_version=f"{manifest.name}@{manifest.version}",
        dataset_sha256={split: info.sha256 for split, info in manifest.splits.items()},
    )
    return Prepared(
        record,
        task,
        tokenizer,
        train,
        dev,
        max_input_tokens,
        eog_id,
        resume_point(record, Path(out), resume_from, world_size),
    )


def resume_point(record: ckpt.TrainRecord, out: Path, resume_from: Path | None, world_size: int) -> Path | None:
    """The checkpoint to continue from (explicit, else the run's latest), after checking it matches this run."""
    if out.exists() and any(out.iterdir()):
        if not (out / RECORD).is_file():
            raise ValueError(f"--out {out} is a non-empty folder that is not a train run: pick a new folder")
        previous = ckpt.TrainRecord.model_validate_json((out / RECORD).read_text())
        if previous.identity() != record.identity():
            raise ValueError(f"--out {out} was started with another config, model or dataset: pick a new folder")
        if resume_from is None:
            done = ckpt.epoch_dirs(out)
            resume_from = done[max(done)] if done else None
    if resume_from is None:
        return None
    state = ckpt.read_resume_state(resume_from)
    if state.record.identity() != record.identity():
        raise ValueError(f"checkpoint {resume_from} was trained with another config, model or dataset")
    if state.world_size != world_size:
        raise ValueError(f"checkpoint {resume_from} was written by {state.world_size} processes: resume with as many")
    later = [e for e in ckpt.epoch_dirs(out) if e > state.epoch] if out.exists() else []
    if later:
        raise ValueError(f"--out {out} already has epoch-{max(later)} after {resume_from.name}: use a new --out")
    return Path(resume_from)


def truncate_jsonl(path: Path, last_epoch: int) -> None:
    """Keep the rows of epochs up to `last_epoch` (drops those of an interrupted epoch)."""
    if path.is_file():
        rows = [line for line in path.read_text().splitlines() if json.loads(line)["epoch"] <= last_epoch]
        path.write_text("".join(row + "\n" for row in rows))


def append_jsonl(path: Path, row: dict) -> None:
    """Append one JSON row."""
    with path.open("a") as handle:
        handle.write(json.dumps(row) + "\n")


def rank_micro_batches(
    indices: list[int], lengths: list[int], pack_tokens: int, rank: int, world: int
) -> list[tuple[list[int], float]]:
    """This process's packs (with weight 1) of a step, padded with weight-0 repeats to the same count on all ranks."""
    ordered = sorted(indices, key=lambda i: (-lengths[i], i))
    shards = [plan_micro_batches(ordered[r::world], lengths, pack_tokens) for r in range(world)]
    filler = next(s[0] for s in shards if s)
    width = max(len(s) for s in shards)
    mine = shards[rank]
    return [(p, 1.0) for p in mine] + [(filler, 0.0)] * (width - len(mine))


def train_step(
    accelerator: Accelerator, model, cfg: TrainConfig, examples: list[Encoded], step: list[int]
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Forward/backward over this process's packs; returns summed (loss, lm, cls) shares and the grad norm."""
    lengths = [len(ex.input_ids) for ex in examples]
    n_tokens = float(sum(examples[i].target_len for i in step))
    n_examples = float(len(step))
    packs = rank_micro_batches(step, lengths, cfg.pack_tokens, accelerator.process_index, accelerator.num_processes)
    totals = torch.zeros(3, device=accelerator.device)
    for k, (idx, weight) in enumerate(packs):
        sync = nullcontext() if k == len(packs) - 1 else accelerator.no_sync(model)
        with sync:
            parts = model(pack([examples[i] for i in idx]).to(accelerator.device), cfg.objective)
            loss = objective_loss(parts, cfg.objective, n_tokens, n_examples) * weight
            accelerator.backward(loss * accelerator.num_processes)
        lm, cls = parts.lm_sum.sum().detach() / max(n_tokens, 1.0), parts.cls_loss.sum().detach() / n_examples
        totals += torch.stack([loss.detach(), lm * weight, cls * weight])
    params = [p for p in model.parameters() if p.requires_grad]
    grad_norm = accelerator.clip_grad_norm_(params, cfg.max_grad_norm)
    loss, lm, cls = accelerator.reduce(totals, reduction="sum")
    return loss, lm, cls, grad_norm


@torch.no_grad()
def evaluate_split(accelerator: Accelerator, model, cfg: TrainConfig, examples: list[Encoded], positive: int) -> dict:
    """Parsability-free dev metrics: head AUROC, F1 and accuracy at 0.5, Brier, head and LM losses."""
    model.eval()
    lengths = [len(ex.input_ids) for ex in examples]
    packs = rank_micro_batches(
        list(range(len(examples))), lengths, cfg.pack_tokens, accelerator.process_index, accelerator.num_processes
    )
    rows = []
    for idx, weight in packs:
        parts = model(pack([examples[i] for i in idx]).to(accelerator.device), "joint")
        probs = parts.head_logits.softmax(-1)[:, positive]
        if weight:
            rows += zip(
                idx,
                probs.tolist(),
                parts.lm_sum.tolist(),
                parts.lm_count.tolist(),
                parts.cls_loss.tolist(),
                strict=True,
            )
    model.train()
    rows = sorted(gather_object(rows))
    y = [int(examples[i].label == positive) for i, *_ in rows]
    p = [row[1] for row in rows]
    lm_count = sum(row[3] for row in rows)
    cls_loss = sum(row[4] for row in rows) / len(rows)
    lm_loss = sum(row[2] for row in rows) / lm_count if lm_count else None
    terms = {"joint": [lm_loss, cls_loss], "cls-only": [cls_loss], "gen-only": [lm_loss]}[cfg.objective]
    return {
        "n": len(rows),
        "auroc": roc_auc_score(y, p) if 0 < sum(y) < len(y) else None,
        "f1": f1_score(y, [int(v >= 0.5) for v in p], zero_division=0.0),
        "accuracy": sum(int(v >= 0.5) == t for v, t in zip(p, y, strict=True)) / len(y),
        "brier": sum((v - t) ** 2 for v, t in zip(p, y, strict=True)) / len(y),
        "cls_loss": cls_loss,
        "lm_loss": lm_loss,
        "loss": None if None in terms else sum(terms),
    }


def save_epoch(
    accelerator: Accelerator, model, optimizer, scheduler, prep: Prepared, out: Path, epoch: int, global_step: int
) -> Path:
    """Write `out/epoch-N` atomically: staged in a hidden folder, renamed once every process has written."""
    final, staging = out / f"epoch-{epoch}", out / f".epoch-{epoch}.partial"
    if accelerator.is_main_process:
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
    accelerator.wait_for_everyone()
    ckpt.save_rank_state(staging, accelerator.process_index, optimizer)
    state_dict = accelerator.get_state_dict(model)
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        unwrapped: DualHeadModel = accelerator.unwrap_model(model)
        cfg = prep.record.config
        head_config = ckpt.DualHeadConfig(
            base_model=prep.record.model,
            hidden_size=unwrapped.lm.get_base_model().config.hidden_size,
            head_hidden=cfg.head_hidden,
            head_dropout=cfg.head_dropout,
            task_spec=prep.task.model_dump(mode="json"),
            max_input_tokens=prep.max_input_tokens,
            eog_token_id=prep.eog_id,
            objective=cfg.objective,
            dataset_dir=prep.record.dataset_dir,
            dataset_version=prep.record.dataset_version,
            epoch=epoch,
        )
        ckpt.save_weights(staging, unwrapped.lm, state_dict, head_config)
        state = ckpt.ResumeState(
            epoch=epoch, global_step=global_step, world_size=accelerator.num_processes, record=prep.record
        )
        ckpt.save_run_state(staging, scheduler, state)
        shutil.rmtree(final, ignore_errors=True)
        staging.rename(final)
    accelerator.wait_for_everyone()
    return final


def progress_bar(enabled: bool) -> Progress:
    """A rich progress bar with the running loss."""
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[info]}"),
        TimeElapsedColumn(),
        disable=not enabled,
    )


def train_run(cfg: TrainConfig, dataset_dir: Path, model_path: str, out: Path, resume_from: Path | None = None) -> Path:
    """Train a dual-head model on a published dataset version, writing `out/epoch-N` after every epoch."""
    accelerator = Accelerator(cpu=not torch.cuda.is_available())
    out = Path(out)
    prep = prepare(cfg, Path(dataset_dir), model_path, out, resume_from, accelerator.num_processes)
    accelerator.wait_for_everyone()
    start = ckpt.read_resume_state(prep.resume_from).epoch if prep.resume_from else 0
    if accelerator.is_main_process:
        out.mkdir(parents=True, exist_ok=True)
        (out / RECORD).write_text(prep.record.model_dump_json(indent=2))
        truncate_jsonl(out / METRICS, start)
        truncate_jsonl(out / STEPS, start)

    torch.manual_seed(cfg.seed)
    base = ckpt.load_base(model_path, accelerator.device, cfg.precision, cfg.attn_implementation)
    model = build_model(base, cfg, prep.task.positive_label)
    torch.manual_seed(cfg.seed + accelerator.process_index)  # dropout masks differ between processes
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=cfg.learning_rate, weight_decay=cfg.weight_decay)
    steps_per_epoch = math.ceil(len(prep.train) / cfg.batch_size)
    total = steps_per_epoch * cfg.epochs
    scheduler = get_linear_schedule_with_warmup(optimizer, round(cfg.warmup_ratio * total), total)
    if prep.resume_from:
        ckpt.load_trainable_weights(prep.resume_from, model)
        ckpt.load_rank_state(prep.resume_from, accelerator.process_index, optimizer, scheduler)
    model, optimizer = accelerator.prepare(model, optimizer)
    model.train()

    global_step = start * steps_per_epoch
    with progress_bar(accelerator.is_main_process) as bar:
        for epoch in range(start + 1, cfg.epochs + 1):
            task = bar.add_task(f"epoch {epoch}/{cfg.epochs}", total=steps_per_epoch, info="")
            order = torch.randperm(len(prep.train), generator=torch.Generator().manual_seed(cfg.seed * 10007 + epoch))
            began, sums = time.time(), torch.zeros(3)
            for s in range(steps_per_epoch):
                step = order[s * cfg.batch_size : (s + 1) * cfg.batch_size].tolist()
                loss, lm, cls, grad_norm = train_step(accelerator, model, cfg, prep.train, step)
                optimizer.step()
                scheduler.step()
                optimizer.zero_grad(set_to_none=True)
                global_step += 1
                sums += torch.stack([loss, lm, cls]).cpu()
                row = {
                    "epoch": epoch,
                    "step": global_step,
                    "loss": loss.item(),
                    "lm_loss": lm.item(),
                    "cls_loss": cls.item(),
                    "grad_norm": float(grad_norm),
                    "lr": scheduler.get_last_lr()[0],
                }
                if accelerator.is_main_process:
                    append_jsonl(out / STEPS, row)
                bar.update(task, advance=1, info=f"loss {row['loss']:.4f}")
            means = (sums / steps_per_epoch).tolist()
            rows = [
                {
                    "epoch": epoch,
                    "split": "train",
                    "loss": means[0],
                    "lm_loss": means[1],
                    "cls_loss": means[2],
                    "steps": steps_per_epoch,
                    "seconds": round(time.time() - began, 3),
                }
            ]
            if prep.dev:
                rows.append(
                    {
                        "epoch": epoch,
                        "split": "validation",
                        **evaluate_split(accelerator, model, cfg, prep.dev, prep.task.positive_label),
                    }
                )
            if accelerator.is_main_process:
                for row in rows:
                    append_jsonl(out / METRICS, row)
                    bar.console.print(json.dumps(row))
            save_epoch(accelerator, model, optimizer, scheduler, prep, out, epoch, global_step)
    return out
