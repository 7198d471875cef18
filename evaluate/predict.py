"""Dual-output inference: one prefill per example gives `h_n` (head probability) and the KV cache that the
explanation is decoded from; prompts are batched by length with left padding.

`h_n` is read from the decoder's final norm during `generate`'s prefill (a forward hook), so neither a second
pass nor `output_hidden_states` over every layer and step is needed.
"""

from collections.abc import Iterator

import torch

from evaluate.config import EvalConfig
from evaluate.io import Document, ModelOutput, PredictionRow
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


def explanation_of(text: str, task: TaskSpec) -> str:
    """The explanation part of a generated text (before its Classification line); the whole text if it has none."""
    parsed = parse_teacher_output(text, task, "stop", min_explanation_chars=0)
    return parsed.explanation if parsed.label is not None and parsed.explanation is not None else text.strip()


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


def document_prompts(
    tokenizer, task: TaskSpec, max_input_tokens: int, items: list[Document | Example]
) -> list[list[int]]:
    """Prompt ids of each item, its document cut to `max_input_tokens` document tokens as in training."""
    return [encode_prompt(tokenizer, task, item.fields, max_input_tokens).ids for item in items]


def student_prompts(loaded, items: list[Document | Example]) -> list[list[int]]:
    """Prompt ids of each item under a loaded checkpoint's tokenizer, task and `max_input_tokens`."""
    return document_prompts(loaded.tokenizer, loaded.task, loaded.config.max_input_tokens, items)


def stop_token_ids(tokenizer, eog_token_id: int) -> list[int]:
    """The tokens that end an explanation: the checkpoint's end-of-generation token and the tokenizer's eos."""
    return sorted({eog_token_id, tokenizer.eos_token_id} - {None})


def hf_batches(loaded, documents: list[Document], config: EvalConfig) -> Iterator[list[ModelOutput]]:
    """Model outputs batch by batch (batches of similar prompt length, so not in input order)."""
    model, tokenizer, task = loaded.model, loaded.tokenizer, loaded.task
    model.eval()
    device = next(model.parameters()).device
    prompts = student_prompts(loaded, documents)
    stop_ids = stop_token_ids(tokenizer, loaded.config.eog_token_id)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else stop_ids[0]
    torch.manual_seed(config.seed)
    for batch in length_batches([len(p) for p in prompts], config.batch_size):
        ids, mask = left_pad([prompts[i] for i in batch], pad_id)
        probs, generated = prefill_and_decode(model, ids.to(device), mask.to(device), stop_ids, pad_id, config)
        yield [
            model_output(documents[i].id, p, new, stop_ids, tokenizer, task)
            for i, p, new in zip(batch, probs.tolist(), generated.tolist(), strict=True)
        ]


def predict(loaded, examples: list[Example], config: EvalConfig) -> list[PredictionRow]:
    """Prediction rows for every example, in input order (a progress bar counts the examples done)."""
    documents = [Document(id=e.id, fields=e.fields) for e in examples]
    outputs: dict[str, ModelOutput] = {}
    with progress("predict", len(examples)) as advance:
        for batch in hf_batches(loaded, documents, config):
            outputs.update((output.id, output) for output in batch)
            advance(len(batch))
    return [PredictionRow(**outputs[e.id].model_dump(), gold=e.label) for e in examples]


def model_output(
    document_id: str, p_head: float, new: list[int], stop_ids: list[int], tokenizer, task: TaskSpec
) -> ModelOutput:
    """One document's output from the head probability and the generated ids (cut at the first stop token)."""
    stops = [k for k, token in enumerate(new) if token in stop_ids]
    text = tokenizer.decode(new[: stops[0]] if stops else new, skip_special_tokens=True)
    label, status = verbalized(text, bool(stops), task)
    return ModelOutput(id=document_id, p_head=p_head, text=text, verbalized_label=label, parse_status=status)
