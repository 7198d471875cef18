"""`curate`: generate explanations with a teacher, inspect drops, review, publish versions."""

import typer

from curate.cli_generate import decide_cmd, generate_cmd

app = typer.Typer(no_args_is_help=True, add_completion=False, help=__doc__)
app.command("generate")(generate_cmd)
app.command("decide")(decide_cmd)

# Each command lives in its own module; register it here (one line each).
from curate.cli_stats import stats_cmd  # noqa: E402

app.command("stats")(stats_cmd)
