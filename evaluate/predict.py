"""Dual-output inference: one prefill per example gives `h_n` (head probability) and the KV cache that the
explanation is decoded from; prompts are batched by length with left padding.

`h_n` is read from the decoder's final norm during `generate`'s prefill (a forward hook), so neither a second
pass nor `output_hidden_states` over every layer and step is needed.
"""

from collections.abc import Iterator

import torch

from evaluate.config import EvalConfig
from evaluate.io import PredictionRow
from evaluate.progress import progress
from schemas.example import Example
from schemas.task import TaskSpec
from schemas.teacher_output import parse_teacher_output
from train.data import encode_prompt


def length_batches(lengths: list[int], batch_size: int) -> Iterator[list[int]]:
    """Indices grouped into batches of similar length (sorted, so padding stays small)."""
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    for start in range(0, len(order), batch_size):
        yield order[start : start + batch_size]


def left_pad(prompts: list[list[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Left-padded ids and their attention mask, so every prompt's last token is at position -1."""
    width = max(len(p) for p in prompts)
    ids = torch.tensor([[pad_id] * (width - len(p)) + p for p in prompts])
    mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in prompts])
    return ids, mask


def verbalized(text: str, finished: bool, task: TaskSpec) -> tuple[int | None, str]:
    """The label the text states and the parse status: ok, truncated (hit max tokens) or unparseable."""
    label = parse_teacher_output(text, task, "stop", min_explanation_chars=0).label
    if label is not None:
        return label, "ok"
    return None, "unparseable" if finished else "truncated"


@torch.no_grad()
def prefill_and_decode(
    model, ids: torch.Tensor, mask: torch.Tensor, stop_ids: list[int], pad_id: int, config: EvalConfig
) -> tuple[torch.Tensor, torch.Tensor]:
    """Head probabilities `[B]` and generated ids `[B, T]` from one `generate` call (one prefill)."""
    captured: list[torch.Tensor] = []
    norm = model.lm.get_base_model().get_decoder().norm
    hook = norm.register_forward_hook(lambda _m, _i, out: captured.append(out[:, -1]) if not captured else None)
    sampling = {"do_sample": False}
    if config.temperature:
        sampling = {"do_sample": True, "temperature": config.temperature, "top_p": config.top_p}
    try:
        with model.precision_context():
            out = model.lm.generate(
                input_ids=ids,
                attention_mask=mask,
                max_new_tokens=config.max_new_tokens,
                eos_token_id=stop_ids,
                pad_token_id=pad_id,
                use_cache=True,
                **sampling,
            )
    finally:
        hook.remove()
    return model.head_probs(captured[0]).float().cpu(), out[:, ids.shape[1] :].cpu()


def resolve_device(device: str) -> str:
    """`auto` is CUDA when torch sees a GPU, else CPU; any other torch device name passes through."""
    if device != "auto":
        return device
    return "cuda" if torch.cuda.is_available() else "cpu"


def student_prompts(loaded, examples: list[Example]) -> list[list[int]]:
    """Prompt ids of each example, its document cut to the checkpoint's `max_input_tokens` as in training."""
    limit = loaded.config.max_input_tokens
    return [encode_prompt(loaded.tokenizer, loaded.task, e.fields, limit).ids for e in examples]


def predict(loaded, examples: list[Example], config: EvalConfig) -> list[PredictionRow]:
    """Prediction rows for every example, in input order (a progress bar counts the examples done)."""
    model, tokenizer, task = loaded.model, loaded.tokenizer, loaded.task
    model.eval()
    device = next(model.parameters()).device
    prompts = student_prompts(loaded, examples)
    stop_ids = sorted({loaded.config.eog_token_id, tokenizer.eos_token_id} - {None})
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else stop_ids[0]
    torch.manual_seed(config.seed)
    rows: dict[int, PredictionRow] = {}
    with progress("predict", len(examples)) as advance:
        for batch in length_batches([len(p) for p in prompts], config.batch_size):
            ids, mask = left_pad([prompts[i] for i in batch], pad_id)
            probs, generated = prefill_and_decode(model, ids.to(device), mask.to(device), stop_ids, pad_id, config)
            for i, p, new in zip(batch, probs.tolist(), generated.tolist(), strict=True):
                rows[i] = prediction_row(examples[i], p, new, stop_ids, tokenizer, task)
            advance(len(batch))
    return [rows[i] for i in range(len(examples))]


def prediction_row(
    example: Example, p_head: float, new: list[int], stop_ids: list[int], tokenizer, task: TaskSpec
) -> PredictionRow:
    """One output row from the head probability and the generated ids (cut at the first stop token)."""
    stops = [k for k, token in enumerate(new) if token in stop_ids]
    text = tokenizer.decode(new[: stops[0]] if stops else new, skip_special_tokens=True)
    label, status = verbalized(text, bool(stops), task)
    return PredictionRow(
        id=example.id, gold=example.label, p_head=p_head, text=text, verbalized_label=label, parse_status=status
    )
