"""Parsing and validation of raw teacher text."""

import json

import pytest

from schemas import load_task, parse_teacher_output
from schemas.teacher_output import structured_output_schema

CLINIFACT = load_task("clinifact")
LCD = load_task("lcd-30d")
EXPLANATION = "The abstract reports a significant reduction in the primary outcome versus placebo."


def parse(text: str, task=CLINIFACT, finish_reason: str = "stop"):
    return parse_teacher_output(text, task, finish_reason, min_explanation_chars=20)


@pytest.mark.parametrize(
    "label_text, expected",
    [
        ("TRUE", 1),
        ("true", 1),
        ("**TRUE**", 1),
        ("True.", 1),
        ('"FALSE"', 0),
        ("false", 0),
        ("1", 1),
        ("0", 0),
        ("FALSE (the results were not significant)", 0),
        ("<TRUE>", 1),
    ],
)
def test_verbalizer_variants_map_to_labels(label_text: str, expected: int) -> None:
    out = parse(f"{EXPLANATION}\n\nClassification: {label_text}")
    assert out.status == "ok" and out.label == expected and out.explanation == EXPLANATION


@pytest.mark.parametrize("label_text, expected", [("1:death", 1), ("death", 1), ("0:alive", 0), ("Alive", 0), ("1", 1)])
def test_lcd_verbalizers(label_text: str, expected: int) -> None:
    assert parse(f"{EXPLANATION}\nClassification: {label_text}", LCD).label == expected


def test_think_block_is_dropped_and_last_classification_line_wins() -> None:
    text = f"<think>Maybe Classification: FALSE?</think>\n{EXPLANATION}\nClassification: FALSE\nClassification: TRUE"
    out = parse(text)
    assert out.label == 1 and "think" not in out.explanation and "Maybe" not in out.explanation


def test_markdown_heading_and_reasoning_prefix() -> None:
    out = parse(f"Reasoning: {EXPLANATION}\n\n**Classification:** TRUE")
    assert out.status == "ok" and out.explanation == EXPLANATION


def test_missing_label_line_is_unparseable() -> None:
    out = parse("I think the abstract supports the claim.")
    assert out.status == "unparseable" and "Classification" in out.reason


def test_unknown_label_is_unparseable() -> None:
    out = parse(f"{EXPLANATION}\nClassification: MAYBE")
    assert out.status == "unparseable" and "MAYBE" in out.reason


def test_both_labels_in_line_is_unparseable() -> None:
    assert parse(f"{EXPLANATION}\nClassification: TRUE or FALSE").status == "unparseable"


def test_cut_off_answer_is_truncated() -> None:
    out = parse(f"{EXPLANATION}\nClassification: TRUE", finish_reason="length")
    assert out.status == "truncated"


def test_unclosed_think_block() -> None:
    assert parse("<think>I should consider the abstract\nClassification: TRUE").status == "unparseable"


def test_short_explanation_is_invalid() -> None:
    out = parse("Supported.\nClassification: TRUE")
    assert out.status == "invalid" and "too short" in out.reason and out.label == 1


def test_runaway_repetition_is_invalid() -> None:
    looping = "\n".join(["The drug works."] * 4)
    assert "repetition" in parse(f"{looping}\nClassification: TRUE").reason
    words = " ".join(["the trial shows benefit"] * 12)
    assert parse(f"{words}\nClassification: TRUE").status == "invalid"


def test_binary_garbage_is_invalid() -> None:
    garbage = "\x00\x01\x02\x03" * 10 + "abc"
    assert parse(f"{garbage}\nClassification: TRUE").status == "invalid"


def test_structured_json_output() -> None:
    out = parse(json.dumps({"explanation": EXPLANATION, "label": "FALSE"}))
    assert out.status == "ok" and out.label == 0
    schema = structured_output_schema(CLINIFACT)
    assert schema["properties"]["label"]["enum"] == ["TRUE", "FALSE"] and schema["additionalProperties"] is False


def test_render_target_strips_eog_marker() -> None:
    target = CLINIFACT.render_target(EXPLANATION, 1)
    assert target.endswith("Classification: TRUE") and target.startswith(EXPLANATION)
    assert parse(target).label == 1


@pytest.mark.parametrize(
    "text, label",
    [
        (f"False. {EXPLANATION}", 0),
        (f"No, {EXPLANATION}", 0),
        (f"**TRUE**: {EXPLANATION}", 1),
        (f"Yes, {EXPLANATION}", 1),
    ],
)
def test_opening_verdict_without_classification_line(text: str, label: int) -> None:
    out = parse(text)
    assert out.status == "ok" and out.label == label and out.explanation == EXPLANATION


def test_opening_word_that_is_no_verdict_stays_unparseable() -> None:
    assert parse(f"Overall, {EXPLANATION}").status == "unparseable"
    assert parse(f"The answer is: {EXPLANATION}").status == "unparseable"
