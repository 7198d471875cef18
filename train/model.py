"""The dual-head model: a causal LM with LoRA plus an MLP classification head on `h_n`."""

from contextlib import nullcontext
from typing import NamedTuple

import torch
import torch.nn.functional as F
from peft import LoraConfig, PeftModel, TaskType, get_peft_model
from torch import nn

from train.collate import IGNORE, Packed
from train.config import Objective, TrainConfig


class ClsHead(nn.Module):
    """2-layer MLP on the final hidden state: dropout, linear, GELU, dropout, linear to two class logits."""

    def __init__(self, hidden_size: int, head_hidden: int, dropout: float):
        super().__init__()
        self.net = nn.Sequential(
            nn.Dropout(dropout),
            nn.Linear(hidden_size, head_hidden),
            nn.GELU(),
            nn.Dropout(dropout),
            nn.Linear(head_hidden, 2),
        )

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        """Class logits in fp32 (the hidden state is cast to the head's dtype)."""
        return self.net(h.to(self.net[1].weight.dtype)).float()


class LossParts(NamedTuple):
    """Per-example loss terms of a micro-batch (sums, so packs and steps can be re-normalised exactly)."""

    lm_sum: torch.Tensor  # [n] summed target-token cross-entropy
    lm_count: torch.Tensor  # [n] number of target tokens
    cls_loss: torch.Tensor  # [n] head cross-entropy
    head_logits: torch.Tensor  # [n, 2]


class DualHeadModel(nn.Module):
    """`lm` (a peft LoRA model, usable for `generate`) and `head`; one decoder pass feeds both heads."""

    def __init__(self, lm: PeftModel, head: ClsHead, positive_label: int = 1):
        super().__init__()
        self.lm = lm
        self.head = head
        self.positive_label = positive_label
        self.autocast_bf16 = prepare_bf16_autocast(lm)

    def precision_context(self):
        """bf16 autocast on GPU so fp32 LoRA weights run on the bf16 activations without fp32 copies."""
        if not self.autocast_bf16:
            return nullcontext()
        return torch.autocast(device_type="cuda", dtype=torch.bfloat16)

    def decoder_hidden(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Final-norm hidden states `[B, L, H]` with LoRA active, without the lm_head and without a KV cache."""
        with self.precision_context():
            decoder = self.lm.get_base_model().model
            out = decoder(
                input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids, use_cache=False
            )
        return out.last_hidden_state

    def head_logits(self, h_n: torch.Tensor) -> torch.Tensor:
        """Class logits `[B, 2]` from `h_n` (fp32, outside autocast)."""
        with torch.autocast(device_type=h_n.device.type, enabled=False):
            return self.head(h_n)

    def head_probs(self, h_n: torch.Tensor) -> torch.Tensor:
        """P(positive label) `[B]` from `h_n`."""
        return self.head_logits(h_n).softmax(-1)[:, self.positive_label]

    def target_logits(self, hidden: torch.Tensor) -> torch.Tensor:
        """lm_head logits for selected hidden states only, in fp32."""
        with self.precision_context():
            return self.lm.get_base_model().lm_head(hidden).float()

    def forward(self, batch: Packed, objective: Objective = "joint") -> LossParts:
        """Per-example LM and head losses of a packed micro-batch; the LM head runs on target positions only."""
        hidden = self.decoder_hidden(batch.input_ids, position_ids=batch.position_ids)[0]
        n = batch.labels.shape[0]
        head_logits = self.head_logits(hidden[batch.h_index])
        cls_loss = F.cross_entropy(head_logits, batch.labels, reduction="none")
        lm_sum = hidden.new_zeros(n, dtype=torch.float32)
        lm_count = torch.zeros(n, dtype=torch.float32, device=hidden.device)
        if objective != "cls-only":
            sel = batch.targets != IGNORE
            token_loss = F.cross_entropy(self.target_logits(hidden[sel]), batch.targets[sel], reduction="none")
            lm_sum = lm_sum.index_add(0, batch.example_of[sel], token_loss)
            lm_count = lm_count.index_add(0, batch.example_of[sel], torch.ones_like(token_loss))
        return LossParts(lm_sum, lm_count, cls_loss, head_logits)


def objective_loss(parts: LossParts, objective: Objective, n_tokens: float, n_examples: float) -> torch.Tensor:
    """This micro-batch's share of the step loss: LM sum / step target tokens + head sum / step examples."""
    lm = parts.lm_sum.sum() / max(n_tokens, 1.0)
    cls = parts.cls_loss.sum() / max(n_examples, 1.0)
    if objective == "cls-only":
        return cls
    if objective == "gen-only":
        return lm
    return lm + cls


def lora_config(cfg: TrainConfig) -> LoraConfig:
    """The LoRA adapter settings of a run."""
    return LoraConfig(
        r=cfg.lora_r,
        lora_alpha=cfg.lora_alpha,
        lora_dropout=cfg.lora_dropout,
        target_modules=list(cfg.lora_target_modules),
        bias="none",
        task_type=TaskType.CAUSAL_LM,
    )


def enable_checkpointing(base: nn.Module, every_n_layers: int) -> None:
    """Non-reentrant activation checkpointing under the method name of transformers 5.17 or later."""
    enable = getattr(base, "activation_checkpointing_enable", None) or base.gradient_checkpointing_enable
    enable(gradient_checkpointing_kwargs={"use_reentrant": False}, every_n_layers=every_n_layers)


def build_model(base: nn.Module, cfg: TrainConfig, positive_label: int) -> DualHeadModel:
    """Wrap a loaded base LM with fresh LoRA adapters and a fresh head (trainable per the objective)."""
    base.config.use_cache = False
    if cfg.gradient_checkpointing:
        enable_checkpointing(base, cfg.checkpoint_every_n_layers)
    lm = get_peft_model(base, lora_config(cfg))
    head = ClsHead(base.config.hidden_size, cfg.head_hidden, cfg.head_dropout).to(base.device)
    head.requires_grad_(cfg.objective != "gen-only")
    return DualHeadModel(lm, head, positive_label)


def prepare_bf16_autocast(lm: PeftModel) -> bool:
    """For bf16 weights on CUDA, hand peft's LoRA input casting over to autocast and return True."""
    base = lm.get_base_model()
    if base.device.type != "cuda" or base.dtype != torch.bfloat16:
        return False
    for module in lm.modules():
        if hasattr(module, "cast_input_dtype_enabled"):
            module.cast_input_dtype_enabled = False
    return True
