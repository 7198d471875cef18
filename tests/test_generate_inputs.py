"""Bad input to `curate generate`: exit code 2, a message naming the problem and the fix, nothing written."""

import csv
import re
import shlex
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from curate.cli import app
from curate.demo_data import write_demo_csv
from schemas import load_task
from schemas.inputs import load_splits, resolve_inputs, split_from_name
from schemas.task import TaskSpec

runner = CliRunner()
README = Path(__file__).resolve().parents[1] / "README.md"


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
        ([row(), row(index="2", abstract="It\x00 worked.")], "row 2 (id '2'): field 'article_abstract'"),
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


def test_a_nul_byte_in_a_text_field_is_refused_naming_row_and_field(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "train.csv", [row(claim="Drug\x00 A works.")])
    result, out = generate(tmp_path, "--input", str(path))
    assert result.exit_code == 2 and not out.exists()
    assert "row 1 (id '1'): field 'claim' (column 'claim') contains a NUL byte" in " ".join(result.output.split())


def test_a_malformed_json_lines_row_names_the_file_and_line(tmp_path: Path) -> None:
    good = '{"index": "1", "claim": "c", "article_abstract": "a", "label": "1"}'
    path = tmp_path / "train.jsonl"
    path.write_text(f'{good}\n{good}\n{{"index": "3", "claim": oops}}\n')
    result, out = generate(tmp_path, "--input", str(path))
    assert result.exit_code == 2 and not out.exists()
    assert f"{path} line 3: not valid JSON" in result.output.replace("\n", "") and "TapeError" not in result.output


@pytest.mark.parametrize("limit", ["0", "-1"])
def test_a_limit_below_one_exits_2(tmp_path: Path, limit: str) -> None:
    path = write_csv(tmp_path / "train.csv", [row(), row(index="2")])
    result, out = generate(tmp_path, "--input", str(path), "--limit", limit, "--dry-run")
    assert result.exit_code == 2 and "--limit" in result.output and not out.exists()


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


def readme_block(language: str, first_line: str) -> str:
    """The fenced `language` block of README.md whose text starts with `first_line`."""
    blocks = re.findall(rf"```{language}\n(.*?)```", README.read_text(), re.DOTALL)
    return next(block for block in blocks if block.startswith(first_line))


def qa_rows(split: str, count: int) -> list[dict[str, str]]:
    """Yes/no biomedical QA rows in the README's columns, alternating yes and no."""
    return [
        {
            "pubid": f"{split}-{i}",
            "question": f"Does drug {i} reduce 30-day mortality after surgery?",
            "context": f"In a randomised trial of drug {i}, 30-day mortality was {10 - i}% against 12% with placebo.",
            "final_decision": ("yes", "no")[i % 2],
        }
        for i in range(count)
    ]


def test_the_readme_task_config_and_dry_run_work_on_a_csv_with_those_columns(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The README's "Bring your own dataset" files and first command, as written there, so they cannot drift."""
    task_yaml = readme_block("yaml", "# pubmedqa-yn.yaml")
    assert set(yaml.safe_load(task_yaml)) == set(TaskSpec.model_fields), "the README shows every TaskSpec field"
    (tmp_path / "pubmedqa-yn.yaml").write_text(task_yaml)
    (tmp_path / "gen.yaml").write_text(readme_block("yaml", "# gen.yaml"))
    task = load_task(str(tmp_path / "pubmedqa-yn.yaml"))
    assert "Classification: <YES or NO>" in task.teacher_messages("Question: q\nContext: c")[1]["content"]
    (tmp_path / "data").mkdir()
    write_csv(tmp_path / "data" / "train.csv", qa_rows("train", 4))
    write_csv(tmp_path / "data" / "validation.csv", qa_rows("validation", 3))
    commands = readme_block("bash", "curate generate --config gen.yaml").splitlines()
    dry_run = shlex.split(next(line for line in commands if line.endswith("--dry-run")))
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, [*dry_run[1:], "--engine", "hf:default"])  # the README's vLLM teacher is slow here
    assert result.exit_code == 0, result.output
    assert "train: 4 examples (2 positive, 2 negative)" in result.output
    assert "validation: 3 examples (2 positive, 1 negative)" in result.output
    assert not (tmp_path / "runs").exists()
