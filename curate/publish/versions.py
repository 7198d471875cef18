"""Dataset versions in a registry folder: list them, find a parent, diff two of them by example id, and remove the
staging folders that killed publishes left."""

import fcntl
import os
import re
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from schemas.base import Strict
from schemas.dataset_version import VERSION, load_version, published_versions, read_manifest, version_key
from schemas.manifest import DatasetManifest

NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
STAGING = re.compile(rf"\.(?P<version>{VERSION.pattern})\.[0-9a-f]{{8}}")  # schemas.files.staging_folder's names
QUIET_SECONDS = 60  # a younger staging folder may be one a publish made and has not locked yet


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


@contextmanager
def filling(staging: Path) -> Iterator[None]:
    """Hold an exclusive lock on a staging folder while it is filled, so that `remove_unfinished` leaves it alone."""
    fd = os.open(staging, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def remove_if_abandoned(staging: Path) -> bool:
    """Remove a staging folder no live process holds (see `filling`) that is older than QUIET_SECONDS."""
    try:
        if time.time() - staging.stat().st_mtime < QUIET_SECONDS:
            return False
        fd = os.open(staging, os.O_RDONLY)
    except FileNotFoundError:  # renamed into place or removed meanwhile
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        shutil.rmtree(staging)
        return True
    except BlockingIOError:  # a publish is filling it
        return False
    finally:
        os.close(fd)


def remove_unfinished(name_dir: Path) -> list[str]:
    """Remove the staging folders that killed publishes or pulls left in `REGISTRY/NAME`; one line per version saying
    so (nothing in a folder this process cannot write)."""
    if not os.access(name_dir, os.W_OK | os.X_OK):
        return []
    removed: dict[str, list[str]] = {}
    for folder in sorted(Path(name_dir).iterdir()):
        match = STAGING.fullmatch(folder.name)
        if match and folder.is_dir() and remove_if_abandoned(folder):
            removed.setdefault(match["version"], []).append(folder.name)
    return [
        f"removed {len(names)} unfinished publish{'es' if len(names) > 1 else ''} of {version} ({', '.join(names)})"
        for version, names in removed.items()
    ]
