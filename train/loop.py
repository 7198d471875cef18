"""The `train run` recipe on accelerate: setup (data, model, optimizer, scheduler, resume), then fit, an epoch at a
time of train_step, validate and save_checkpoint. AdamW, warmup + linear decay, packed micro-batches."""

import math
import shutil
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import torch
from accelerate import Accelerator
from accelerate.utils import broadcast_object_list, gather_object
from rich.console import Console
from rich.progress import Progress
from sklearn.metrics import f1_score, roc_auc_score
from torch.optim.lr_scheduler import LRScheduler
from transformers import get_linear_schedule_with_warmup

from schemas.dataset_version import load_version
from schemas.files import LOCK, Journal, atomic_write_bytes, folder_lock
from schemas.integrity import missing_class
from schemas.progress import progress_bar
from schemas.task import TaskSpec
from schemas.train_metrics import (
    METRICS,
    STEPS,
    DevEpochMetrics,
    EpochMetrics,
    StepRow,
    TrainEpochMetrics,
    keep_epochs,
)
from train import checkpoint as ckpt
from train.card import write_card
from train.collate import pack, plan_micro_batches
from train.config import TrainConfig
from train.data import Encoded, encode_split, eog_token_id
from train.distributed import is_fsdp, launch_problem, model_problem, setup_line
from train.model import DualHeadModel, build_model, objective_loss
from train.tracking import check_trackers, start_trackers

RECORD = "train.json"


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


class StepLosses(NamedTuple):
    """One optimizer step's losses summed over processes, and the gradient norm before clipping."""

    loss: torch.Tensor
    lm: torch.Tensor
    cls: torch.Tensor
    grad_norm: torch.Tensor


@dataclass
class Logs:
    """The run's journals, kept by the main process: a row per optimizer step, and per epoch and split."""

    steps: Journal[StepRow]
    metrics: Journal[EpochMetrics]

    def close(self) -> None:
        """Close both files."""
        self.steps.close()
        self.metrics.close()


@dataclass
class Session:
    """A set-up run: prepared data, the accelerate-wrapped model and optimizer, the schedule, where it starts."""

    accelerator: Accelerator
    prep: Prepared
    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: LRScheduler
    out: Path
    start_epoch: int
    steps_per_epoch: int
    logs: Logs | None  # None on processes other than the main one

    @property
    def cfg(self) -> TrainConfig:
        """The run's hyper-parameters."""
        return self.prep.record.config


def train_run(cfg: TrainConfig, dataset_dir: Path, model_path: str, out: Path, resume_from: Path | None = None) -> Path:
    """Train a dual-head model on a published dataset version, writing `out/epoch-N` after every epoch."""
    check_trackers(cfg.log_with)
    accelerator = Accelerator(cpu=not torch.cuda.is_available(), log_with=cfg.log_with or None, project_dir=out)
    with output_lock(accelerator, Path(out)):
        session = setup(accelerator, cfg, Path(dataset_dir), model_path, Path(out), resume_from)
        try:
            fit(session)
        finally:
            if session.logs:
                session.logs.close()
            finish(accelerator)
    return session.out


def finish(accelerator: Accelerator) -> None:
    """Close the trackers; a launched run also tears its process group down. One process keeps the group it found
    (an in-process vLLM engine's, whose destruction breaks every later engine start in that process)."""
    if accelerator.num_processes > 1:
        accelerator.end_training()
        return
    for tracker in accelerator.trackers:
        tracker.finish()


@contextmanager
def output_lock(accelerator: Accelerator, out: Path) -> Iterator[None]:
    """The run folder's lock, held by the main process; every process raises the same ValueError when another
    command holds it, so no rank waits for one that stopped."""
    with ExitStack() as stack:
        problem = None
        if accelerator.is_main_process:
            try:
                stack.enter_context(folder_lock(out, "train run"))
            except ValueError as err:
                problem = str(err)
        [problem] = broadcast_object_list([problem])
        if problem:
            raise ValueError(problem)
        yield


