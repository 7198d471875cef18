"""Parse and validate raw teacher text into (explanation, label); a failure is a value with a reason."""

import json
import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, create_model

from schemas.base import Strict
from schemas.task import TaskSpec

THINK_BLOCK = re.compile(r"<think>.*?</think>", re.DOTALL | re.IGNORECASE)
CLASSIFICATION_LINE = re.compile(r"^[\s>*_#-]*classification[\s*_]*[:：]\s*(.*)$", re.IGNORECASE | re.MULTILINE)
LEADING_VERDICT = re.compile(r"^\s*\**([A-Za-z0-9:]+)\**\s*[.,:;!]\s+(.+)$", re.DOTALL)
LABEL_NOISE = re.compile(r"^[\s*_`'\"\[(<]+|[\s*_`'\".,;!)\]>]+$")


class TeacherOutput(Strict):
    """Parsed teacher text: `ok` with label and explanation, or a failure status and its reason."""

    status: Literal["ok", "unparseable", "invalid", "truncated"]
    reason: str | None = None
    label: int | None = None
    explanation: str | None = None


def normalise_label_text(text: str) -> str:
    """Lower-case a label string and strip markdown, quotes and trailing punctuation."""
    return LABEL_NOISE.sub("", text.strip()).lower()


def label_forms(spec: TaskSpec) -> dict[str, int]:
    """Every accepted spelling of each label: verbalizer, its `code:word` parts, the digit, and aliases."""
    forms: dict[str, int] = {}
    for label, verbal in spec.verbalizers.items():
        names = [verbal, str(label), *verbal.split(":"), *spec.label_aliases.get(label, [])]
        forms.update({normalise_label_text(name): label for name in names if name.strip()})
    return forms


def map_label(text: str, spec: TaskSpec) -> int | None:
    """Map label text through the verbalizers; None when it matches no label or both."""
    forms = label_forms(spec)
    value = normalise_label_text(text)
    if value in forms:
        return forms[value]
    words = re.split(r"[\s,.;()]+", value)
    hits = {forms[w] for w in words[:3] if w in forms}
    return hits.pop() if len(hits) == 1 else None


def repetition_reason(text: str) -> str | None:
    """Detect runaway repetition: a line repeated three times or very few distinct word 4-grams."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    for i in range(len(lines) - 2):
        if lines[i] == lines[i + 1] == lines[i + 2]:
            return f"runaway repetition: the line {lines[i][:40]!r} repeats"
    words = text.split()
    grams = [tuple(words[i : i + 4]) for i in range(len(words) - 3)]
    if len(grams) >= 20 and len(set(grams)) / len(grams) < 0.4:
        return f"runaway repetition: only {len(set(grams))} distinct 4-grams in {len(grams)}"
    return None


def validation_reason(explanation: str, min_chars: int) -> str | None:
    """Why an explanation is unusable (empty, too short, repetitive, not text), or None."""
    if not explanation:
        return "empty explanation before the Classification line"
    if len(explanation) < min_chars:
        return f"explanation too short ({len(explanation)} < {min_chars} characters)"
    printable = sum(ch.isprintable() or ch in "\n\t" for ch in explanation) / len(explanation)
    if printable < 0.95:
        return f"explanation is mostly not text ({printable:.0%} printable)"
    return repetition_reason(explanation)


def from_json(text: str, spec: TaskSpec) -> tuple[str, str] | None:
    """(explanation, label text) from a structured-output JSON object, or None if the text is not one."""
    try:
        obj = json.loads(text)
    except ValueError:
        return None
    if isinstance(obj, dict) and isinstance(obj.get("explanation"), str) and "label" in obj:
        return obj["explanation"], str(obj["label"])
    return None


def leading_verdict(text: str, spec: TaskSpec) -> tuple[str, str] | None:
    """(explanation, label text) for an answer that opens with a verdict word, e.g. 'False. The abstract ...'."""
    match = LEADING_VERDICT.match(text)
    if match and normalise_label_text(match.group(1)) in label_forms(spec):
        return match.group(2), match.group(1)
    return None


def parse_teacher_output(
    text: str, spec: TaskSpec, finish_reason: str | None = "stop", min_explanation_chars: int = 20
) -> TeacherOutput:
    """Drop think blocks, find the last `Classification:` line (else an opening verdict word), map and validate."""
    if finish_reason == "length":
        return TeacherOutput(status="truncated", reason="cut off by the max_tokens limit (finish_reason=length)")
    body = THINK_BLOCK.sub("", text)
    if "<think>" in body.lower():
        return TeacherOutput(status="unparseable", reason="unclosed <think> block")
    structured = from_json(body.strip(), spec)
    if structured is not None:
        explanation, label_text = structured
    elif matches := list(CLASSIFICATION_LINE.finditer(body)):
        explanation, label_text = body[: matches[-1].start()], matches[-1].group(1)
    elif verdict := leading_verdict(body, spec):
        explanation, label_text = verdict
    else:
        return TeacherOutput(status="unparseable", reason="no 'Classification:' line")
    label = map_label(label_text, spec)
    if label is None:
        return TeacherOutput(status="unparseable", reason=f"label {label_text.strip()[:40]!r} matches no verbalizer")
    explanation = re.sub(r"^\s*(reasoning|explanation)\s*:\s*", "", explanation.strip(), flags=re.IGNORECASE)
    reason = validation_reason(explanation, min_explanation_chars)
    if reason:
        return TeacherOutput(status="invalid", reason=reason, label=label, explanation=explanation)
    return TeacherOutput(status="ok", label=label, explanation=explanation)


def teacher_json_model(spec: TaskSpec) -> type[BaseModel]:
    """The pydantic model of a structured teacher answer: an explanation and one of the task's verbalizers."""
    labels = Literal[spec.verbalizers[1], spec.verbalizers[0]]  # type: ignore[valid-type]
    return create_model(
        "TeacherAnswer",
        __config__=ConfigDict(extra="forbid"),
        explanation=(str, Field(min_length=1)),
        label=(labels, ...),
    )


def structured_output_schema(spec: TaskSpec) -> dict:
    """JSON schema the teacher must follow under structured output, derived from `teacher_json_model`."""
    return teacher_json_model(spec).model_json_schema()


def structured_output_regex(spec: TaskSpec, max_chars: int = 500) -> str:
    """Regex for one explanation paragraph (bounded, so a rambling teacher must conclude) and a label line."""
    labels = "|".join(re.escape(spec.verbalizers[label]) for label in (1, 0))
    return rf"[^\n]{{20,{max_chars}}}\n\nClassification: ({labels})"
