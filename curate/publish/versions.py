"""Dataset versions in a registry folder: list them, find a parent, and diff two of them by example id."""

import re
from pathlib import Path

from schemas.base import Strict
from schemas.dataset_version import load_version, published_versions, read_manifest, version_key
from schemas.manifest import DatasetManifest

NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


def check_name(name: str) -> str:
    """A dataset name usable as a folder name; ValueError otherwise."""
    if not NAME.fullmatch(name):
        raise ValueError(f"dataset name {name!r}: use letters, digits, '.', '_' and '-' (no slashes or spaces)")
    return name


def list_versions(registry: Path, name: str) -> list[DatasetManifest]:
    """Manifests of every published version of `name`, oldest first (unfinished staging folders skipped)."""
    folder = Path(registry) / check_name(name)
    return [read_manifest(folder / version) for version in published_versions(folder)]


def parent_version(registry: Path, name: str, version: str) -> str | None:
    """The highest published version below `version`, or None."""
    below = [m.version for m in list_versions(registry, name) if version_key(m.version) < version_key(version)]
    return below[-1] if below else None


class SplitDiff(Strict):
    """How one split changed between two versions; ids listed in full."""

    count_a: int
    count_b: int
    added: list[str]
    removed: list[str]
    changed: list[str]


def diff_versions(registry: Path, name: str, a: str, b: str) -> dict[str, SplitDiff]:
    """Per split: counts, and example ids added, removed or changed (any column differs) from `a` to `b`."""
    folder = Path(registry) / check_name(name)
    data_a, _ = load_version(folder / a)
    data_b, _ = load_version(folder / b)
    diffs = {}
    for split in dict.fromkeys([*data_a, *data_b]):
        rows_a = {row["id"]: row for row in data_a[split].to_list()} if split in data_a else {}
        rows_b = {row["id"]: row for row in data_b[split].to_list()} if split in data_b else {}
        diffs[split] = SplitDiff(
            count_a=len(rows_a),
            count_b=len(rows_b),
            added=sorted(rows_b.keys() - rows_a.keys()),
            removed=sorted(rows_a.keys() - rows_b.keys()),
            changed=sorted(i for i in rows_a.keys() & rows_b.keys() if rows_a[i] != rows_b[i]),
        )
    return diffs
