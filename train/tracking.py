"""Experiment tracking through accelerate's trackers: TensorBoard into the run folder by default, W&B / MLflow when
installed and asked for (`log_with`)."""

from accelerate import Accelerator
from accelerate.utils import is_mlflow_available, is_tensorboard_available, is_wandb_available

from train.config import TrainConfig

AVAILABLE = {"tensorboard": is_tensorboard_available, "wandb": is_wandb_available, "mlflow": is_mlflow_available}
PROJECT = "tracking"


def check_trackers(log_with: list[str]) -> None:
    """ValueError naming a tracker in `log_with` whose package is not installed, and the fix."""
    for name in log_with:
        if not AVAILABLE[name]():
            raise ValueError(
                f"log_with: {name} is not installed: `pip install {name}`, or drop {name} from log_with"
                f" (e.g. log_with=[tensorboard])"
            )


def hparams(cfg: TrainConfig) -> dict[str, int | float | str | bool]:
    """The config as scalar hyper-parameters (lists and None as text), the form TensorBoard's hparams accept."""
    return {k: v if isinstance(v, int | float | str | bool) else str(v) for k, v in cfg.model_dump(mode="json").items()}


def start_trackers(accelerator: Accelerator, cfg: TrainConfig) -> None:
    """Open the run's trackers (main process only; TensorBoard writes under RUN/tracking/)."""
    if cfg.log_with:
        accelerator.init_trackers(PROJECT, config=hparams(cfg))
