"""Judge answer parsing, journaled resume, and the engine baselines' vote/probability semantics."""

import json

import pytest
from typer.testing import CliRunner

from curate.engines import GenerationResult
from evaluate.baselines import baseline_rows, read_probability
from evaluate.cli import app
from evaluate.io import PredictionRow, read_metrics, read_predictions, write_predictions
from evaluate.judge import JUDGE_JSON, judge_predictions, parse_answer
from schemas.example import Example
from schemas.task import load_task
from tests.eval_fixtures import draw_progress_into

TASK = load_task("clinifact")
runner = CliRunner()


@pytest.mark.parametrize(
    ("kind", "text", "value"),
    [
        ("rli", '{"verdict": "Inconsistent"}', "inconsistent"),
        ("rli", "The rationale is consistent with the label.", "consistent"),
        ("rli", "It is not consistent.", "inconsistent"),
        ("label", 'Answer: {"label": "TRUE"}', 1),
        ("label", "Label: false.", 0),
        ("label", 'The label "FALSE" is the one that argues for the claim.', 0),
        ("readability", '<think>hmm</think>{"score": 4}', 4),
        ("readability", "I would give it 2 out of 5", 2),
    ],
)
def test_judge_answers_are_read_tolerantly(kind, text, value) -> None:
    assert parse_answer(text, kind, TASK) == (value, None)


@pytest.mark.parametrize(
    ("kind", "text"),
    [
        ("rli", "maybe"),
        ("label", '{"label": "perhaps"}'),
        ("label", "TRUE or FALSE, hard to say"),
        ("readability", '{"score": 9}'),
        ("readability", "The text is very readable"),
    ],
)
def test_unreadable_judge_answers_are_null_with_a_reason(kind, text) -> None:
    value, reason = parse_answer(text, kind, TASK)
    assert value is None and reason


ANSWERS = {"rli": '{"verdict": "inconsistent"}', "label": '{"label": "FALSE"}', "readability": '{"score": 3}'}


class ScriptedJudge:
    """Stands in for an engine only to pin the journal/resume semantics: canned answers, optional crash."""

    uri, model_id, supports_constraints = "scripted:judge", "scripted", False

    def __init__(self, crash_after: int | None = None) -> None:
        self.crash_after, self.asked = crash_after, []

    def generate(self, requests):
        for request in requests:
            if self.crash_after is not None and len(self.asked) == self.crash_after:
                raise KeyboardInterrupt("killed")
            self.asked.append(request.key)
            yield GenerationResult(key=request.key, text=ANSWERS[request.key.rsplit("/", 1)[1]])

    def close(self) -> None:
        pass


def predictions(n: int = 4) -> list[PredictionRow]:
    text = "The abstract reports a significant benefit on the primary outcome.\n\nClassification: {}"
    return [
        PredictionRow(
            id=f"e{i}",
            gold=i % 2,
            p_head=0.5,
            text=text.format(TASK.verbalizers[i % 2]),
            verbalized_label=i % 2,
            parse_status="ok",
        )
        for i in range(n)
    ]


def test_a_killed_judge_resumes_without_asking_twice(tmp_path, monkeypatch) -> None:
    cut_off = PredictionRow(
        id="cut",
        gold=1,
        p_head=0.9,
        text="Reasoning: the abstract reports a",
        verbalized_label=None,
        parse_status="truncated",
    )
    rows = [*predictions(), cut_off]
    with pytest.raises(KeyboardInterrupt):
        judge_predictions(rows, TASK, ScriptedJudge(crash_after=5), tmp_path, 32, "p")
    assert not (tmp_path / JUDGE_JSON).exists()
    second, drawn = ScriptedJudge(), draw_progress_into(monkeypatch)
    summary = judge_predictions(rows, TASK, second, tmp_path, 32, "p")
    assert len(second.asked) == 3 * 4 + 2 - 5  # no RLI prompt for the text without a label
    assert "judge" in drawn.getvalue() and "5/5" in drawn.getvalue()  # the bar counts rationales, not prompts
    assert summary.rli == 1.0 and summary.readability_mean == 3.0
    assert (summary.n_judged, summary.n_labelled) == (5, 4)
    assert summary.kappa_rl == pytest.approx(0.0)  # judge says FALSE always; text labels alternate
    with pytest.raises(ValueError, match="other settings"):
        judge_predictions(rows, TASK, second, tmp_path, 64, "p")


