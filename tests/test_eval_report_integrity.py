"""`evaluate report` compares only results on one test set: each metrics.json records the content hash of the
examples it was evaluated on; different sets are refused or, when asked, marked; files without a hash are flagged."""

import json

import pytest
from typer.testing import CliRunner

from evaluate.cli import app
from evaluate.data import file_split, split_sha256, version_split
from evaluate.io import read_metrics
from schemas.task import load_task
from tests.eval_fixtures import clinifact_version

runner = CliRunner()


@pytest.fixture(scope="module")
def results(clinifact_dir, tmp_path_factory):
    """Real tfidf-logreg output folders: on the full CliniFact test file (two names), and on its first 20 rows."""
    root = tmp_path_factory.mktemp("report-integrity")
    files = ["--train", str(clinifact_dir / "train_set.csv"), "--test", str(clinifact_dir / "test_set.csv")]
    runs = {"full": ["--name", "tfidf-a"], "same": ["--name", "tfidf-b"], "first-20": ["--limit", "20"]}
    for name, extra in runs.items():
        args = ["baseline", "--method", "tfidf-logreg", "--task", "clinifact", *files, "--out", str(root / name)]
        result = runner.invoke(app, [*args, "--n-bootstrap", "0", *extra])
        assert result.exit_code == 0, result.output
    return root


def report(out, *folders, allow_mixed: bool = False):
    """`evaluate report FOLDERS --out OUT` and the report's text ('' when none was written)."""
    extra = ["--allow-mixed-test-sets"] if allow_mixed else []
    result = runner.invoke(app, ["report", *map(str, folders), "--out", str(out), *extra])
    text = (out / "report.md").read_text() if result.exit_code == 0 else ""
    return result, text


def test_metrics_record_the_hash_of_the_evaluated_examples(results, clinifact_dir, tmp_path) -> None:
    task = load_task("clinifact")
    test = file_split(clinifact_dir / "test_set.csv", task, "test")
    assert read_metrics(results / "full").examples_sha256 == split_sha256(test)
    assert read_metrics(results / "first-20").examples_sha256 == split_sha256(test[:20])
    assert split_sha256(list(reversed(test))) == split_sha256(test)  # the same set in another order
    changed = [test[0].model_copy(update={"fields": {**test[0].fields, "claim": "edited"}}), *test[1:]]
    assert split_sha256(changed) != split_sha256(test)  # text fields count, not only ids and labels
    published = version_split(clinifact_version(clinifact_dir, tmp_path / "registry", per_split=6), "test")[0]
    ids = {e.id for e in published}
    assert split_sha256(published) == split_sha256([e for e in test if e.id in ids])  # version and file alike


def test_results_on_different_test_sets_are_refused(results, tmp_path) -> None:
    result, _ = report(tmp_path / "report", results / "full", results / "first-20")
    assert result.exit_code == 2 and not (tmp_path / "report").exists()
    assert "evaluated on 2 different test sets" in result.output and "n=394" in result.output
    assert "n=20" in result.output and "--allow-mixed-test-sets" in result.output


def test_allowed_mixed_test_sets_are_marked_in_every_row(results, tmp_path) -> None:
    result, text = report(tmp_path, results / "full", results / "first-20", allow_mixed=True)
    assert result.exit_code == 0, result.output
    assert "| tfidf-a | 1 | 394 |" in text and "| tfidf-logreg | 1 | 20 |" in text
    rows = [line for line in text.splitlines() if line.startswith("| tfidf")]
    assert len(rows) == 4 and [row.rstrip(" |").rsplit("| ", 1)[1] for row in rows] == ["T1", "T2"] * 2
    assert "| test set |" in text and "### Test sets (column `test set`)" in text
    digest = read_metrics(results / "first-20").examples_sha256
    assert f"- T2 (n=20, examples sha256 {digest[:12]}): {results / 'first-20'}" in text


def test_one_test_set_is_named_once_and_left_out_of_the_tables(results, tmp_path) -> None:
    result, text = report(tmp_path, results / "full", results / "same")
    assert result.exit_code == 0, result.output
    digest = read_metrics(results / "full").examples_sha256
    assert f"Every row was evaluated on one test set (n=394, examples sha256 {digest[:12]})." in text
    assert "test set |" not in text and "| tfidf-a | 1 | 394 |" in text and "| tfidf-b | 1 | 394 |" in text


def test_a_metrics_file_without_the_hash_is_flagged_never_merged(results, tmp_path) -> None:
    old = tmp_path / "old"
    old.mkdir()
    for name in ("predictions.parquet", "tuned_thresholds.json"):
        (old / name).write_bytes((results / "full" / name).read_bytes())
    metrics = json.loads((results / "full" / "metrics.json").read_text())
    del metrics["examples_sha256"]  # as written before the hash was recorded
    (old / "metrics.json").write_text(json.dumps(metrics))
    result, text = report(tmp_path / "report", results / "full", old)
    assert result.exit_code == 0, result.output
    rows = [line for line in text.splitlines() if line.startswith("| tfidf-a |")]
    assert len(rows) == 4 and [row.rstrip(" |").rsplit("| ", 1)[1] for row in rows] == ["T1", "unknown test set"] * 2
    assert f"- unknown test set (n=394): {old}: metrics.json from before the examples hash was recorded" in text
