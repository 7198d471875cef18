"""One-prefill dual-output inference (`evaluate.predict`) against a naive two-pass baseline (a decoder pass for
the head, then a separate `generate`), on SmolLM2-135M with a fresh LoRA + head. Prints one JSON line."""

import json
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from evaluate.config import EvalConfig
from evaluate.predict import left_pad, length_batches, predict
from schemas.default_model import smollm2_path
from schemas.example import Example
from schemas.task import load_task
from train.config import TrainConfig
from train.data import encode_prompt, eog_token_id
from train.model import build_model


def two_pass(loaded, examples: list[Example], config: EvalConfig) -> list[float]:
    """Head probabilities from a separate decoder pass, then the explanation from a separate `generate`."""
    tok, model = loaded.tokenizer, loaded.model
    prompts = [encode_prompt(tok, loaded.task, e.fields, loaded.config.max_input_tokens).ids for e in examples]
    probs: dict[int, float] = {}
    with torch.no_grad():
        for batch in length_batches([len(p) for p in prompts], config.batch_size):
            ids, mask = left_pad([prompts[i] for i in batch], loaded.pad_id)
            position_ids = (mask.cumsum(-1) - 1).clamp(min=0)
            p = model.head_probs(model.decoder_hidden(ids, mask, position_ids)[:, -1]).tolist()
            probs.update(zip(batch, p, strict=True))
            model.lm.generate(
                input_ids=ids,
                attention_mask=mask,
                max_new_tokens=config.max_new_tokens,
                do_sample=False,
                eos_token_id=[loaded.config.eog_token_id],
                pad_token_id=loaded.pad_id,
                use_cache=True,
            )
    return [probs[i] for i in range(len(examples))]


def main(n: int = 8, words: int = 300, new_tokens: int = 16) -> None:
    torch.manual_seed(0)
    torch.set_num_threads(1)
    path = str(smollm2_path())
    tok = AutoTokenizer.from_pretrained(path)
    base = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
    task = load_task("clinifact")
    model = build_model(base, TrainConfig(head_hidden=64), task.positive_label).eval()
    eog = eog_token_id(tok)
    loaded = SimpleNamespace(
        model=model,
        tokenizer=tok,
        task=task,
        pad_id=tok.pad_token_id,
        config=SimpleNamespace(max_input_tokens=1024, eog_token_id=eog),
    )
    text = "The trial randomised patients to the drug or placebo and measured survival at one year. "
    examples = [
        Example(
            id=str(i),
            fields={"claim": "The drug improves survival.", "article_abstract": " ".join([text] * (words // 15 + i))},
            label=i % 2,
        )
        for i in range(n)
    ]
    config = EvalConfig(max_new_tokens=new_tokens, batch_size=4)
    predict(loaded, examples[:2], config)  # warm-up
    began = time.perf_counter()
    one = [row.p_head for row in predict(loaded, examples, config)]
    one_pass_s = time.perf_counter() - began
    began = time.perf_counter()
    two = two_pass(loaded, examples, config)
    two_pass_s = time.perf_counter() - began
    print(
        json.dumps(
            {
                "benchmark": "evaluate_predict",
                "examples": n,
                "max_new_tokens": new_tokens,
                "prompt_tokens_mean": sum(len(encode_prompt(tok, task, e.fields, 1024).ids) for e in examples) / n,
                "one_prefill_s": round(one_pass_s, 3),
                "two_pass_s": round(two_pass_s, 3),
                "speedup": round(two_pass_s / one_pass_s, 3),
                "max_abs_p_diff": max(abs(a - b) for a, b in zip(one, two, strict=True)),
            }
        )
    )


if __name__ == "__main__":
    main()
