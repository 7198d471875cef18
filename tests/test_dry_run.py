"""`curate generate --dry-run` plans with the teacher's tokenizer alone, and the batched fit equals fit_document."""

import subprocess
import sys
from pathlib import Path

import pytest

from curate.engines import EngineError, open_counter
from curate.engines.tokens import CharEstimateCounter
from schemas.inputs import input_mapping, load_examples
from schemas.task import load_task
from schemas.truncation import TokenizerCounter, fit_document, fit_documents

REPO = Path(__file__).resolve().parents[1]
SMALL_BUDGET = load_task("clinifact").model_copy(update={"max_input_tokens": 300})


@pytest.fixture(scope="module")
def clinifact_rows(clinifact_dir: Path):
    task = load_task("clinifact")
    return load_examples(clinifact_dir / "validation_set.csv", task, input_mapping(task, None), "validation")[:200]


def test_the_batched_fit_equals_fit_document_on_clinifact_rows(clinifact_rows, smollm2_dir: Path) -> None:
    counter = open_counter(f"vllm:{smollm2_dir}")
    one_by_one = [fit_document(ex, SMALL_BUDGET, counter.count, counter.truncate) for ex in clinifact_rows]
    assert fit_documents(clinifact_rows, SMALL_BUDGET, counter) == one_by_one
    assert 0 < sum(cut for _, cut in one_by_one) < len(one_by_one)  # both branches are exercised


def test_count_many_equals_count(smollm2_dir: Path) -> None:
    counter = open_counter(f"hf:{smollm2_dir}")
    texts = ["", "Aspirin helps.", "  spaced\n\nlines  ", "é" * 30]
    assert counter.count_many(texts) == [counter.count(text) for text in texts]
    assert counter.count_many([]) == []


def test_open_counter_reads_a_tokenizer_only(smollm2_dir: Path, tiny_model_dir: Path) -> None:
    assert isinstance(open_counter("openai:http://127.0.0.1:9/v1#teacher"), CharEstimateCounter)  # no request sent
    exact = open_counter("openai:http://127.0.0.1:9/v1#teacher", str(tiny_model_dir))
    assert isinstance(exact, TokenizerCounter)
    with pytest.raises(EngineError, match="llama:foo"):
        open_counter("llama:foo")
    with pytest.raises(EngineError, match="/no/such/model"):
        open_counter("hf:/no/such/model")


def test_a_vllm_dry_run_starts_no_engine(tmp_path: Path, clinifact_dir: Path) -> None:
    out = tmp_path / "run"
    probe = (
        "import sys; from curate.cli import app\n"
        "try: app()\n"
        "except SystemExit as done: assert 'vllm' not in sys.modules, 'vllm was imported'; raise\n"
    )
    args = ["generate", "--dry-run", "--engine", "vllm:default", "--out", str(out)]
    args += ["--input", str(clinifact_dir / "validation_set.csv")]
    done = subprocess.run([sys.executable, "-c", probe, *args], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "validation: " in done.stdout and "teacher budget:" in done.stdout
    assert not out.exists()  # no engine.log, nothing written
