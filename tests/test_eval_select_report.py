"""Quality-Score epoch selection, threshold tuning and the markdown/PNG report, on files written here."""

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from evaluate.cli import app
from evaluate.io import PredictionRow, read_predictions, write_predictions
from evaluate.metrics import tune_thresholds
from evaluate.pipeline import write_outputs
from evaluate.select import SELECTION, dev_eval_dir, quality_scores, select_epoch
from evaluate.summary import arrays, summarize

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


def make_run(tmp_path, trainer_rows: list[dict]) -> object:
    run = tmp_path / "run"
    for row in trainer_rows:
        (run / f"epoch-{row['epoch']}").mkdir(parents=True, exist_ok=True)
    (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in trainer_rows))
    return run


def test_select_from_trainer_metrics_and_tunes_on_the_best_epochs_dev_predictions(tmp_path) -> None:
    run = make_run(
        tmp_path,
        [
            {"epoch": 1, "split": "validation", "auroc": 0.70, "auroc_align": 0.60, "kappa": 0.10, "loss": 1.0},
            {"epoch": 1, "split": "train", "loss": 0.9},
            {"epoch": 2, "split": "validation", "auroc": 0.85, "auroc_align": 0.80, "kappa": 0.40, "loss": 0.7},
            {"epoch": 3, "split": "validation", "auroc": 0.86, "auroc_align": 0.55, "kappa": 0.05, "loss": 0.6},
        ],
    )
    dev_rows = rows_for(0)
    dev = dev_eval_dir(run / "epoch-2")
    dev.mkdir(parents=True)
    write_predictions(dev_rows, dev / "predictions.parquet")
    result = runner.invoke(app, ["select", str(run)])
    assert result.exit_code == 0, result.output
    selection = json.loads((run / SELECTION).read_text())
    assert selection["best_epoch"] == 2
    expected, _ = tune_thresholds(*arrays(dev_rows))
    assert selection["thresholds"] == expected.model_dump()
    # the selected thresholds reach a test summary of that checkpoint
    test_summary = summarize(
        rows_for(1), method="clsgen", split="test", thresholds=expected, threshold_source="x", source={}, n_bootstrap=0
    )
    assert test_summary.metrics["f1_tuned"] is not None and test_summary.metrics["kappa_tuned"] is not None


def test_select_without_dev_metrics_says_what_to_run(tmp_path) -> None:
    run = make_run(tmp_path, [{"epoch": 1, "split": "validation", "auroc": 0.7, "loss": 1.0}])
    result = runner.invoke(app, ["select", str(run)])
    assert result.exit_code == 2 and "--dataset" in result.output and not (run / SELECTION).exists()
    with pytest.raises(ValueError, match="evaluate run --checkpoint"):
        select_epoch(run, None)


def test_report_tables_over_methods_and_seeds_with_plots(tmp_path) -> None:
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
    run = make_run(
        tmp_path,
        [
            {"epoch": e, "split": "validation", "auroc": 0.6 + e / 10, "parsability": e / 3, "kappa": e / 4}
            for e in (1, 2, 3)
        ],
    )
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


def test_report_of_a_folder_without_metrics_exits_2(tmp_path) -> None:
    result = runner.invoke(app, ["report", str(tmp_path), "--out", str(tmp_path / "r")])
    assert result.exit_code == 2 and "metrics.json" in result.output
