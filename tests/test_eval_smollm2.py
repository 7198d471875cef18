"""Real-data check: SmolLM2-135M dual-head trained one epoch on a CliniFact slice; run, select, judge, report."""

import json

import pytest
from typer.testing import CliRunner

from evaluate.cli import app
from evaluate.io import read_metrics, read_predictions
from tests.eval_fixtures import clinifact_version, train_one_epoch

runner = CliRunner()


@pytest.mark.slow
def test_smollm2_run_select_judge_report(smollm2_dir, clinifact_dir, tmp_path) -> None:
    version = clinifact_version(clinifact_dir, tmp_path / "registry", per_split=4)
    run = train_one_epoch(version, smollm2_dir, tmp_path / "run", max_input_tokens=384, head_hidden=64)
    options = ["--max-new-tokens", "24", "--n-bootstrap", "50", "--batch-size", "4"]
    result = runner.invoke(app, ["select", str(run), "--dataset", str(version), *options])
    assert result.exit_code == 0, result.output
    assert json.loads((run / "selection.json").read_text())["best_epoch"] == 1

    out = tmp_path / "test"
    result = runner.invoke(
        app, ["run", "--checkpoint", str(run / "epoch-1"), "--dataset", str(version), "--out", str(out), *options]
    )
    assert result.exit_code == 0, result.output
    rows, summary = read_predictions(out), read_metrics(out)
    assert len(rows) == 4 and all(r.text for r in rows) and summary.metrics["auroc"] is not None
    assert summary.threshold_source == str(run / "selection.json")

    config = tmp_path / "judge.yaml"
    config.write_text("judge_max_tokens: 24\n")
    result = runner.invoke(
        app, ["judge", str(out), "--engine", f"hf:{smollm2_dir}", "--limit", "3", "--config", str(config)]
    )
    assert result.exit_code == 0, result.output
    judged = json.loads((out / "judge" / "judge.json").read_text())
    assert judged["n_predictions"] == judged["n_judged"] == 3 and judged["judge_model"]
    calls = (out / "judge" / "calls.jsonl").read_text().splitlines()
    assert len(calls) == 3 * 2 + 3 * judged["n_labelled"]  # label + readability each, RLI for labelled texts

    result = runner.invoke(app, ["report", str(out), "--out", str(tmp_path / "report"), "--training-run", str(run)])
    assert result.exit_code == 0, result.output
    report = (tmp_path / "report" / "report.md").read_text()
    assert "| clsgen | 1 | 4 |" in report
    print(report)
    print(json.dumps({"parse_status": [r.parse_status for r in rows], "judge": judged}))
