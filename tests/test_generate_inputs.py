"""Bad input to `curate generate`: exit code 2, a message naming the problem and the fix, nothing written."""

import csv
from pathlib import Path

import pytest
from typer.testing import CliRunner

from curate.cli import app
from curate.demo_data import write_demo_csv
from schemas import load_task
from schemas.inputs import load_splits, resolve_inputs, split_from_name

runner = CliRunner()


def write_csv(path: Path, rows: list[dict[str, str]]) -> Path:
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def row(index: str = "1", claim: str = "Drug A works.", abstract: str = "It worked.", label: str = "1") -> dict:
    return {"index": index, "claim": claim, "article_abstract": abstract, "label": label}


def generate(tmp_path: Path, *args: str):
    out = tmp_path / "run"
    result = runner.invoke(app, ["generate", "--out", str(out), "--engine", "hf:default", *args])
    return result, out


@pytest.mark.parametrize(
    "rows, message",
    [
        ([{"index": "1", "claim": "c", "label": "1"}], "missing column(s) ['article_abstract']"),
        ([row(label="7")], "label '7' is not in the label mapping"),
        ([row(abstract="  ")], "empty ['article_abstract'] field"),
        ([row(index="5"), row(index="5")], "duplicate id '5'"),
        ([row(index="")], "empty id"),
    ],
)
def test_bad_rows_exit_2_and_write_nothing(tmp_path: Path, rows: list[dict], message: str) -> None:
    path = write_csv(tmp_path / "train.csv", rows)
    result, out = generate(tmp_path, "--input", str(path))
    assert result.exit_code == 2, result.output
    assert message in " ".join(result.output.split())
    assert str(path) in result.output.replace("\n", "")
    assert not out.exists()


def test_unreadable_file(tmp_path: Path) -> None:
    path = tmp_path / "train.parquet"
    path.write_bytes(b"not parquet at all")
    result, out = generate(tmp_path, "--input", str(path))
    assert result.exit_code == 2 and "cannot read" in result.output and not out.exists()


def test_missing_file_and_unknown_task(tmp_path: Path) -> None:
    result, _ = generate(tmp_path, "--input", str(tmp_path / "nope.csv"))
    assert result.exit_code == 2 and "does not exist" in result.output
    path = write_demo_csv(tmp_path / "train.csv", 3)
    result, out = generate(tmp_path, "--input", str(path), "--task", "sentiment")
    message = " ".join(result.output.split())
    assert result.exit_code == 2 and "unknown task 'sentiment'" in message and not out.exists()
    assert "clinifact, lcd-30d, lcd-90d" in message


def test_a_missing_task_file_is_named_as_a_file(tmp_path: Path) -> None:
    path = write_demo_csv(tmp_path / "train.csv", 3)
    result, out = generate(tmp_path, "--input", str(path), "--task", "typo.yaml")
    message = " ".join(result.output.split())
    assert result.exit_code == 2 and "task file typo.yaml not found" in message, message
    assert "unknown task" not in message and not out.exists()


def test_a_string_label_outside_the_mapping_shows_a_label_map_to_paste(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "train.csv", [row(index="1", label="yes"), row(index="2", label="no")])
    result, out = generate(tmp_path, "--input", str(path))
    assert result.exit_code == 2 and not out.exists()
    assert "label 'yes' is not in the label mapping" in " ".join(result.output.split())
    example = next(line for line in result.output.splitlines() if line.startswith("columns: "))
    config = tmp_path / "gen.yaml"
    config.write_text(example + "\n")
    result, _ = generate(tmp_path, "--input", str(path), "--config", str(config), "--dry-run")
    assert result.exit_code == 0, result.output
    assert "train: 2 examples (1 positive, 1 negative)" in result.output


def test_malformed_config(tmp_path: Path) -> None:
    path = write_demo_csv(tmp_path / "train.csv", 3)
    config = tmp_path / "gen.yaml"
    config.write_text("k: five\nsampling: {temperature: 0.5}\n")
    result, out = generate(tmp_path, "--input", str(path), "--config", str(config))
    assert result.exit_code == 2 and "invalid generate config" in result.output and "k" in result.output
    config.write_text("k: 3\nbogus_field: 1\n")
    result, _ = generate(tmp_path, "--input", str(path), "--config", str(config))
    assert result.exit_code == 2 and "bogus_field" in result.output
    config.write_text("[unclosed")
    result, _ = generate(tmp_path, "--input", str(path), "--config", str(config))
    assert result.exit_code == 2 and "cannot read config" in result.output and not out.exists()


def test_test_split_is_never_sent_to_the_teacher(tmp_path: Path) -> None:
    path = write_demo_csv(tmp_path / "test_set.csv", 3)
    result, out = generate(tmp_path, "--input", str(path))
    assert result.exit_code == 2 and "curate publish --test" in result.output and not out.exists()


def test_split_names_and_folders(tmp_path: Path, clinifact_dir: Path) -> None:
    assert [split_from_name(Path(n)) for n in ("train_set.csv", "dev.jsonl", "validation_set.csv", "x.csv")] == [
        "train",
        "validation",
        "validation",
        None,
    ]
    splits = resolve_inputs([str(clinifact_dir)])
    assert set(splits) == {"train", "validation"}
    task = load_task("clinifact")
    examples = load_splits(splits, task, task.input_mapping)
    train = [e for e in examples if e.split == "train"]
    assert len(train) == 1260 and sum(e.label for e in train) == 366  # 1 -> 1; 0 and 2 -> 0 (paper's Table 7)
    assert resolve_inputs([f"validation={clinifact_dir / 'validation_set.csv'}"]) == {
        "validation": clinifact_dir / "validation_set.csv"
    }


def test_jsonl_parquet_and_saved_dataset_inputs(tmp_path: Path) -> None:
    import polars as pl
    from datasets import Dataset

    task = load_task("clinifact")
    frame = pl.read_csv(write_demo_csv(tmp_path / "demo.csv", 6), infer_schema_length=0)
    frame.write_ndjson(tmp_path / "train.jsonl")
    frame.write_parquet(tmp_path / "validation.parquet")
    Dataset.from_polars(frame).save_to_disk(str(tmp_path / "saved"))
    for path in (tmp_path / "train.jsonl", tmp_path / "validation.parquet", tmp_path / "saved"):
        examples = load_splits({"train": path}, task, task.input_mapping)
        assert [e.id for e in examples] == [str(1000 + i) for i in range(6)]
        assert [e.label for e in examples] == [1, 0, 0, 1, 0, 0]


@pytest.mark.parametrize(
    "engine, message",
    [
        ("llama:foo", "llama:foo"),
        ("hf:/no/such/model", "/no/such/model"),
        ("openai:http://127.0.0.1:9/v1#teacher", "cannot reach"),
    ],
)
def test_unknown_engine_or_unreachable_server_exit_2(tmp_path: Path, engine: str, message: str) -> None:
    path = write_demo_csv(tmp_path / "train.csv", 3)
    out = tmp_path / "run"
    result = runner.invoke(app, ["generate", "--out", str(out), "--input", str(path), "--engine", engine])
    assert result.exit_code == 2, result.output
    assert "error:" in result.output and message in result.output and not out.exists()