def setup(
    accelerator: Accelerator, cfg: TrainConfig, dataset_dir: Path, model_path: str, out: Path, resume_from: Path | None
) -> Session:
    """Check the launch, read and encode the data, build (or restore) model, optimizer and scheduler; only then
    start the run folder, so a setting that cannot work leaves nothing behind."""
    precision = run_precision(cfg, accelerator)
    base_dtype = ckpt.model_dtype(accelerator.device, precision)
    refuse(launch_problem(cfg, accelerator, base_dtype))
    prep = prepare(cfg, dataset_dir, model_path, out, resume_from, accelerator.num_processes)
    accelerator.wait_for_everyone()
    start = ckpt.read_resume_state(prep.resume_from).epoch if prep.resume_from else 0
    steps_per_epoch = math.ceil(len(prep.train) / cfg.batch_size)
    model, optimizer, scheduler = build(accelerator, prep, steps_per_epoch * cfg.epochs, precision)
    refuse(model_problem(is_fsdp(accelerator), model))
    accelerator.print(setup_line(accelerator, model, base_dtype, model.autocast_bf16))
    if prep.resume_from:
        ckpt.load_trainable_weights(prep.resume_from, model)
    logs = start_output(out, prep.record, start) if accelerator.is_main_process else None
    start_trackers(accelerator, cfg)
    model, optimizer = accelerator.prepare(model, optimizer)
    accelerator.register_for_checkpointing(scheduler)
    ckpt.keep_model_weights_out_of_state(accelerator)
    if prep.resume_from:
        ckpt.load_training_state(accelerator, prep.resume_from, scheduler)
    model.train()
    return Session(accelerator, prep, model, optimizer, scheduler, out, start, steps_per_epoch, logs)


def refuse(problem: str | None) -> None:
    """ValueError with the problem's message (every process finds the same), before the run folder is touched."""
    if problem:
        raise ValueError(problem)


def prepare(
    cfg: TrainConfig, dataset_dir: Path, model_path: str, out: Path, resume_from: Path | None, world_size: int
) -> Prepared:
    """Load and encode the dataset version, check the model path and the resume point; ValueError on bad input."""
    data, manifest = load_version(dataset_dir)
    if "train" not in data:
        raise ValueError(f"{dataset_dir} has no 'train' split")
    task = TaskSpec.model_validate(manifest.task_spec)
    if "validation" in data and not cfg.allow_one_class_dev:
        check_dev_classes(data["validation"]["label"], task, dataset_dir)
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
    resume = resume_point(record, out, resume_from, world_size)
    return Prepared(record, task, tokenizer, train, dev, max_input_tokens, eog_id, resume)


def check_dev_classes(labels: list[int], task: TaskSpec, dataset_dir: Path) -> None:
    """ValueError when the validation split lacks a class: its dev metrics would mean nothing."""
    problem = missing_class("validation", len(labels), sum(label == task.positive_label for label in labels), task)
    if problem:
        raise ValueError(
            f"{dataset_dir}: {problem}, so dev AUROC is undefined and dev F1 / accuracy say nothing about the model:"
            " publish a version whose validation split has both classes (e.g. review the discarded examples with"
            " `curate review push`, or add examples to the validation input), or pass allow_one_class_dev=true"
            " to train anyway"
        )


