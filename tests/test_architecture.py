"""The layout's import rules hold: who may import whom, and evaluate uses curate's public engine API only."""

import ast
from pathlib import Path

import pytest

from tests.conftest import REPO

PACKAGES = ("schemas", "curate", "train", "evaluate")
MAY_IMPORT = {
    "schemas": set(),
    "curate": {"schemas"},
    "train": {"schemas"},
    "evaluate": {"schemas", "train", "curate"},
}


def imports_of(package: str) -> list[tuple[Path, str, list[str]]]:
    """(file, imported module, imported names) for every import of our packages inside `package`."""
    found = []
    for path in sorted((REPO / package).rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                found.append((path, node.module, [alias.name for alias in node.names]))
            elif isinstance(node, ast.Import):
                found.extend((path, alias.name, []) for alias in node.names)
    return [(path, module, names) for path, module, names in found if module.split(".")[0] in PACKAGES]


@pytest.mark.parametrize("package", PACKAGES)
def test_packages_import_only_what_the_layout_allows(package: str) -> None:
    allowed = MAY_IMPORT[package] | {package}
    wrong = [f"{p.relative_to(REPO)}: {m}" for p, m, _ in imports_of(package) if m.split(".")[0] not in allowed]
    assert not wrong, f"{package} may import only {sorted(allowed)}"


def test_evaluate_uses_only_the_public_engine_api_of_curate() -> None:
    import curate.engines

    public = set(curate.engines.__all__)
    uses = [(p, m, names) for p, m, names in imports_of("evaluate") if m.split(".")[0] == "curate"]
    assert uses, "evaluate runs its baselines and judge on curate's engines"
    wrong = [f"{p.relative_to(REPO)}: {m} {names}" for p, m, names in uses if m != "curate.engines"]
    assert not wrong, "evaluate may import the package curate.engines only, not its modules or other curate code"
    private = [f"{p.relative_to(REPO)}: {names}" for p, _, names in uses if not set(names) <= public]
    assert not private, f"evaluate may import only curate.engines.__all__ = {sorted(public)}"


def test_no_module_imports_a_private_name_of_another_package() -> None:
    wrong = [
        f"{p.relative_to(REPO)}: {m}.{name}"
        for package in PACKAGES
        for p, m, names in imports_of(package)
        for name in names
        if name.startswith("_") and m.split(".")[0] != package
    ]
    assert not wrong
