"""The exit-code table of every clsgen command, and the one way to turn bad input into a clear message."""

from collections.abc import Iterator
from contextlib import contextmanager
from enum import IntEnum

import typer
from rich.console import Console
from rich.markup import escape

from schemas.redact import redact

errors = Console(stderr=True, soft_wrap=True)


class ExitCode(IntEnum):
    """What a command's exit status means, the same in `curate`, `train` and `evaluate`."""

    DONE = 0
    PARTIAL = 1  # work left pending (engine errors, an interrupt): rerun the same command to resume
    BAD_INPUT = 2  # the message names the file, row, field or server and the fix


def fail(message: str) -> typer.Exit:
    """Print `error: message` to stderr and return the exit (raise it) with code BAD_INPUT."""
    errors.print(f"[red]error:[/red] {escape(redact(message))}", highlight=False)
    return typer.Exit(ExitCode.BAD_INPUT)


@contextmanager
def exit_on_bad_input() -> Iterator[None]:
    """Turn a ValueError (bad file, unreachable server, refused version) or OSError into one line and exit 2."""
    try:
        yield
    except (ValueError, OSError) as err:
        raise fail(str(err)) from None
