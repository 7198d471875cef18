"""`evaluate report --training-run` draws the loss curves and the dev AUROC per epoch from the run's logs."""

from pathlib import Path

import pytest

from evaluate.report import LOSSES_PNG, loss_curves
from schemas.files import Journal
from schemas.train_metrics import METRICS, STEPS, DevEpochMetrics, EpochMetrics, StepRow


def write_logs(run: Path, epochs: int, auroc: float | None) -> None:
    """What `train run` journals: two step rows an epoch and a validation row at each epoch's end."""
    run.mkdir()
    steps, metrics = Journal(run / STEPS, StepRow), Journal(run / METRICS, EpochMetrics)
    for step in range(1, 2 * epochs + 1):
        lm, cls = 2.0 / step, 0.7 / step
        steps.append(
            StepRow(epoch=(step + 1) // 2, step=step, loss=lm + cls, lm_loss=lm, cls_loss=cls, grad_norm=1.0, lr=1e-4)
        )
    for epoch in range(1, epochs + 1):
        dev = DevEpochMetrics(
            epoch=epoch, n=4, auroc=auroc, f1=0.5, accuracy=0.5, brier=0.25, cls_loss=0.6, lm_loss=1.0, loss=1.6
        )
        metrics.append(EpochMetrics(dev))
    steps.close()
    metrics.close()


@pytest.mark.filterwarnings("error")
def test_loss_curves_come_from_the_step_log_with_dev_auroc_per_epoch(tmp_path):
    run = tmp_path / "run"
    write_logs(run, epochs=3, auroc=0.75)
    with (run / STEPS).open("a") as handle:
        handle.write('{"epoch": 4, "step": 7, "lo')  # a torn last line, as while training writes it
    before = (run / STEPS).read_bytes()
    text = "\n".join(loss_curves(run, tmp_path))
    assert "## Training curves" in text and f"![losses]({LOSSES_PNG})" in text and "losses only" not in text
    assert (tmp_path / LOSSES_PNG).stat().st_size > 1000
    assert (run / STEPS).read_bytes() == before, "the report reads the log, never rewrites it"


def test_a_run_without_dev_auroc_draws_losses_only_and_an_empty_log_no_figure(tmp_path):
    run = tmp_path / "run"
    write_logs(run, epochs=2, auroc=None)
    assert "No dev AUROC in metrics.jsonl" in "\n".join(loss_curves(run, tmp_path))
    assert (tmp_path / LOSSES_PNG).is_file()
    (run / STEPS).write_text("")
    text = "\n".join(loss_curves(run, tmp_path))
    assert "No figure:" in text and "has no complete step row" in text and not (tmp_path / LOSSES_PNG).exists()
