"""`evaluate judge`: an LLM reads each rationale and scores RLI, kappa_RL and readability (journaled)."""

import json
import re
from pathlib import Path
from typing import Any, Literal

import numpy as np
import polars as pl
from pydantic import Field, ValidationError, field_validator
from sklearn.metrics import cohen_kappa_score

from curate.engines import Engine, GenerationRequest
from evaluate.engine_calls import check_call_settings, run_journaled
from evaluate.io import PredictionRow
from evaluate.judge_prompts import JUDGE_SYSTEM, PROMPTS
from schemas.base import Strict
from schemas.files import atomic_write_bytes, atomic_write_parquet, folder_lock
from schemas.task import TaskSpec
from schemas.teacher_output import THINK_BLOCK, map_label, parse_teacher_output

JUDGMENTS = "judgments.parquet"
JUDGE_JSON = "judge.json"
JSON_OBJECT = re.compile(r"\{[^{}]*\}")
Kind = Literal["rli", "label", "readability"]


class RliAnswer(Strict):
    """Does the rationale support its label?"""

    verdict: Literal["consistent", "inconsistent"]

    @field_validator("verdict", mode="before")
    @classmethod
    def _lower(cls, value: Any) -> Any:
        return value.strip().lower() if isinstance(value, str) else value


class LabelAnswer(Strict):
    """The label the rationale argues for, as the judge wrote it."""

    label: str


class ReadabilityAnswer(Strict):
    """Readability from 1 to 5."""

    score: int = Field(ge=1, le=5)


ANSWERS: dict[str, type[Strict]] = {"rli": RliAnswer, "label": LabelAnswer, "readability": ReadabilityAnswer}


def answer_fields(text: str, kind: Kind) -> dict[str, Any]:
    """The judge's answer as a dict: its JSON object if it wrote one, else the fields read from plain words."""
    body = THINK_BLOCK.sub("", text)
    for match in reversed(JSON_OBJECT.findall(body)):
        try:
            obj = json.loads(match)
        except ValueError:
            continue
        if isinstance(obj, dict):
            return obj
    lowered = body.lower()
    if kind == "rli":
        if re.search(r"\binconsistent\b|\bnot consistent\b", lowered):
            return {"verdict": "inconsistent"}
        return {"verdict": "consistent" if re.search(r"\bconsistent\b", lowered) else body.strip()[:40]}
    if kind == "label":
        said = re.search(r"label\W*[:=]\s*(.+)", body, re.IGNORECASE)
        return {"label": (said.group(1) if said else body).strip()}
    digit = re.search(r"\b([1-9])\b", body)
    return {"score": int(digit.group(1)) if digit else body.strip()[:40]}


def parse_answer(text: str, kind: Kind, task: TaskSpec) -> tuple[Any, str | None]:
    """(value, None) for a valid answer, else (None, reason); never raises."""
    try:
        answer = ANSWERS[kind].model_validate(answer_fields(text, kind))
    except ValidationError as err:
        return None, f"judge answer {text.strip()[:60]!r} is not a valid {kind} answer: {err.errors()[0]['msg']}"
    if isinstance(answer, RliAnswer):
        return answer.verdict, None
    if isinstance(answer, ReadabilityAnswer):
        return answer.score, None
    label = map_label(answer.label, task)
    if label is None:
        label = mentioned_label(answer.label, task)
    return (label, None) if label is not None else (None, f"judge label {answer.label[:40]!r} matches no verbalizer")


def mentioned_label(text: str, task: TaskSpec) -> int | None:
    """The one label whose verbalizer appears verbatim as a word in a sentence (`The label "FALSE" is ...`)."""
    found = {
        label for label, verbal in task.verbalizers.items() if re.search(rf"(?<!\w){re.escape(verbal)}(?!\w)", text)
    }
    return found.pop() if len(found) == 1 else None


class Judgment(Strict):
    """The judge's three answers about one rationale (null + reason where an answer could not be read)."""

    id: str
    verbalized_label: int | None
    rli: Literal["consistent", "inconsistent"] | None
    judge_label: int | None
    readability: int | None
    failures: str | None = Field(description="why an answer is null, '; '-joined")


class JudgeSummary(Strict):
    """`judge.json`: RLI rate, kappa_RL and readability over the judged rationales."""

    judge_engine: str
    judge_model: str
    n_predictions: int
    n_judged: int = Field(description="rows with a non-empty rationale")
    n_labelled: int = Field(description="judged rows whose text states a label (RLI and kappa_RL use these)")
    rli: float | None = Field(description="share of judged rationales the judge calls inconsistent with their label")
    kappa_rl: float | None = Field(description="Cohen's kappa between the judge's label and the verbalized label")
    readability_mean: float | None
    readability_std: float | None
    unreadable_answers: dict[str, int]
    null_reasons: dict[str, str]


def rationale(row: PredictionRow, task: TaskSpec) -> str | None:
    """The explanation part of a generated text (before its Classification line; all of it when it has none)."""
    parsed = parse_teacher_output(row.text, task, "stop", min_explanation_chars=0)
    text = parsed.explanation if parsed.explanation is not None else row.text
    return re.sub(r"^\s*(reasoning|explanation)\s*:\s*", "", text.strip(), flags=re.IGNORECASE) or None