def resume_point(record: ckpt.TrainRecord, out: Path, resume_from: Path | None, world_size: int) -> Path | None:
    """The checkpoint to continue from (explicit, else the run's latest), after checking it matches this run."""
    if out.exists() and any(p.name != LOCK for p in out.iterdir()):
        if not (out / RECORD).is_file():
            raise ValueError(f"--out {out} is a non-empty folder that is not a train run: pick a new folder")
        previous = ckpt.TrainRecord.model_validate_json((out / RECORD).read_text())
        if previous.identity() != record.identity():
            raise ValueError(f"--out {out} was started with another config, model or dataset: pick a new folder")
        if resume_from is None:
            resume_from = latest_loadable(ckpt.epoch_dirs(out))
    if resume_from is None:
        return None
    state = ckpt.read_resume_state(resume_from)
    ckpt.check_weights(resume_from)
    if state.record.identity() != record.identity():
        raise ValueError(f"checkpoint {resume_from} was trained with another config, model or dataset")
    if state.world_size != world_size:
        raise ValueError(
            f"checkpoint {resume_from} was written by {state.world_size} process(es) and this run has {world_size}:"
            f" its optimizer, RNG (and FSDP shard) state is per process, so resume with `accelerate launch"
            f" --num_processes {state.world_size} ...`, or train again into a new --out"
        )
    if record.config.epochs < state.epoch:
        raise ValueError(
            f"epochs={record.config.epochs} but {resume_from} is already epoch {state.epoch}: ask for more epochs"
            f" than {state.epoch} to continue the run, or use a new --out"
        )
    done = ckpt.epoch_dirs(out) if out.exists() else {}
    later = [e for e, path in done.items() if e > state.epoch and ckpt.weights_problem(path) is None]
    if later:
        raise ValueError(f"--out {out} already has epoch-{max(later)} after {resume_from.name}: use a new --out")
    return Path(resume_from)


def latest_loadable(done: dict[int, Path]) -> Path | None:
    """The latest checkpoint whose weights load; a broken later one is reported and trained again."""
    for epoch in sorted(done, reverse=True):
        problem = ckpt.weights_problem(done[epoch])
        if problem is None:
            return done[epoch]
        message = f"train run: {problem}; resuming from the epoch before it"
        Console(stderr=True, soft_wrap=True).print(message, highlight=False)
    return None


def start_output(out: Path, record: ckpt.TrainRecord, last_epoch: int) -> Logs:
    """Create the run folder with `train.json`; open its logs without the rows of epochs after `last_epoch`."""
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(out / RECORD, record.model_dump_json(indent=2).encode())
    logs = Logs(Journal(out / STEPS, StepRow), Journal(out / METRICS, EpochMetrics))
    keep_epochs(logs.steps, last_epoch)
    keep_epochs(logs.metrics, last_epoch)
    return logs


def trainable(model: torch.nn.Module) -> list[torch.nn.Parameter]:
    """The parameters the optimizer updates (LoRA, and the head unless the objective is gen-only)."""
    return [p for p in model.parameters() if p.requires_grad]


def run_precision(cfg: TrainConfig, accelerator: Accelerator) -> str:
    """The base weights' precision: the config's, where `auto` under FSDP is fp32 (FSDP shards one dtype; its
    mixed precision computes in bf16)."""
    return "fp32" if cfg.precision == "auto" and is_fsdp(accelerator) else cfg.precision


def build(
    accelerator: Accelerator, prep: Prepared, total_steps: int, precision: str
) -> tuple[DualHeadModel, torch.optim.Optimizer, LRScheduler]:
    """The seeded dual-head model (base weights in `precision`), AdamW and the warmup + linear-decay schedule."""
    cfg = prep.record.config
    torch.manual_seed(cfg.seed)
    base = ckpt.load_base(prep.record.model, accelerator.device, precision, cfg.attn_implementation)
    model = build_model(base, cfg, prep.task.positive_label)
    torch.manual_seed(cfg.seed + accelerator.process_index)  # dropout masks differ between processes
    optimizer = torch.optim.AdamW(trainable(model), lr=cfg.learning_rate, weight_decay=cfg.weight_decay)
    scheduler = get_linear_schedule_with_warmup(optimizer, round(cfg.warmup_ratio * total_steps), total_steps)
    return model, optimizer, scheduler


