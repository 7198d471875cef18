"""Quality-Score epoch selection, threshold tuning and the report, on a real tiny training run and its dev outputs."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from evaluate.cli import app
from evaluate.io import MetricsFile, PredictionRow, read_predictions
from evaluate.metrics import tune_thresholds
from evaluate.pipeline import write_outputs
from evaluate.report import dev_values_by_epoch, figure1
from evaluate.select import QUALITY_KEYS, SELECTION, TEXT_QUALITY_KEYS, dev_eval_dir, quality_scores, select_epoch
from evaluate.summary import arrays, summarize
from schemas.files import Journal
from schemas.train_metrics import METRICS as METRICS_JSONL
from schemas.train_metrics import EpochMetrics, keep_epochs, read_dev_metrics
from tests.train_fixtures import toy_version
from train.config import TrainConfig
from train.loop import train_run

runner = CliRunner()


def rows_for(seed: int, n: int = 60, noise: float = 0.5) -> list[PredictionRow]:
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        gold = int(rng.integers(0, 2))
        p = float(np.clip(gold * (1 - noise) + rng.uniform(0, noise), 0, 1))
        verbal = None if rng.uniform() < 0.1 else (gold if rng.uniform() < 0.8 else 1 - gold)
        rows.append(
            PredictionRow(
                id=f"e{i}",
                gold=gold,
                p_head=p,
                text=f"text {i}",
                verbalized_label=verbal,
                parse_status="ok" if verbal is not None else "unparseable",
            )
        )
    return rows


def test_quality_score_is_the_sum_of_z_scores() -> None:
    rows = [
        {"auroc": 0.70, "auroc_align": 0.60, "kappa_at_05": 0.20},
        {"auroc": 0.80, "auroc_align": 0.90, "kappa_at_05": 0.50},
        {"auroc": 0.90, "auroc_align": 0.60, "kappa_at_05": 0.20},
    ]
    scores, left_out = quality_scores(rows)
    z = lambda xs: (np.array(xs) - np.mean(xs)) / np.std(xs)  # noqa: E731
    expected = z([0.7, 0.8, 0.9]) + z([0.6, 0.9, 0.6]) + z([0.2, 0.5, 0.2])
    assert scores == pytest.approx(list(expected)) and not left_out
    assert int(np.argmax(scores)) == 1  # best balance, not best AUROC


def test_a_metric_undefined_at_some_epoch_is_left_out_for_all() -> None:
    rows = [
        {"auroc": 0.7, "auroc_align": None, "kappa_at_05": 0.2},
        {"auroc": 0.8, "auroc_align": 0.9, "kappa_at_05": 0.1},
    ]
    scores, left_out = quality_scores(rows)
    assert scores == pytest.approx([0.0, 0.0]) and list(left_out) == ["auroc_align"]
    with pytest.raises(ValueError, match="no epoch can be scored"):
        quality_scores([{"auroc": None, "auroc_align": None, "kappa_at_05": None}])


@pytest.fixture(scope="module")
def trained(tiny_model_dir, tmp_path_factory) -> Path:
    """A real 3-epoch `train run` of the tiny model: complete epoch-N checkpoints and the trainer's metrics.jsonl."""
    root = tmp_path_factory.mktemp("trained")
    cfg = TrainConfig(epochs=3, head_hidden=16, batch_size=4, pack_tokens=256)
    return train_run(cfg, toy_version(root / "registry"), str(tiny_model_dir), root / "run")


def copy_run(trained: Path, tmp_path: Path, epochs: int = 3) -> Path:
    """A copy of the trained run cut back to its first `epochs` epochs, as the trainer leaves it on resume."""
    run = shutil.copytree(trained, tmp_path / "run")
    for epoch in range(epochs + 1, 4):
        shutil.rmtree(run / f"epoch-{epoch}")
    keep_epochs(Journal(run / METRICS_JSONL, EpochMetrics), epochs)
    return run


def write_dev_eval(checkpoint: Path, rows: list[PredictionRow]) -> MetricsFile:
    """What `evaluate run --checkpoint C --split validation` writes: dev predictions and metrics.json."""
    summary = summarize(
        rows, method="clsgen", split="validation", thresholds=None, threshold_source=None, source={}, n_bootstrap=0
    )
    write_outputs(rows, summary, dev_eval_dir(checkpoint))
    return summary


def test_the_trainer_gives_auroc_only_so_text_metrics_need_dev_predictions() -> None:
    assert TEXT_QUALITY_KEYS == ("auroc_align", "kappa_at_05")


def test_select_scores_dev_predictions_and_tunes_on_the_best_epochs(trained, tmp_path) -> None:
    run = copy_run(trained, tmp_path)
    dev_rows = {epoch: rows_for(epoch, noise=0.3 * epoch) for epoch in (1, 2, 3)}
    summaries = {e: write_dev_eval(run / f"epoch-{e}", rows) for e, rows in dev_rows.items()}
    result = runner.invoke(app, ["select", str(run)])
    assert result.exit_code == 0, result.output
    selection = json.loads((run / SELECTION).read_text())
    scores, _ = quality_scores([{k: summaries[e].metrics[k] for k in QUALITY_KEYS} for e in (1, 2, 3)])
    best = 1 + int(np.argmax(scores))
    assert selection["best_epoch"] == best and [s["quality"] for s in selection["epochs"]] == pytest.approx(scores)
    assert selection["epochs"][0]["source"] == str(dev_eval_dir(run / "epoch-1") / "metrics.json")
    expected, _ = tune_thresholds(*arrays(dev_rows[best]))
    assert selection["thresholds"] == expected.model_dump()
    # the selected thresholds reach a test summary of that checkpoint
    test_summary = summarize(
        rows_for(1), method="clsgen", split="test", thresholds=expected, threshold_source="x", source={}, n_bootstrap=0
    )
    assert test_summary.metrics["f1_tuned"] is not None and test_summary.metrics["kappa_tuned"] is not None


