"""`curate`: generate explanations with a teacher, inspect drops, review, publish versions."""

import typer

app = typer.Typer(no_args_is_help=True, add_completion=False, help=__doc__)

# Each command lives in its own module; register it here (one line each).
