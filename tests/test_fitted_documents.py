"""The run's fitted documents, built a chunk at a time in Arrow: the same document and cut flag as fitting each
example alone, and the same examples.parquet rows."""

from pathlib import Path

import polars as pl
from transformers import AutoTokenizer

from curate.generation import documents as fitted
from curate.generation.tables import examples_frame
from schemas import example_table, load_task
from schemas.inputs import load_splits
from schemas.truncation import TokenizerCounter, fit_document

TASK = load_task("clinifact").model_copy(update={"max_input_tokens": 1300})  # about half the documents get cut


def test_chunks_fit_every_document_as_one_at_a_time(clinifact_dir: Path, tiny_model_dir: Path, monkeypatch) -> None:
    monkeypatch.setattr(example_table, "CHUNK_ROWS", 7)  # 40 rows: chunks of 7 and a last one of 5
    table = load_splits({"validation": clinifact_dir / "validation_set.csv"}, TASK, TASK.input_mapping)[:40]
    counter = TokenizerCounter(AutoTokenizer.from_pretrained(tiny_model_dir))
    documents = fitted.fitted_documents(table, TASK, counter)
    alone = {ex.id: fit_document(ex, TASK, counter.count, counter.truncate) for ex in table}
    assert dict(documents) == alone and list(documents) == [ex.id for ex in table]
    assert 0 < sum(cut for _, cut in alone.values()) < 40
    frame = examples_frame(table, documents)
    assert frame["id"].to_list() == list(alone) and frame["document"].to_list() == [d for d, _ in alone.values()]
    assert frame.columns == ["id", "split", "label", "document", "truncated", "claim", "article_abstract"]
    assert frame.select("claim", "article_abstract").equals(table.frame.select("claim", "article_abstract"))


def test_no_examples_give_empty_columns(tiny_model_dir: Path) -> None:
    counter = TokenizerCounter(AutoTokenizer.from_pretrained(tiny_model_dir))
    documents = fitted.fitted_documents([], TASK, counter)
    assert len(documents) == 0 and documents.documents.dtype == pl.String
