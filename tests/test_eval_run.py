"""`evaluate run` / `select` / `report` on a tiny dual-head checkpoint trained here through train's API."""

import json

import pytest
import torch
from typer.testing import CliRunner

from evaluate.cli import app
from evaluate.config import EvalConfig
from evaluate.data import split_sha256, version_split
from evaluate.io import read_metrics, read_predictions
from evaluate.predict import predict, resolve_device
from tests.eval_fixtures import clinifact_version, draw_progress_into, train_one_epoch, version_rows
from tests.train_fixtures import write_version
from train.checkpoint import load_checkpoint
from train.data import encode_prompt

runner = CliRunner()


@pytest.fixture(scope="module")
def trained(tiny_model_dir, clinifact_dir, tmp_path_factory):
    """(dataset version, training run) of a tiny model trained for one epoch on a CliniFact slice."""
    root = tmp_path_factory.mktemp("eval-run")
    version = clinifact_version(clinifact_dir, root / "registry", per_split=6)
    return version, train_one_epoch(version, tiny_model_dir, root / "run")


def test_one_prefill_gives_the_head_probability_and_the_greedy_text(trained) -> None:
    version, run = trained
    loaded = load_checkpoint(run / "epoch-1")
    examples, _ = version_split(version, "test")
    examples = [  # abstracts of different lengths, so batches need left padding
        e.model_copy(update={"fields": {**e.fields, "article_abstract": e.fields["article_abstract"][: 60 * (i + 1)]}})
        for i, e in enumerate(examples)
    ]
    rows = predict(loaded, examples, EvalConfig(max_new_tokens=6, batch_size=4))
    assert [r.id for r in rows] == [e.id for e in examples]
    lengths = set()
    for example, row in zip(examples, rows, strict=True):
        ids = encode_prompt(loaded.tokenizer, loaded.task, example.fields, loaded.config.max_input_tokens).ids
        lengths.add(len(ids))
        with torch.no_grad():
            h_n = loaded.model.decoder_hidden(torch.tensor([ids]))[:, -1]
            p = loaded.model.head_probs(h_n).item()
            alone = loaded.model.lm.generate(
                input_ids=torch.tensor([ids]),
                max_new_tokens=6,
                do_sample=False,
                eos_token_id=[loaded.config.eog_token_id],
                use_cache=True,
            )
        assert row.p_head == pytest.approx(p, abs=1e-5)  # same as a separate unpadded pass
        new = alone[0, len(ids) :].tolist()
        new = new[: new.index(loaded.config.eog_token_id)] if loaded.config.eog_token_id in new else new
        assert row.text == loaded.tokenizer.decode(new, skip_special_tokens=True)
        assert row.parse_status in {"ok", "unparseable", "truncated"}
    assert len(lengths) > 1  # the batch really was left-padded


def test_run_select_run_report_end_to_end(trained, tmp_path) -> None:
    version, run = trained
    options = ["--max-new-tokens", "6", "--n-bootstrap", "20"]
    result = runner.invoke(app, ["select", str(run), "--dataset", str(version), *options])
    assert result.exit_code == 0, result.output
    selection = json.loads((run / "selection.json").read_text())
    assert selection["best_epoch"] == 1 and (run / "epoch-1" / "eval" / "validation" / "predictions.parquet").is_file()
    out = tmp_path / "test"
    result = runner.invoke(
        app,
        [
            "run",
            "--checkpoint",
            str(run / "epoch-1"),
            "--dataset",
            str(version),
            "--split",
            "test",
            "--out",
            str(out),
            *options,
        ],
    )
    assert result.exit_code == 0, result.output
    rows, summary = read_predictions(out), read_metrics(out)
    assert len(rows) == summary.n == 6 and summary.threshold_source == str(run / "selection.json")
    assert summary.thresholds.model_dump() == selection["thresholds"]
    assert all(0.0 <= r.p_head <= 1.0 for r in rows)
    assert summary.metrics["parsability"] == sum(r.verbalized_label is not None for r in rows) / 6
    assert summary.examples_sha256 == split_sha256(version_split(version, "test")[0])
    result = runner.invoke(app, ["report", str(out), "--out", str(tmp_path / "report"), "--training-run", str(run)])
    assert result.exit_code == 0, result.output
    text = (tmp_path / "report" / "report.md").read_text()
    assert "| clsgen | 1 | 6 |" in text
    assert f"one test set (n=6, examples sha256 {summary.examples_sha256[:12]})" in text
    assert (tmp_path / "report" / "epochs.png").is_file()


def test_run_limit_evaluates_the_first_n_examples_with_a_progress_bar(trained, tmp_path, monkeypatch) -> None:
    version, run = trained
    drawn = draw_progress_into(monkeypatch)
    out = tmp_path / "limited"
    args = ["run", "--checkpoint", str(run / "epoch-1"), "--dataset", str(version), "--out", str(out), "--limit", "2"]
    result = runner.invoke(app, [*args, "--max-new-tokens", "4", "--n-bootstrap", "0"])
    assert result.exit_code == 0, result.output
    first_two = [e.id for e in version_split(version, "test")[0][:2]]
    assert [r.id for r in read_predictions(out)] == first_two and read_metrics(out).n == 2
    assert result.stdout.startswith("clsgen on test (n=2): auroc ") and result.stdout.endswith(f"wrote {out}\n")
    assert "predict" in drawn.getvalue() and "2/2" in drawn.getvalue()  # examples done / total, on stderr only
    assert read_metrics(out).source["device"] == ("cuda" if torch.cuda.is_available() else "cpu")  # --device auto
    assert runner.invoke(app, [*args[:-1], "0"]).exit_code == 2


def test_auto_device_is_cuda_only_when_torch_sees_a_gpu(monkeypatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto") == "cpu"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve_device("auto") == "cuda" and resolve_device("cpu") == "cpu" and resolve_device("cuda:1") == "cuda:1"


def test_bad_inputs_exit_2_and_write_nothing(trained, clinifact_dir, tmp_path) -> None:
    version, run = trained
    other = load_version_task_changed(clinifact_dir, tmp_path)
    cases = {
        "task mismatch": ["--dataset", str(other)],
        "does not exist": ["--dataset", str(version), "--split", "dev"],
        "not a published dataset version": ["--dataset", str(tmp_path)],
        "not a train checkpoint": ["--dataset", str(version), "--checkpoint", str(tmp_path)],
    }
    for expected, args in cases.items():
        out = tmp_path / expected.replace(" ", "-")
        checkpoint = [] if "--checkpoint" in args else ["--checkpoint", str(run / "epoch-1")]
        result = runner.invoke(app, ["run", *checkpoint, *args, "--out", str(out)])
        assert result.exit_code == 2, (expected, result.output)
        assert expected in result.output and not out.exists()


def load_version_task_changed(clinifact_dir, tmp_path):
    """A version of the same data under a task whose question differs from the checkpoint's."""
    from schemas.task import load_task

    task = load_task("clinifact").model_copy(update={"question": "Is the claim supported? TRUE or FALSE."})
    return write_version(
        tmp_path / "other-registry", "clinifact-mini", "1.0.0", version_rows(clinifact_dir, task, 4), task
    )