def test_select_with_only_the_trainers_metrics_says_what_is_missing(trained, tmp_path) -> None:
    run = copy_run(trained, tmp_path)
    assert set(read_dev_metrics(run)) == {1, 2, 3}
    result = runner.invoke(app, ["select", str(run)])
    assert result.exit_code == 2 and "--dataset" in result.output and not (run / SELECTION).exists()
    with pytest.raises(ValueError, match="auroc_align, kappa_at_05 come from generated explanations") as err:
        select_epoch(run, None)
    assert "evaluate run --checkpoint" in str(err.value) and "metrics.jsonl does not have" in str(err.value)


def test_report_tables_over_methods_and_seeds_with_plots(trained, tmp_path) -> None:
    folders = []
    for method, seeds in {"clsgen": [0, 1, 2], "label": [0]}.items():
        for seed in seeds:
            rows = rows_for(seed, noise=0.8 if method == "clsgen" else 0.9)
            if method == "label":
                rows = [
                    r.model_copy(update={"p_head": None if r.verbalized_label is None else float(r.verbalized_label)})
                    for r in rows
                ]
            folder = tmp_path / f"{method}-{seed}"
            summary = summarize(
                rows,
                method=method,
                split="test",
                thresholds=None,
                threshold_source=None,
                source={},
                n_bootstrap=50,
                seed=seed,
            )
            write_outputs(rows, summary, folder)
            folders.append(folder)
    judge_dir = tmp_path / "clsgen-0" / "judge"
    judge_dir.mkdir()
    (judge_dir / "judge.json").write_text(
        json.dumps(
            {
                "judge_engine": "hf:x",
                "judge_model": "m",
                "n_predictions": 60,
                "n_judged": 50,
                "n_labelled": 45,
                "rli": 0.1,
                "kappa_rl": 0.6,
                "readability_mean": 3.5,
                "readability_std": 0.5,
                "unreadable_answers": {},
                "null_reasons": {},
            }
        )
    )
    run = copy_run(trained, tmp_path)
    write_dev_eval(run / "epoch-2", rows_for(5))  # parsability and kappa of epoch 2; the trainer's auroc elsewhere
    with (run / METRICS_JSONL).open("a") as handle:
        handle.write('{"epoch": 4, "split": "valid')  # a torn last line, as while training writes it
    before = (run / METRICS_JSONL).read_bytes()
    result = runner.invoke(
        app, ["report", *map(str, folders), "--out", str(tmp_path / "report"), "--training-run", str(run)]
    )
    assert result.exit_code == 0, result.output
    text = (tmp_path / "report" / "report.md").read_text()
    aurocs = [
        summarize(
            read_predictions(f),
            method="x",
            split="test",
            thresholds=None,
            threshold_source=None,
            source={},
            n_bootstrap=0,
        ).metrics["auroc"]
        for f in folders[:3]
    ]
    assert f"| clsgen | 3 | 60 | {np.mean(aurocs):.3f} ± {np.std(aurocs, ddof=1):.3f}" in text
    assert "| label | 1 | 60 |" in text and "0.100" in text  # the judged RLI of one clsgen seed
    assert "no dev-tuned threshold" in text
    for png in ("roc.png", "reliability.png", "epochs.png"):
        assert (tmp_path / "report" / png).stat().st_size > 1000
    assert (run / METRICS_JSONL).read_bytes() == before  # the report reads the log, never rewrites it
    assert dev_values_by_epoch(run)[1] == {"auroc": read_dev_metrics(run)[1].auroc}
    assert set(dev_values_by_epoch(run)[2]) == {"parsability", "auroc", "kappa_at_05"}


@pytest.mark.filterwarnings("error")
def test_one_epoch_is_drawn_as_points_and_said_so(trained, tmp_path) -> None:
    run = copy_run(trained, tmp_path, epochs=1)
    text = "\n".join(figure1(run, tmp_path))
    assert "One epoch only: epoch 1's values are drawn as points, with no curve." in text
    assert "![epochs](epochs.png)" in text and (tmp_path / "epochs.png").stat().st_size > 1000


@pytest.mark.filterwarnings("error")
def test_no_defined_dev_value_gives_a_line_instead_of_an_empty_figure(trained, tmp_path) -> None:
    run = copy_run(trained, tmp_path, epochs=2)
    (tmp_path / "epochs.png").write_bytes(b"from an earlier report")
    journal = Journal(run / METRICS_JSONL, EpochMetrics)
    rows = journal.load()
    (run / METRICS_JSONL).unlink()
    for row in rows:  # as if the dev split had one class: the trainer logs no AUROC
        dev = row.root.split == "validation"
        journal.append(EpochMetrics(row.root.model_copy(update={"auroc": None})) if dev else row)
    journal.close()
    text = "\n".join(figure1(run, tmp_path))
    assert "No figure: none of parsability, auroc, kappa_at_05 has a dev value at any of the 2 epoch(s)." in text
    assert "epochs.png" not in text and not (tmp_path / "epochs.png").exists()


def test_report_of_a_folder_without_metrics_exits_2(tmp_path) -> None:
    result = runner.invoke(app, ["report", str(tmp_path), "--out", str(tmp_path / "r")])
    assert result.exit_code == 2 and "metrics.json" in result.output
