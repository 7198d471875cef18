"""`curate`: generate explanations with a teacher, inspect drops, review, publish versions."""

import typer

from curate.cli_generate import decide_cmd, generate_cmd

app = typer.Typer(no_args_is_help=True, add_completion=False, help=__doc__)
app.command("generate")(generate_cmd)
app.command("decide")(decide_cmd)

# Each command lives in its own module; register it here (one line each).
from curate.cli_publish import publish_cmd, versions_app  # noqa: E402
from curate.cli_review import review_app  # noqa: E402
from curate.cli_stats import stats_cmd  # noqa: E402

app.command("stats")(stats_cmd)
app.add_typer(review_app, name="review")
app.command("publish")(publish_cmd)
app.add_typer(versions_app, name="versions")
