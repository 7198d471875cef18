"""The embedded engine: transformers `generate`, batched by prompt length, sampling seeded per request."""

import time
from collections.abc import Iterator, Sequence

import torch
from transformers import (
    AutoModelForCausalLM,
    BatchEncoding,
    GenerationConfig,
    LogitsProcessor,
    LogitsProcessorList,
)

from curate.engines.base import BatchStreams, ClosesOnExit, EngineError, GenerationRequest, GenerationResult
from curate.engines.tokens import CountsTokens, load_tokenizer, prompt_ids
from schemas.truncation import TokenizerCounter


class SeededSampler(LogitsProcessor):
    """Temperature, top-p, then one draw from each row's own generator; greedy decoding takes the drawn token.

    A row's draws depend only on its request's seed, so a request samples the same text in any batch.
    Rows with temperature 0 keep their logits (plain greedy).
    """

    def __init__(self, requests: Sequence[GenerationRequest]) -> None:
        self.temperature = torch.tensor([r.temperature if r.temperature > 0 else 1.0 for r in requests])
        self.top_p = torch.tensor([r.top_p for r in requests])
        self.greedy = torch.tensor([r.temperature <= 0 for r in requests])
        self.generators = [torch.Generator().manual_seed(r.seed) for r in requests]

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        device = scores.device
        probs = torch.softmax(scores.float() / self.temperature.to(device)[:, None], dim=-1)
        sorted_probs, order = probs.sort(dim=-1, descending=True, stable=True)
        outside_nucleus = sorted_probs.cumsum(-1) - sorted_probs >= self.top_p.to(device)[:, None]
        cdf = sorted_probs.masked_fill(outside_nucleus, 0.0).cumsum(-1)
        draws = torch.stack([torch.rand((), generator=g) for g in self.generators]).to(device)
        picks = torch.searchsorted(cdf, (draws * cdf[:, -1])[:, None]).clamp_max(cdf.shape[-1] - 1)
        sampled = order.gather(-1, picks).squeeze(-1)
        chosen = torch.where(self.greedy.to(device), scores.argmax(-1), sampled)
        return torch.full_like(scores, float("-inf")).scatter_(-1, chosen[:, None], 0.0)


def pick_device_and_dtype() -> tuple[torch.device, torch.dtype]:
    """bf16 on GPU; fp32 on CPU: its logits do not depend on the batch, so a seed gives the same text in any batch.

    bf16 on CPU was ~1.4x faster but changed every sampled text between a batch of 8 and alone (0/8 equal vs 8/8).
    """
    if torch.cuda.is_available():
        return torch.device("cuda"), torch.bfloat16
    return torch.device("cpu"), torch.float32


class HFEngine(BatchStreams, CountsTokens, ClosesOnExit):
    """transformers `generate` with left padding; requests sorted by prompt length into chunks of `batch_size`."""

    supports_constraints = False

    def __init__(
        self,
        path: str,
        *,
        uri: str,
        model_id: str,
        batch_size: int = 16,
        tokenizer: str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        self.uri, self.model_id, self.batch_size = uri, model_id, batch_size
        self.tokenizer = load_tokenizer(tokenizer or path)
        try:
            self.device, default_dtype = pick_device_and_dtype()
            self.model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype or default_dtype).to(self.device).eval()
        except (OSError, ValueError) as err:
            raise EngineError(f"cannot load the model {path!r}: {err}") from err
        self.eos_ids = eos_token_ids(self.model.generation_config.eos_token_id, self.tokenizer.eos_token_id)
        self.pad_id = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else self.eos_ids[0]
        self.model.generation_config = GenerationConfig(eos_token_id=self.eos_ids, pad_token_id=self.pad_id)
        self.counter = TokenizerCounter(self.tokenizer)

    def generate(self, requests: Sequence[GenerationRequest]) -> Iterator[GenerationResult]:
        """Yield the results of each length-sorted batch as soon as that batch is done."""
        if any(r.constraint is not None for r in requests):
            raise EngineError(
                f"{self.uri} does not support structured-output constraints: use a vllm: or openai: engine"
            )
        encoded = sorted(((r, prompt_ids(self.tokenizer, r.messages)) for r in requests), key=lambda p: len(p[1]))
        for start in range(0, len(encoded), self.batch_size):
            yield from self._generate_batch(encoded[start : start + self.batch_size])

    @torch.inference_mode()
    def _generate_batch(self, batch: list[tuple[GenerationRequest, list[int]]]) -> Iterator[GenerationResult]:
        requests = [r for r, _ in batch]
        inputs = left_pad([ids for _, ids in batch], self.pad_id).to(self.device)
        config = GenerationConfig(
            max_new_tokens=max(r.max_tokens for r in requests),
            do_sample=False,
            eos_token_id=self.eos_ids,
            pad_token_id=self.pad_id,
        )
        started = time.perf_counter()
        output = self.model.generate(
            **inputs, generation_config=config, logits_processor=LogitsProcessorList([SeededSampler(requests)])
        )
        latency = (time.perf_counter() - started) / len(batch)
        new_tokens = output[:, inputs["input_ids"].shape[1] :].tolist()
        for (request, ids), generated in zip(batch, new_tokens, strict=True):
            yield self._result(request, len(ids), generated[: request.max_tokens], latency)

    def _result(
        self, request: GenerationRequest, prompt_len: int, generated: list[int], latency: float
    ) -> GenerationResult:
        """Cut at the first end-of-generation token: 'stop' if one came within max_tokens, else 'length'."""
        end = next((i for i, token in enumerate(generated) if token in self.eos_ids), None)
        text_ids = generated if end is None else generated[:end]
        return GenerationResult(
            key=request.key,
            text=self.tokenizer.decode(text_ids, skip_special_tokens=True),
            prompt_tokens=prompt_len,
            completion_tokens=len(generated) if end is None else end + 1,
            finish_reason="length" if end is None else "stop",
            latency_s=latency,
        )

    def close(self) -> None:
        del self.model
        if torch.cuda.is_available():
            torch.cuda.empty_cache()


def left_pad(rows: list[list[int]], pad_id: int) -> BatchEncoding:
    """Left-pad id lists into `input_ids` and `attention_mask` tensors."""
    width = max(len(ids) for ids in rows)
    return BatchEncoding(
        {
            "input_ids": torch.tensor([[pad_id] * (width - len(ids)) + ids for ids in rows]),
            "attention_mask": torch.tensor([[0] * (width - len(ids)) + [1] * len(ids) for ids in rows]),
        }
    )


def eos_token_ids(*values: int | list[int] | None) -> list[int]:
    """Every end-of-generation id from the generation config and the tokenizer, in order, without repeats."""
    ids: list[int] = []
    for value in values:
        for token in [value] if isinstance(value, int) else value or []:
            if token not in ids:
                ids.append(token)
    if not ids:
        raise EngineError("the model defines no eos token: set eos_token_id in its generation_config.json")
    return ids
