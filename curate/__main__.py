"""`python -m curate` runs the curate CLI."""

from curate.cli import app

app()
