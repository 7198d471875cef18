"""The TF-IDF + logistic-regression baseline on real CliniFact data, through the CLI."""

import json
import shutil
from pathlib import Path

import polars as pl
import pytest
from datasets import load_from_disk
from sklearn.metrics import roc_auc_score
from typer.testing import CliRunner

from evaluate.cli import app
from evaluate.io import read_metrics, read_predictions
from schemas.dataset_version import read_manifest
from tests.eval_fixtures import clinifact_version, published_clinifact_run

runner = CliRunner()


@pytest.fixture(scope="module")
def filtered_run(clinifact_dir, tmp_path_factory):
    """(run dir, version) of a scripted run over all of CliniFact's train and validation rows, 1 in 15 kept."""
    return published_clinifact_run(clinifact_dir, tmp_path_factory.mktemp("filtered-run"))


def tfidf_on(version, out, *extra: str):
    """`evaluate baseline --method tfidf-logreg --dataset VERSION` with `extra` options."""
    args = ["baseline", "--method", "tfidf-logreg", "--dataset", str(version), "--out", str(out), *extra]
    return runner.invoke(app, [*args, "--n-bootstrap", "0"])


def test_tfidf_logreg_on_the_full_clinifact_test_split(clinifact_dir, tmp_path) -> None:
    out = tmp_path / "tfidf"
    result = runner.invoke(
        app,
        [
            "baseline",
            "--method",
            "tfidf-logreg",
            "--task",
            "clinifact",
            "--out",
            str(out),
            "--n-bootstrap",
            "200",
            "--train",
            str(clinifact_dir / "train_set.csv"),
            "--validation",
            str(clinifact_dir / "validation_set.csv"),
            "--test",
            str(clinifact_dir / "test_set.csv"),
        ],
    )
    assert result.exit_code == 0, result.output
    rows = read_predictions(out)
    summary = read_metrics(out)
    assert summary.n == len(rows) == 394 and sum(r.gold for r in rows) == 113  # Table 7 of the paper
    auroc = roc_auc_score([r.gold for r in rows], [r.p_head for r in rows])
    assert summary.metrics["auroc"] == auroc and 0.6 < auroc <= 1.0
    lo, hi = summary.intervals["auroc"]
    assert lo < auroc < hi
    assert summary.thresholds.f1 is not None and summary.metrics["f1_tuned"] is not None
    assert summary.metrics["parsability"] is None and "no text" in summary.null_reasons["parsability"]
    print(json.dumps({"tfidf_logreg_clinifact_test_auroc": auroc, "ci95": [lo, hi]}))


def test_tfidf_on_a_version_trains_on_the_original_rows_unless_asked_for_the_filtered(filtered_run, tmp_path):
    run, version = filtered_run
    aurocs = {}
    for train_on, n_train, n_validation, where, name in [
        ("original", 1260, 316, run / "examples.parquet", "tfidf-logreg"),  # every input row, as in the paper
        ("filtered", 84, 22, version, "tfidf-logreg-filtered"),  # only the rows the teacher passed
    ]:
        out = tmp_path / train_on
        result = tfidf_on(version, out, *(["--train-on", "filtered"] if train_on == "filtered" else []))
        assert result.exit_code == 0, result.output
        line = f"trained on {n_train} {train_on} train rows of {where}, threshold tuned on {n_validation} validation"
        assert result.stdout.startswith(line)
        summary = read_metrics(out)
        assert summary.source["training"] == {
            "train_on": train_on,
            "train_source": str(where),
            "validation_source": str(where),
            "n_train": n_train,
            "n_validation": n_validation,
        }
        assert summary.n == 394 and summary.method == name
        aurocs[train_on] = summary.metrics["auroc"]
    print(json.dumps({"tfidf_logreg_clinifact_test_auroc_by_training_rows": aurocs}))


def test_original_split_files_can_stand_in_for_a_version_without_its_run(clinifact_dir, tmp_path) -> None:
    version = clinifact_version(clinifact_dir, tmp_path / "registry", per_split=10)  # its manifest has no source_run
    result = tfidf_on(version, tmp_path / "refused")
    assert result.exit_code == 2 and not (tmp_path / "refused").exists()
    assert "cannot be found (its manifest records no source_run): pass the original split files with --train FILE" in (
        result.output
    )
    out = tmp_path / "files"
    result = tfidf_on(version, out, "--train", str(clinifact_dir / "train_set.csv"))
    assert result.exit_code == 0, result.output
    training = read_metrics(out).source["training"]
    assert training["train_on"] == "files" and training["n_train"] == 1260 and training["n_validation"] == 0
    assert [r.id for r in read_predictions(out)] and read_metrics(out).source["dataset"] == str(version)


def test_a_run_directory_changed_after_publishing_is_refused(filtered_run, tmp_path) -> None:
    run, version = filtered_run
    copy = Path(shutil.copytree(version, tmp_path / "version"))
    manifest = read_manifest(copy)
    (tmp_path / "run").mkdir()
    first_kept = load_from_disk(str(copy / "arrow"))["train"][0]["id"]
    original = pl.read_parquet(run / "examples.parquet")
    original.filter(pl.col("id") != first_kept).write_parquet(tmp_path / "run" / "examples.parquet")
    changed = manifest.model_copy(update={"source_run": str(tmp_path / "run")})
    (copy / "manifest.json").write_text(changed.model_dump_json())
    result = tfidf_on(copy, tmp_path / "out")
    assert result.exit_code == 2 and not (tmp_path / "out").exists()
    assert f"lacks 1 of the 84 train rows of {copy} (e.g. {first_kept!r})" in result.output
    assert "the run directory changed after publishing" in result.output


def test_bad_baseline_inputs_exit_2_without_output(clinifact_dir, tmp_path) -> None:
    version = clinifact_version(clinifact_dir, tmp_path / "registry", per_split=4)
    train, validation = str(clinifact_dir / "train_set.csv"), str(clinifact_dir / "validation_set.csv")
    cases = {
        "does not exist": ["--dataset", str(version), "--split", "dev"],
        "needs --engine": ["--method", "label", "--dataset", str(version)],
        "needs --dataset VERSION_DIR": [
            "--task",
            "clinifact",
            "--train-on",
            "filtered",
            "--train",
            str(clinifact_dir / "train_set.csv"),
            "--test",
            str(clinifact_dir / "test_set.csv"),
        ],
        "disagree": ["--dataset", str(version), "--train-on", "filtered", "--train", train],
        "needs --train FILE too": ["--dataset", str(version), "--validation", validation],
        "missing column": [
            "--task",
            "lcd-30d",
            "--train",
            str(clinifact_dir / "train_set.csv"),
            "--test",
            str(clinifact_dir / "test_set.csv"),
        ],
    }
    for expected, args in cases.items():
        out = tmp_path / expected.replace(" ", "-")
        method = [] if "--method" in args else ["--method", "tfidf-logreg"]
        result = runner.invoke(app, ["baseline", *method, *args, "--out", str(out)])
        assert result.exit_code == 2, (expected, result.output)
        assert expected in result.output and not out.exists()
