"""Typer sub-app `curate review`: push discarded examples to Argilla, pull submitted reviews back."""

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from curate.cli_errors import exit_on_bad_input
from curate.review import DEFAULT_WORKSPACE, REVIEWS, pull, push

console = Console()
review_app = typer.Typer(no_args_is_help=True, help="Human review of discarded examples in Argilla 2.x "
                         "(server from ARGILLA_API_URL / ARGILLA_API_KEY).")


@review_app.command("push")
def push_cmd(
    run_dir: Annotated[Path, typer.Argument(help="run directory of `curate generate`")],
    label: Annotated[int | None, typer.Option(help="gold label to review (default: the minority class)")] = None,
    all_discarded: Annotated[bool, typer.Option("--all-discarded", help="every discarded example")] = False,
    workspace: Annotated[str, typer.Option(help="Argilla workspace (created if missing)")] = DEFAULT_WORKSPACE,
    dataset: Annotated[str | None, typer.Option(help="Argilla dataset (default: RUN_DIR name + -review)")] = None,
) -> None:
    """Create or reuse a review queue and add the discarded examples it does not hold yet."""
    with exit_on_bad_input():
        if label is not None and all_discarded:
            raise ValueError("give --label or --all-discarded, not both")
        result = push(run_dir, label, all_discarded, workspace, dataset)
    which = "all classes" if result.label is None else f"label {result.label}"
    console.print(
        f"{result.discarded} discarded examples ({which}); {result.added} added to"
        f" {result.workspace}/{result.dataset}, {result.discarded - result.added} already there"
    )


@review_app.command("pull")
def pull_cmd(
    run_dir: Annotated[Path, typer.Argument(help="run directory of `curate generate`")],
    workspace: Annotated[str | None, typer.Option(help="Argilla workspace (default: the one pushed to)")] = None,
    dataset: Annotated[str | None, typer.Option(help="Argilla dataset (default: the one pushed to)")] = None,
) -> None:
    """Write every submitted review into RUN_DIR/reviews.parquet."""
    with exit_on_bad_input():
        frame = pull(run_dir, workspace, dataset)
    counts = dict(frame.group_by("decision").len().iter_rows()) if frame.height else {}
    console.print(f"{frame.height} submitted reviews {counts} -> {run_dir / REVIEWS}")
