"""`curate generate --dry-run` plans with the teacher's tokenizer alone, and the batched fit equals fit_document."""

import subprocess
import sys
from pathlib import Path

import pytest

from curate.engines import EngineError, open_counter
from curate.engines.tokens import CharEstimateCounter, load_tokenizer
from curate.generation.run import planned_tokens
from schemas.inputs import input_mapping, load_examples
from schemas.task import load_task
from schemas.truncation import BackendCounter, TokenizerCounter, fit_counted, fit_document, fit_in_chunks

REPO = Path(__file__).resolve().parents[1]
SMALL_BUDGET = load_task("clinifact").model_copy(update={"max_input_tokens": 300})


def fit_documents(rows, task, counter) -> list[tuple[str, bool]]:
    """(document, cut) of each row by the batched fit."""
    return [(document, cut) for document, cut, _ in fit_counted(rows, task, counter)]


@pytest.fixture(scope="module")
def clinifact_rows(clinifact_dir: Path):
    task = load_task("clinifact")
    return load_examples(clinifact_dir / "validation_set.csv", task, input_mapping(task, None), "validation")[:200]


def test_the_batched_fit_equals_fit_document_on_clinifact_rows(clinifact_rows, smollm2_dir: Path) -> None:
    counter = open_counter(f"vllm:{smollm2_dir}")
    one_by_one = [fit_document(ex, SMALL_BUDGET, counter.count, counter.truncate) for ex in clinifact_rows]
    assert fit_documents(clinifact_rows, SMALL_BUDGET, counter) == one_by_one
    assert 0 < sum(cut for _, cut in one_by_one) < len(one_by_one)  # both branches are exercised


def test_the_tokenizer_json_counter_counts_and_cuts_as_transformers_does(clinifact_rows, smollm2_dir: Path) -> None:
    backend, full = open_counter(f"hf:{smollm2_dir}"), TokenizerCounter(load_tokenizer(str(smollm2_dir)))
    assert isinstance(backend, BackendCounter)
    rows = clinifact_rows[:40]  # transformers' per-call path is slow: 40 rows keep both branches
    texts = [SMALL_BUDGET.render_document(ex.fields) for ex in rows]
    assert backend.count_many(texts) == full.count_many(texts) == [full.count(text) for text in texts]
    assert [backend.truncate(text, 37) for text in texts] == [full.truncate(text, 37) for text in texts]
    fitted = fit_documents(rows, SMALL_BUDGET, backend)
    assert fitted == fit_documents(rows, SMALL_BUDGET, full) and 0 < sum(cut for _, cut in fitted) < len(rows)


def test_chunked_fits_and_the_prompt_budget_equal_one_document_at_a_time(clinifact_rows, smollm2_dir: Path) -> None:
    counter, rows = open_counter(f"hf:{smollm2_dir}"), clinifact_rows[:80]
    fitted = fit_counted(rows, SMALL_BUDGET, counter)
    assert list(fit_in_chunks(rows, SMALL_BUDGET, counter, size=7)) == fitted
    assert [tokens for document, _, tokens in fitted] == [counter.count(document) for document, _, _ in fitted]
    prompts = ["\n".join(m["content"] for m in SMALL_BUDGET.teacher_messages(document)) for document, _, _ in fitted]
    joined = counter.count_many(prompts)  # the prompt tokenized whole: tokens may merge across a cut document's end
    truncated, budget = planned_tokens(SMALL_BUDGET, rows, counter)
    whole = next(i for i, (_, cut, _) in enumerate(fitted) if not cut)
    fixed = joined[whole] - fitted[whole][2]  # the prompt's fixed text, as tokenized around an uncut document
    assert truncated == sum(cut for _, cut, _ in fitted)
    assert budget == len(fitted) * fixed + sum(tokens for _, _, tokens in fitted)
    assert [j - t for j, (_, cut, t) in zip(joined, fitted, strict=True) if not cut] == [fixed] * (
        len(fitted) - truncated
    )
    assert 0 < truncated < len(rows) and abs(budget - sum(joined)) <= truncated // 10  # seen: 7 over 167 cut


def test_count_many_equals_count(smollm2_dir: Path) -> None:
    counter = open_counter(f"hf:{smollm2_dir}")
    texts = ["", "Aspirin helps.", "  spaced\n\nlines  ", "é" * 30]
    assert counter.count_many(texts) == [counter.count(text) for text in texts]
    assert counter.count_many([]) == []


def test_open_counter_reads_a_tokenizer_only(smollm2_dir: Path, tiny_model_dir: Path) -> None:
    assert isinstance(open_counter("openai:http://127.0.0.1:9/v1#teacher"), CharEstimateCounter)  # no request sent
    exact = open_counter("openai:http://127.0.0.1:9/v1#teacher", str(tiny_model_dir))
    assert isinstance(exact, BackendCounter)  # read from tokenizer.json: no transformers import
    with pytest.raises(EngineError, match="llama:foo"):
        open_counter("llama:foo")
    with pytest.raises(EngineError, match="/no/such/model"):
        open_counter("hf:/no/such/model")


def test_a_vllm_dry_run_starts_no_engine(tmp_path: Path, clinifact_dir: Path) -> None:
    out = tmp_path / "run"
    probe = (
        "import sys; from curate.cli import app\n"
        "try: app()\n"
        "except SystemExit as done: assert not {'vllm', 'transformers'} & set(sys.modules), 'imported'; raise\n"
    )
    args = ["generate", "--dry-run", "--engine", "vllm:default", "--out", str(out)]
    args += ["--input", str(clinifact_dir / "validation_set.csv")]
    done = subprocess.run([sys.executable, "-c", probe, *args], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "validation: " in done.stdout and "teacher budget:" in done.stdout
    assert not out.exists()  # no engine.log, nothing written
