"""The one progress bar of every long command: what, bar, done/total, extra fields, time; drawn on terminals only."""

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn


def progress_bar(
    console: Console, *fields: str, transient: bool = False, remaining: bool = False, enabled: bool = True
) -> Progress:
    """A rich bar with `fields` as extra text columns (e.g. "{task.fields[info]}"), elapsed or remaining time."""
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        *(TextColumn(field) for field in fields),
        TimeRemainingColumn() if remaining else TimeElapsedColumn(),
        console=console,
        transient=transient,
        disable=not (enabled and console.is_terminal),
    )