def fit(session: Session) -> None:
    """The epoch loop from the resume point: train an epoch, validate, log the epoch's rows, save a checkpoint."""
    cfg = session.cfg
    with progress_bar(Console(), "{task.fields[info]}", enabled=session.accelerator.is_main_process) as bar:
        for epoch in range(session.start_epoch + 1, cfg.epochs + 1):
            rows: list[TrainEpochMetrics | DevEpochMetrics] = [train_epoch(session, epoch, bar)]
            if session.prep.dev:
                rows.append(validate(session, epoch))
            if session.logs:
                for row in rows:
                    session.logs.metrics.append(EpochMetrics(row))
                    bar.console.print(row.model_dump_json(), soft_wrap=True, highlight=False)
            log_epoch(session, rows, epoch * session.steps_per_epoch)
            save_checkpoint(session, epoch)


def log_epoch(session: Session, rows: list[TrainEpochMetrics | DevEpochMetrics], step: int) -> None:
    """An epoch's train and dev metrics to the trackers, at the epoch's last optimizer step."""
    values = {f"{row.split}/epoch_{k}": v for row in rows for k, v in row.model_dump(exclude={"epoch"}).items()}
    session.accelerator.log({k: v for k, v in values.items() if isinstance(v, int | float)}, step)


def train_epoch(session: Session, epoch: int, bar: Progress) -> TrainEpochMetrics:
    """One shuffled pass over the train split: a train_step and an optimizer step per batch, a steps.jsonl row each."""
    cfg, spe = session.cfg, session.steps_per_epoch
    task = bar.add_task(f"epoch {epoch}/{cfg.epochs}", total=spe, info="")
    order = torch.randperm(len(session.prep.train), generator=torch.Generator().manual_seed(cfg.seed * 10007 + epoch))
    began, sums = time.time(), torch.zeros(3)
    for s in range(spe):
        step = order[s * cfg.batch_size : (s + 1) * cfg.batch_size].tolist()
        losses = train_step(session.accelerator, session.model, cfg, session.prep.train, step)
        session.optimizer.step()
        session.scheduler.step()
        session.optimizer.zero_grad(set_to_none=True)
        sums += torch.stack([losses.loss, losses.lm, losses.cls]).cpu()
        row = step_row(epoch, (epoch - 1) * spe + s + 1, losses, session.scheduler.get_last_lr()[0])
        if session.logs:
            session.logs.steps.append(row)
        values = row.model_dump(exclude={"epoch", "step"})
        session.accelerator.log({f"train/{k}": v for k, v in values.items()}, row.step)
        bar.update(task, advance=1, info=f"loss {row.loss:.4f}")
    loss, lm, cls = (sums / spe).tolist()
    seconds = round(time.time() - began, 3)
    return TrainEpochMetrics(epoch=epoch, loss=loss, lm_loss=lm, cls_loss=cls, steps=spe, seconds=seconds)


def step_row(epoch: int, step: int, losses: StepLosses, lr: float) -> StepRow:
    """The steps.jsonl row of one optimizer step."""
    return StepRow(
        epoch=epoch,
        step=step,
        loss=losses.loss.item(),
        lm_loss=losses.lm.item(),
        cls_loss=losses.cls.item(),
        grad_norm=float(full_value(losses.grad_norm)),
        lr=lr,
    )


def full_value(value: torch.Tensor) -> torch.Tensor:
    """A tensor's whole value (FSDP2 returns the gradient norm as a replicated DTensor)."""
    return value.full_tensor() if hasattr(value, "full_tensor") else value


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
    accelerator: Accelerator, model: torch.nn.Module, cfg: TrainConfig, examples: list[Encoded], step: list[int]
) -> StepLosses:
    """Forward/backward over this process's packs of one optimizer step, then gradient clipping."""
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
    grad_norm = accelerator.clip_grad_norm_(model.parameters(), cfg.max_grad_norm)  # FSDP clips its own shards
    loss, lm, cls = accelerator.reduce(totals, reduction="sum")
    return StepLosses(loss, lm, cls, grad_norm)


