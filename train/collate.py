"""Micro-batches: examples packed into one flat sequence with restarting position ids (no padding)."""

from dataclasses import dataclass

import torch

from train.data import Encoded

IGNORE = -100


@dataclass
class Packed:
    """A flat `[1, T]` micro-batch of one or more examples, with where each `h_n` and target token lies."""

    input_ids: torch.Tensor  # [1, T]
    position_ids: torch.Tensor  # [1, T], restarting at 0 for each example
    targets: torch.Tensor  # [T], next-token target at each position, IGNORE outside target tokens
    example_of: torch.Tensor  # [T], index (within the pack) of the example each position belongs to
    h_index: torch.Tensor  # [n], flat position of each example's last prompt token
    labels: torch.Tensor  # [n], gold class of each example

    def to(self, device: torch.device) -> "Packed":
        """The same micro-batch on `device`."""
        return Packed(*(getattr(self, f).to(device) for f in self.__dataclass_fields__))


def pack(examples: list[Encoded]) -> Packed:
    """Concatenate examples; position t predicts token t+1 only inside the same example's target."""
    ids, positions, targets, example_of, h_index = [], [], [], [], []
    for i, ex in enumerate(examples):
        offset, n = len(ids), len(ex.input_ids)
        ids += ex.input_ids
        positions += range(n)
        targets += [IGNORE] * (ex.prompt_len - 1) + ex.input_ids[ex.prompt_len :] + [IGNORE]
        example_of += [i] * n
        h_index.append(offset + ex.prompt_len - 1)
    return Packed(
        input_ids=torch.tensor([ids]),
        position_ids=torch.tensor([positions]),
        targets=torch.tensor(targets),
        example_of=torch.tensor(example_of),
        h_index=torch.tensor(h_index),
        labels=torch.tensor([ex.label for ex in examples]),
    )


def plan_micro_batches(examples: list[int], lengths: list[int], pack_tokens: int) -> list[list[int]]:
    """Group example indices into packs of at most `pack_tokens` tokens, longest first (first-fit decreasing)."""
    bins: list[list[int]] = []
    room: list[int] = []
    for idx in sorted(examples, key=lambda i: (-lengths[i], i)):
        slot = next((b for b, free in enumerate(room) if free >= lengths[idx]), None)
        if slot is None:
            bins.append([idx])
            room.append(pack_tokens - lengths[idx])
        else:
            bins[slot].append(idx)
            room[slot] -= lengths[idx]
    return bins
