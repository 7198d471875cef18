"""Step progress bars of `curate review push / pull` and `curate publish`: on a terminal only, gone when done."""

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn


def step_bar(console: Console) -> Progress:
    """A transient bar (step, bar, done/total, elapsed), so only the command's summary line stays; off when piped."""
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
        disable=not console.is_terminal,
    )
