"""ExampleTable: a validated frame read as Examples, the same ones a list would hold, built a chunk at a time."""

from pathlib import Path

import pytest

from curate.demo_data import write_demo_csv
from schemas import example_table, load_task
from schemas.example_table import ExampleTable, examples_of
from schemas.inputs import load_splits, validated_frame


@pytest.fixture
def table(tmp_path: Path) -> ExampleTable:
    task = load_task("clinifact")
    return load_splits({"train": write_demo_csv(tmp_path / "train.csv", 7)}, task, task.input_mapping)


def test_iteration_across_chunks_matches_the_frame(table: ExampleTable, monkeypatch: pytest.MonkeyPatch) -> None:
    whole = examples_of(table.frame, table.fields)
    monkeypatch.setattr(example_table, "CHUNK_ROWS", 3)  # 7 rows: chunks of 3, 3 and 1
    assert list(table) == whole and len(table) == 7
    assert [ex.id for ex in whole] == [str(1000 + i) for i in range(7)]


def test_index_and_slice(table: ExampleTable) -> None:
    whole = list(table)
    assert table[0] == whole[0] and table[-1] == whole[6]
    head = table[:4]
    assert isinstance(head, ExampleTable) and list(head) == whole[:4]
    assert list(table[5:]) == whole[5:] and list(table[::3]) == whole[::3]
    with pytest.raises(IndexError):
        table[7]
    with pytest.raises(IndexError):
        table[-8]


def test_a_table_holds_the_validated_frame_itself(tmp_path: Path) -> None:
    task = load_task("clinifact")
    path = write_demo_csv(tmp_path / "train.csv", 5)
    table = load_splits({"train": path}, task, task.input_mapping)
    assert table.frame.equals(validated_frame(path, task.input_mapping, "train"))
    assert table.fields == list(task.input_mapping.field_columns)
