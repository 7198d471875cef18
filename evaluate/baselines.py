"""The paper's inference-only baselines: verbalized probability, label prediction and self-consistency."""

import re
from typing import Literal

import numpy as np

from curate.engines import Engine, GenerationRequest, GenerationResult, trial_seed
from evaluate.config import EvalConfig
from evaluate.io import PredictionRow
from schemas.example import Example
from schemas.task import TaskSpec
from schemas.teacher_output import parse_teacher_output
from schemas.truncation import fit_document

Method = Literal["verbalized-prob", "label", "self-consistency"]
PROBABILITY_LINE = re.compile(r"probability[^:\n]*[:：]\s*([0-9]*\.?[0-9]+)\s*(%?)", re.IGNORECASE)
PROBABILITY_INSTRUCTION = (
    '\n\nAfter the Classification line, add one last line of the form "Probability: <p>", where <p> is your'
    " probability, between 0 and 1, that the answer is {positive}."
)


def baseline_requests(
    examples: list[Example], task: TaskSpec, engine: Engine, method: Method, config: EvalConfig
) -> list[GenerationRequest]:
    """The engine requests of a baseline: one per example, or `votes` seeded samples for self-consistency."""
    requests = []
    for example in examples:
        document, _ = fit_document(example, task, engine.count_tokens, engine.truncate_to_tokens)
        messages = task.teacher_messages(document)
        if method == "verbalized-prob":
            extra = PROBABILITY_INSTRUCTION.format(positive=task.verbalizers[task.positive_label])
            messages[-1] = {**messages[-1], "content": messages[-1]["content"] + extra}
        votes = config.votes if method == "self-consistency" else 1
        temperature = config.vote_temperature if method == "self-consistency" else config.temperature
        requests += [
            GenerationRequest(
                key=f"{example.id}/{vote}",
                messages=messages,
                seed=trial_seed(config.seed, example.id, vote),
                max_tokens=config.max_new_tokens,
                temperature=temperature,
                top_p=config.top_p,
            )
            for vote in range(votes)
        ]
    return requests


def read_label(result: GenerationResult, task: TaskSpec) -> tuple[int | None, str]:
    """The label a completion states and its parse status (ok, unparseable, truncated)."""
    if result.finish_reason == "error":
        return None, "unparseable"
    parsed = parse_teacher_output(result.text, task, "stop", min_explanation_chars=0)
    if parsed.label is not None:
        return parsed.label, "ok"
    return None, "truncated" if result.finish_reason == "length" else "unparseable"


def read_probability(text: str) -> float | None:
    """The last `Probability: p` (or `p%`) in a completion, if it lies in [0, 1]."""
    matches = PROBABILITY_LINE.findall(text)
    if not matches:
        return None
    number, percent = matches[-1]
    value = float(number) / (100 if percent else 1)
    return value if 0.0 <= value <= 1.0 else None


def baseline_rows(
    examples: list[Example], results: dict[str, GenerationResult], task: TaskSpec, method: Method, votes: int
) -> list[PredictionRow]:
    """Prediction rows from the completions; self-consistency's probability is the share of positive votes among
    the runs that gave a label (unparseable runs are excluded per example)."""
    rows = []
    for example in examples:
        if method == "self-consistency":
            runs = [results[f"{example.id}/{vote}"] for vote in range(votes)]
            labels = [label for label, _ in (read_label(run, task) for run in runs) if label is not None]
            p = float(np.mean(labels)) if labels else None
            verbal = None if p is None else int(p >= 0.5)
            text, status = runs[0].text, "ok" if labels else "unparseable"
        else:
            result = results[f"{example.id}/0"]
            verbal, status = read_label(result, task)
            text = result.text
            p = read_probability(text) if method == "verbalized-prob" else None if verbal is None else float(verbal)
        rows.append(
            PredictionRow(
                id=example.id, gold=example.label, p_head=p, text=text, verbalized_label=verbal, parse_status=status
            )
        )
    return rows
