"""Progress bars on stderr for evaluate's long parts (predict batches, judge and baseline engine calls)."""

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console

from schemas.progress import progress_bar


def stderr_console() -> Console:
    """The console progress draws on: stderr, so stdout stays parsable."""
    return Console(stderr=True)


@contextmanager
def progress(description: str, total: int) -> Iterator[Callable[[int], None]]:
    """A bar of examples done / total with the elapsed time; yields `advance(n)`. Hidden when stderr is no TTY."""
    console = stderr_console()
    with progress_bar(console) as bar:
        task = bar.add_task(description, total=total)
        yield lambda n: bar.advance(task, n)