def judge_requests(
    row_id: str, text: str, label: int | None, task: TaskSpec, max_tokens: int
) -> list[GenerationRequest]:
    """The greedy judge prompts for one rationale (RLI only when the text states a label)."""
    labels = " or ".join(task.verbalizers[value] for value in (1, 0))
    stated = None if label is None else task.verbalizers[label]
    values = {"question": task.question, "rationale": text, "label": stated, "labels": labels}
    return [
        GenerationRequest(
            key=f"{row_id}/{kind}",
            messages=[
                {"role": "system", "content": JUDGE_SYSTEM},
                {"role": "user", "content": prompt.format(**values)},
            ],
            seed=0,
            max_tokens=max_tokens,
            temperature=0.0,
        )
        for kind, prompt in PROMPTS.items()
        if kind != "rli" or label is not None
    ]


def judge_predictions(
    rows: list[PredictionRow], task: TaskSpec, engine: Engine, out: Path, max_tokens: int, source: str
) -> JudgeSummary:
    """Ask the judge about every rationale (RLI for those with a verbalized label); write judgments and
    judge.json to `out`."""
    with folder_lock(out, "evaluate judge"):
        check_call_settings(
            out,
            {
                "engine": engine.uri,
                "predictions": source,
                "max_tokens": max_tokens,
                "prompts": PROMPTS,
                "task_spec": task.spec_hash(),
            },
        )
        judged = [(row, text) for row in rows if (text := rationale(row, task))]
        requests = [
            r for row, text in judged for r in judge_requests(row.id, text, row.verbalized_label, task, max_tokens)
        ]
        results = run_journaled(engine, requests, out, "judge")
        judgments = []
        for row, _ in judged:
            answers, failures = {}, []
            for kind in PROMPTS:
                result = results.get(f"{row.id}/{kind}")
                if result is None:  # no RLI for a text without a label
                    answers[kind] = None
                    continue
                value, reason = (
                    (None, f"engine error: {result.error}")
                    if result.finish_reason == "error"
                    else (parse_answer(result.text, kind, task))
                )
                answers[kind] = value
                failures += [f"{kind}: {reason}"] if reason else []
            judgments.append(
                Judgment(
                    id=row.id,
                    verbalized_label=row.verbalized_label,
                    rli=answers["rli"],
                    judge_label=answers["label"],
                    readability=answers["readability"],
                    failures="; ".join(failures) or None,
                )
            )
        summary = summarize_judgments(judgments, len(rows), engine)
        atomic_write_parquet(
            pl.DataFrame([j.model_dump() for j in judgments], schema=judgment_schema()), out / JUDGMENTS
        )
        atomic_write_bytes(out / JUDGE_JSON, summary.model_dump_json(indent=2).encode())
        return summary


def judgment_schema() -> dict[str, pl.DataType]:
    """Parquet column types of `judgments.parquet` (so an empty file still has them)."""
    return {
        "id": pl.String,
        "verbalized_label": pl.Int64,
        "rli": pl.String,
        "judge_label": pl.Int64,
        "readability": pl.Int64,
        "failures": pl.String,
    }


def summarize_judgments(judgments: list[Judgment], n_predictions: int, engine: Engine) -> JudgeSummary:
    """RLI rate, kappa_RL and readability over the answers the judge gave in a readable form."""
    reasons: dict[str, str] = {}
    verdicts = [j.rli for j in judgments if j.rli is not None]
    pairs = np.array(
        [
            (j.judge_label, j.verbalized_label)
            for j in judgments
            if j.judge_label is not None and j.verbalized_label is not None
        ]
    )
    scores = np.array([j.readability for j in judgments if j.readability is not None], dtype=float)
    rli = float(np.mean([v == "inconsistent" for v in verdicts])) if verdicts else None
    kappa_rl = None
    if len(pairs) and len(np.unique(pairs)) > 1:
        kappa_rl = float(cohen_kappa_score(pairs[:, 0], pairs[:, 1]))
    else:
        reasons["kappa_rl"] = "undefined: no readable judge labels, or judge and text give one and the same class"
    if rli is None:
        reasons["rli"] = "no readable RLI verdict"
    if not len(scores):
        reasons["readability"] = "no readable readability score"
    return JudgeSummary(
        judge_engine=engine.uri,
        judge_model=engine.model_id,
        n_predictions=n_predictions,
        n_judged=len(judgments),
        n_labelled=sum(j.verbalized_label is not None for j in judgments),
        rli=rli,
        kappa_rl=kappa_rl,
        readability_mean=float(scores.mean()) if len(scores) else None,
        readability_std=float(scores.std()) if len(scores) else None,
        unreadable_answers={
            "rli": sum(j.verbalized_label is not None for j in judgments) - len(verdicts),
            "label": sum(j.judge_label is None for j in judgments),
            "readability": len(judgments) - len(scores),
        },
        null_reasons=reasons,
    )


def read_judge_summary(path: Path) -> JudgeSummary:
    """Load a `judge.json`; ValueError names the file."""
    try:
        return JudgeSummary.model_validate_json(path.read_text())
    except (OSError, ValueError) as err:
        raise ValueError(f"cannot read judge summary {path}: {err}") from err
