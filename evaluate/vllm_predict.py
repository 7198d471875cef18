"""Dual-output prediction on vLLM: the checkpoint's LoRA on a generate instance for the explanation, and on a pooling
instance (last-token hidden state, no normalisation) for `h_n`, which the checkpoint's head turns into P(positive).

That costs two prefills per document: vLLM 0.32 returns no hidden state from a generate call (its
`extract_hidden_states` path is a GPU speculative-decoding method that writes auxiliary layers through a KV
connector, not the final-norm state). Prompts are the trainer's token ids, so `h_n` sits on the same token.
"""

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file

from evaluate.config import EvalConfig
from evaluate.io import Document, ModelOutput
from evaluate.predict import document_prompts, model_output, stop_token_ids
from schemas.task import TaskSpec
from train.checkpoint import ADAPTER_CONFIG, HEAD, DualHeadConfig, load_tokenizer
from train.model import ClsHead

LORA_RANKS = (1, 8, 16, 32, 64, 128, 256, 320, 512)  # the ranks vLLM's LoRA manager accepts
CHUNK = 64  # documents per generate + embed call: one journal write each


def vllm_defaults() -> dict[str, str]:
    """Environment vLLM reads at import: engine in this process (seconds to start, not ~20 s), warnings-only logs,
    and on CPU a 1 GiB KV cache (otherwise it claims 90 % of RAM) with OpenMP on every usable core."""
    cores = sorted(os.sched_getaffinity(0))
    cpu = {
        "VLLM_CPU_KVCACHE_SPACE": "1",
        "VLLM_CPU_OMP_THREADS_BIND": ",".join(map(str, cores)),
        "OMP_NUM_THREADS": str(len(cores)),
    }
    common = {"VLLM_ENABLE_V1_MULTIPROCESSING": "0", "VLLM_LOGGING_LEVEL": "WARNING"}
    return common if torch.cuda.is_available() else {**common, **cpu}


def lora_rank(checkpoint: Path) -> int:
    """The smallest rank vLLM accepts that holds the adapter's `r`."""
    r = json.loads((checkpoint / ADAPTER_CONFIG).read_text())["r"]
    return next(rank for rank in LORA_RANKS if rank >= r)


class VLLMPredictor:
    """A checkpoint on two vLLM instances (generate + pooling) sharing one LoRA adapter, and its head on CPU."""

    def __init__(self, checkpoint: Path, config: DualHeadConfig, eval_config: EvalConfig, documents: list[Document]):
        """Start both engines with a context that fits the longest prompt of `documents` plus the explanation."""
        for name, value in vllm_defaults().items():
            os.environ.setdefault(name, value)
        try:
            from vllm import LLM, SamplingParams
            from vllm.config import PoolerConfig
            from vllm.lora.request import LoRARequest
        except (ImportError, RuntimeError, OSError) as err:
            raise ValueError(
                f"--engine vllm needs a working vLLM ({err}): pip install -e '.[gpu]' on a GPU machine, '.[cpu]' on CPU"
            ) from err
        self.config, self.task = config, TaskSpec.model_validate(config.task_spec)
        self.tokenizer = load_tokenizer(config.base_model)
        self.stop_ids = stop_token_ids(self.tokenizer, config.eog_token_id)
        max_prompt_len = max(len(ids) for ids in self.prompts(documents))
        self.lora = LoRARequest("clsgen", 1, str(checkpoint))
        common: dict[str, Any] = {
            "model": config.base_model,
            "enable_lora": True,
            "max_lora_rank": lora_rank(checkpoint),
            "dtype": "bfloat16" if torch.cuda.is_available() else "float32",
            "max_model_len": max_prompt_len + eval_config.max_new_tokens,
            "seed": eval_config.seed,
            "enforce_eager": not torch.cuda.is_available(),
        }
        self.generator = LLM(**common)
        pooler = PoolerConfig(seq_pooling_type="LAST", use_activation=False)
        self.pooler = LLM(
            **common, runner="pooling", convert="embed", pooler_config=pooler, enable_chunked_prefill=False
        )
        self.sampling = SamplingParams(
            max_tokens=eval_config.max_new_tokens,
            temperature=eval_config.temperature,
            top_p=eval_config.top_p,
            stop_token_ids=self.stop_ids,
            seed=eval_config.seed,
        )
        self.head = ClsHead(config.hidden_size, config.head_hidden, config.head_dropout)
        self.head.load_state_dict(load_file(checkpoint / HEAD), strict=True)
        self.head.eval()

    def prompts(self, documents: list[Document]) -> list[list[int]]:
        """The trainer's prompt ids of each document."""
        return document_prompts(self.tokenizer, self.task, self.config.max_input_tokens, documents)

    @torch.no_grad()
    def head_probs(self, hidden: list[list[float]]) -> list[float]:
        """P(positive label) of each last-token hidden state."""
        logits = self.head(torch.tensor(hidden, dtype=torch.float32))
        return logits.softmax(-1)[:, self.task.positive_label].tolist()

    def outputs(self, documents: list[Document]) -> list[ModelOutput]:
        """Model outputs of `documents`, in their order."""
        from vllm import TokensPrompt

        prompts = [TokensPrompt(prompt_token_ids=ids) for ids in self.prompts(documents)]
        generated = self.generator.generate(prompts, self.sampling, lora_request=self.lora, use_tqdm=False)
        pooled = self.pooler.embed(prompts, lora_request=self.lora, use_tqdm=False)
        probs = self.head_probs([o.outputs.embedding for o in pooled])
        rows = []
        for document, p, result in zip(documents, probs, generated, strict=True):
            new = list(result.outputs[0].token_ids)
            if result.outputs[0].finish_reason == "stop" and not set(new) & set(self.stop_ids):
                new.append(self.stop_ids[0])  # stopped on a stop token vLLM left out: finished, not truncated
            rows.append(model_output(document.id, p, new, self.stop_ids, self.tokenizer, self.task))
        return rows

    def batches(self, documents: list[Document]) -> Iterator[list[ModelOutput]]:
        """Outputs chunk by chunk, so a caller can journal each chunk as it is done."""
        for start in range(0, len(documents), CHUNK):
            yield self.outputs(documents[start : start + CHUNK])