@torch.no_grad()
def dev_outputs(session: Session) -> list[tuple[int, float, float, float, float]]:
    """(index, P(positive), LM loss sum, target tokens, head loss) of every dev example, gathered from all processes."""
    accelerator, model, examples = session.accelerator, session.model, session.prep.dev
    lengths = [len(ex.input_ids) for ex in examples]
    rank, world = accelerator.process_index, accelerator.num_processes
    packs = rank_micro_batches(list(range(len(examples))), lengths, session.cfg.pack_tokens, rank, world)
    rows = []
    model.eval()
    for idx, weight in packs:
        parts = model(pack([examples[i] for i in idx]).to(accelerator.device), "joint")
        probs = parts.head_logits.softmax(-1)[:, session.prep.task.positive_label]
        if weight:
            losses = (parts.lm_sum.tolist(), parts.lm_count.tolist(), parts.cls_loss.tolist())
            rows += zip(idx, probs.tolist(), *losses, strict=True)
    model.train()
    return sorted(gather_object(rows))


def validate(session: Session, epoch: int) -> DevEpochMetrics:
    """Dev metrics of the head (no generated text): AUROC, F1 and accuracy at 0.5, Brier, head and LM losses."""
    rows = dev_outputs(session)
    positive = session.prep.task.positive_label
    y = [int(session.prep.dev[i].label == positive) for i, *_ in rows]
    p = [row[1] for row in rows]
    lm_count = sum(row[3] for row in rows)
    cls_loss = sum(row[4] for row in rows) / len(rows)
    lm_loss = sum(row[2] for row in rows) / lm_count if lm_count else None
    terms = {"joint": [lm_loss, cls_loss], "cls-only": [cls_loss], "gen-only": [lm_loss]}[session.cfg.objective]
    return DevEpochMetrics(
        epoch=epoch,
        n=len(rows),
        auroc=roc_auc_score(y, p) if 0 < sum(y) < len(y) else None,
        f1=f1_score(y, [int(v >= 0.5) for v in p], zero_division=0.0),
        accuracy=sum(int(v >= 0.5) == t for v, t in zip(p, y, strict=True)) / len(y),
        brier=sum((v - t) ** 2 for v, t in zip(p, y, strict=True)) / len(y),
        cls_loss=cls_loss,
        lm_loss=lm_loss,
        loss=None if None in terms else sum(terms),
    )


def head_config(session: Session, model: DualHeadModel, epoch: int) -> ckpt.DualHeadConfig:
    """`dual_head.json` of the checkpoint of `epoch`."""
    prep, cfg = session.prep, session.cfg
    return ckpt.DualHeadConfig(
        base_model=prep.record.model,
        hidden_size=model.lm.get_base_model().config.hidden_size,
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


def save_checkpoint(session: Session, epoch: int) -> Path:
    """Write `out/epoch-N` atomically: staged in a hidden folder, renamed once every process has written."""
    accelerator = session.accelerator
    final, staging = session.out / f"epoch-{epoch}", session.out / f".epoch-{epoch}.partial"
    if accelerator.is_main_process:
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
    accelerator.wait_for_everyone()
    state_dict = accelerator.get_state_dict(session.model)
    if accelerator.is_main_process:
        model: DualHeadModel = accelerator.unwrap_model(session.model)
        ckpt.save_weights(staging, model.lm, state_dict, head_config(session, model, epoch))
        session.prep.tokenizer.save_pretrained(staging)  # the checkpoint loads and pushes as one folder
    state = ckpt.ResumeState(
        epoch=epoch,
        global_step=epoch * session.steps_per_epoch,
        world_size=accelerator.num_processes,
        record=session.prep.record,
    )
    ckpt.save_training_state(accelerator, staging, state)
    if accelerator.is_main_process:
        write_card(staging)
        shutil.rmtree(final, ignore_errors=True)
        staging.rename(final)
    accelerator.wait_for_everyone()
    return final