def result(key: str, text: str, finish: str = "stop") -> GenerationResult:
    return GenerationResult(key=key, text=text, finish_reason=finish)


def test_self_consistency_votes_exclude_unparseable_runs() -> None:
    examples = [Example(id="a", fields={}, label=1), Example(id="b", fields={}, label=0)]
    said = {
        "TRUE": "Reasoning.\n\nClassification: TRUE",
        "FALSE": "Reasoning.\n\nClassification: FALSE",
        "?": "no label",
    }
    votes = {"a": ["TRUE", "?", "TRUE", "FALSE"], "b": ["?", "?", "?", "?"]}
    results = {f"{e}/{i}": result(f"{e}/{i}", said[v]) for e, vs in votes.items() for i, v in enumerate(vs)}
    rows = baseline_rows(examples, results, TASK, "self-consistency", votes=4)
    assert rows[0].p_head == pytest.approx(2 / 3) and rows[0].verbalized_label == 1
    assert rows[1].p_head is None and rows[1].parse_status == "unparseable"


def test_verbalized_probability_is_read_from_the_answer() -> None:
    assert read_probability("Classification: TRUE\nProbability: 0.83") == pytest.approx(0.83)
    assert read_probability("Probability of TRUE: 70%") == pytest.approx(0.7)
    assert read_probability("Probability: 7") is None and read_probability("no number") is None


def test_judge_and_label_baseline_with_the_real_hf_engine(tiny_model_dir, tmp_path) -> None:
    folder = tmp_path / "preds"
    folder.mkdir()
    write_predictions(predictions(2), folder / "predictions.parquet")
    config = tmp_path / "eval.yaml"
    config.write_text("judge_max_tokens: 6\nbatch_size: 6\n")
    result_ = runner.invoke(
        app, ["judge", str(folder), "--engine", f"hf:{tiny_model_dir}", "--task", "clinifact", "--config", str(config)]
    )
    assert result_.exit_code == 0, result_.output
    summary = json.loads((folder / "judge" / JUDGE_JSON).read_text())
    assert summary["n_judged"] == 2 and summary["judge_engine"] == f"hf:{tiny_model_dir}"
    lines = (folder / "judge" / "calls.jsonl").read_text().splitlines()
    assert len(lines) == 6  # three prompts per rationale, journaled
    # a random tiny model gives unreadable answers: nulls with reasons, not a crash
    assert summary["rli"] is None or 0.0 <= summary["rli"] <= 1.0


def test_label_baseline_with_the_real_hf_engine(tiny_model_dir, clinifact_dir, tmp_path, monkeypatch) -> None:
    out, drawn = tmp_path / "sc", draw_progress_into(monkeypatch)
    args = [
        "baseline",
        "--method",
        "self-consistency",
        "--engine",
        f"hf:{tiny_model_dir}",
        "--task",
        "clinifact",
        "--test",
        str(clinifact_dir / "test_set.csv"),
        "--limit",
        "2",
        "--votes",
        "2",
        "--max-new-tokens",
        "4",
        "--n-bootstrap",
        "0",
        "--out",
        str(out),
    ]
    result_ = runner.invoke(app, args)
    assert result_.exit_code == 0, result_.output
    rows, summary = read_predictions(out), read_metrics(out)
    assert len(rows) == 2 and len((out / "calls.jsonl").read_text().splitlines()) == 4
    assert summary.source["engine"] == f"hf:{tiny_model_dir}"
    assert "self-consistency" in drawn.getvalue() and "2/2" in drawn.getvalue()  # examples, not 4 votes
    assert result_.stdout.startswith("self-consistency on test (n=2): auroc ")
    rerun = runner.invoke(app, args)  # resumes from the journal: nothing new is asked
    assert rerun.exit_code == 0 and len((out / "calls.jsonl").read_text().splitlines()) == 4
