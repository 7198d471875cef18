"""One meaning of `max_input_tokens` (document tokens): curate generate, train, evaluate predict and the baselines
all send the same cut document."""

import pytest

from curate.engines import open_engine
from evaluate.baselines import baseline_requests
from evaluate.config import EvalConfig
from evaluate.data import version_split
from evaluate.predict import student_prompts
from schemas.example import Example
from schemas.task import load_task
from schemas.truncation import TokenizerCounter, fit_document, fit_fields
from tests.eval_fixtures import clinifact_version, train_one_epoch
from train.checkpoint import load_checkpoint
from train.data import encode_prompt, prompt_ids

MAX_DOCUMENT_TOKENS = 400
TASK = load_task("clinifact").model_copy(update={"max_input_tokens": MAX_DOCUMENT_TOKENS})


@pytest.fixture(scope="module")
def checkpoint(tiny_model_dir, clinifact_dir, tmp_path_factory):
    """A tiny dual-head checkpoint trained on a version of the task with a 400-token document budget."""
    root = tmp_path_factory.mktemp("truncation")
    version = clinifact_version(clinifact_dir, root / "registry", per_split=4, task=TASK)
    run = train_one_epoch(version, tiny_model_dir, root / "run", max_input_tokens=MAX_DOCUMENT_TOKENS)
    return version, load_checkpoint(run / "epoch-1")


@pytest.fixture(scope="module")
def engine(tiny_model_dir):
    with open_engine(f"hf:{tiny_model_dir}") as engine:
        yield engine


def documents_of_every_path(example: Example, engine, loaded) -> tuple[str, bool]:
    """curate's document for the example, after checking train, predict and the baselines send exactly it."""
    document, truncated = fit_document(example, TASK, engine.count_tokens, engine.truncate_to_tokens)  # curate
    student = prompt_ids(loaded.tokenizer, TASK, document)
    assert encode_prompt(loaded.tokenizer, TASK, example.fields, MAX_DOCUMENT_TOKENS).ids == student  # train
    assert student_prompts(loaded, [example]) == [student]  # evaluate run / predict
    [request] = baseline_requests([example], TASK, engine, "label", EvalConfig())  # evaluate baseline
    assert request.messages == TASK.teacher_messages(document)
    return document, truncated


def test_an_over_long_row_is_cut_to_the_same_document_in_every_path(checkpoint, engine) -> None:
    version, loaded = checkpoint
    assert loaded.config.max_input_tokens == MAX_DOCUMENT_TOKENS  # what the checkpoint tells predict
    example = version_split(version, "test")[0][0]
    full = TASK.render_document(example.fields)
    counter = TokenizerCounter(loaded.tokenizer)
    assert counter.count(full) > 2 * MAX_DOCUMENT_TOKENS
    document, truncated = documents_of_every_path(example, engine, loaded)
    assert truncated and full.startswith(document) and len(document) < len(full)
    assert MAX_DOCUMENT_TOKENS - 4 <= counter.count(document) <= MAX_DOCUMENT_TOKENS
    assert document.startswith(f"Claim: {example.fields['claim']}\nAbstract: ")  # only the abstract is cut


def test_a_short_row_is_not_cut_in_any_path(checkpoint, engine) -> None:
    _, loaded = checkpoint
    example = Example(id="short", fields={"claim": "Aspirin helps.", "article_abstract": "It did."}, label=1)
    document, truncated = documents_of_every_path(example, engine, loaded)
    assert not truncated and document == TASK.render_document(example.fields)


def overshooting_cut(text: str, max_tokens: int) -> str:
    """A cut that keeps two characters too many, like a tokenizer whose tokens merge across the cut."""
    return text[: max_tokens + 2]


def test_fit_shrinks_the_field_until_the_whole_document_fits() -> None:
    fields = {"claim": "c", "article_abstract": "x" * 100}
    document, truncated = fit_fields(fields, TASK, len, overshooting_cut, 40)
    assert truncated and len(document) == 40 and document == TASK.render_document(fields)[:40]


def test_fit_empties_the_field_when_the_other_fields_alone_are_over_budget() -> None:
    fields = {"claim": "c" * 50, "article_abstract": "x" * 100}
    document, truncated = fit_fields(fields, TASK, len, lambda text, n: text[: max(n, 0)], 40)
    assert truncated and document == TASK.render_document({**fields, "article_abstract": ""})
