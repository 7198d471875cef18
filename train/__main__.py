"""`python -m train` / `accelerate launch -m train run ...`."""

from train.cli import app

app()
