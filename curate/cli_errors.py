"""One way for the curate CLIs to turn bad input into a clear message and exit code 2."""

from collections.abc import Iterator
from contextlib import contextmanager

import typer
from rich.console import Console

from curate.engines.base import EngineError

EXIT_BAD_INPUT = 2
errors = Console(stderr=True, soft_wrap=True)


@contextmanager
def exit_on_bad_input() -> Iterator[None]:
    """Print a ValueError or EngineError (bad file, unreachable server, refused version) and exit with code 2."""
    try:
        yield
    except (ValueError, EngineError) as err:
        errors.print(f"[red]error:[/red] {err}", highlight=False)
        raise typer.Exit(EXIT_BAD_INPUT) from None
