"""`python -m evaluate`."""

from evaluate.cli import app

app()
