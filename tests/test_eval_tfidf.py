"""The TF-IDF + logistic-regression baseline on real CliniFact data, through the CLI."""

import json

from sklearn.metrics import roc_auc_score
from typer.testing import CliRunner

from evaluate.cli import app
from evaluate.io import read_metrics, read_predictions
from tests.eval_fixtures import clinifact_version

runner = CliRunner()


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


def test_tfidf_logreg_on_a_published_version(clinifact_dir, tmp_path) -> None:
    version = clinifact_version(clinifact_dir, tmp_path / "registry", per_split=10)
    out = tmp_path / "out"
    result = runner.invoke(
        app,
        ["baseline", "--method", "tfidf-logreg", "--dataset", str(version), "--out", str(out), "--n-bootstrap", "0"],
    )
    assert result.exit_code == 0, result.output
    assert [r.id for r in read_predictions(out)] and read_metrics(out).source["dataset"] == str(version)


def test_bad_baseline_inputs_exit_2_without_output(clinifact_dir, tmp_path) -> None:
    version = clinifact_version(clinifact_dir, tmp_path / "registry", per_split=4)
    cases = {
        "does not exist": ["--dataset", str(version), "--split", "dev"],
        "needs --engine": ["--method", "label", "--dataset", str(version)],
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
