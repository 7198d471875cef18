"""Read a published dataset version (registry layout with `arrow/`, or the Hub's Parquet layout) and check its
content hashes against the manifest."""

import hashlib
import json
import re
from pathlib import Path

from schemas.files import file_sha256
from schemas.manifest import DatasetManifest

MANIFEST = "manifest.json"
CARD = "README.md"  # the Hugging Face data card
ARROW_DIR = "arrow"
PARQUET_DIR = "parquet"
VERSION = re.compile(r"(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)")  # semver: no leading zeros
NUMBERS = re.compile(r"([0-9]+)\.([0-9]+)\.([0-9]+)")


def rows_sha256(rows: list[dict]) -> str:
    """Content hash of a split: sha256 over its rows, in stored order, as canonical JSON lines."""
    digest = hashlib.sha256()
    for row in rows:
        digest.update(json.dumps(row, sort_keys=True, ensure_ascii=False, default=str).encode())
        digest.update(b"\n")
    return digest.hexdigest()


def version_key(version: str) -> tuple[int, int, int]:
    """Semver ordering key; ValueError for anything but canonical X.Y.Z (one spelling per number: no leading zeros)."""
    match = VERSION.fullmatch(version)
    if match:
        return tuple(int(part) for part in match.groups())
    numbers = NUMBERS.fullmatch(version)
    if numbers:
        canonical = ".".join(str(int(part)) for part in numbers.groups())
        raise ValueError(f"version {version!r} has a leading zero: write it {canonical} (numbers have one spelling)")
    raise ValueError(f"version {version!r} is not X.Y.Z (three numbers, e.g. 1.0.0)")


def published_versions(name_dir: Path) -> list[str]:
    """The versions published in a dataset's folder `REGISTRY/NAME`, oldest first."""
    if not Path(name_dir).is_dir():
        return []
    found = [p.name for p in Path(name_dir).iterdir() if VERSION.fullmatch(p.name) and (p / MANIFEST).is_file()]
    return sorted(found, key=version_key)


def read_manifest(version_dir: Path) -> DatasetManifest:
    """Load `manifest.json` of a version folder; ValueError says what is missing (a version, for a dataset folder)."""
    path = Path(version_dir) / MANIFEST
    if not path.is_file():
        versions = published_versions(version_dir)
        if versions:
            raise ValueError(
                f"{version_dir} holds versions {', '.join(versions)}: pass one, e.g. --dataset"
                f" {Path(version_dir) / versions[-1]}"
            )
        raise ValueError(f"{version_dir} is not a published dataset version (no {MANIFEST}): run `curate publish`")
    return DatasetManifest.model_validate_json(path.read_text())


def arrow_splits(version_dir: Path):
    """The splits saved with `save_to_disk` under `arrow/` (a registry copy written by `curate publish`)."""
    from datasets import load_from_disk

    return load_from_disk(str(Path(version_dir) / ARROW_DIR))


def parquet_splits(version_dir: Path, manifest: DatasetManifest):
    """The manifest's splits read from `parquet/SPLIT.parquet` (the Hub's layout), features from the file metadata."""
    import pyarrow.parquet as pq
    from datasets import Dataset, DatasetDict
    from datasets.table import InMemoryTable

    data = {}
    for split in manifest.splits:
        path = Path(version_dir) / PARQUET_DIR / f"{split}.parquet"
        if not path.is_file():
            raise ValueError(f"{version_dir}: split {split!r} is listed in the manifest but {path.name} is missing")
        data[split] = Dataset(InMemoryTable(pq.read_table(path)), split=split)
    return DatasetDict(data)


def files_sha256(version_dir: Path) -> dict[str, str]:
    """sha256 of every file in a version folder but its manifest, by POSIX path relative to the folder."""
    root = Path(version_dir)
    paths = [p for p in sorted(root.rglob("*")) if p.is_file() and p.relative_to(root) != Path(MANIFEST)]
    return {p.relative_to(root).as_posix(): file_sha256(p) for p in paths}


def expected_files(version_dir: Path, manifest: DatasetManifest) -> dict[str, str]:
    """The recorded files this copy must hold: all of them, or in the Hub's layout (no `arrow/`) all but Arrow's."""
    if (Path(version_dir) / ARROW_DIR).is_dir():
        return manifest.files
    return {path: digest for path, digest in manifest.files.items() if not path.startswith(f"{ARROW_DIR}/")}


def check_files(version_dir: Path, manifest: DatasetManifest) -> None:
    """ValueError naming the first recorded file missing or changed since publishing (versions published before file
    hashes record none: their row hashes are checked instead)."""
    for path, digest in expected_files(version_dir, manifest).items():
        file = Path(version_dir) / path
        if not file.is_file():
            raise ValueError(
                f"{version_dir}: {path} (recorded in the {MANIFEST}) is missing: copy the whole version folder, or"
                " pull it again with `curate versions pull`"
            )
        actual = file_sha256(file)
        if actual != digest:
            raise ValueError(
                f"{version_dir}: {path} sha256 {actual[:12]} does not match the manifest's {digest[:12]}: the file was"
                " modified after publishing; restore the version folder from where it was published (or `curate"
                " versions pull` it again), or republish the changed data as a new version"
            )


def check_hashes(version_dir: Path, data, manifest: DatasetManifest) -> None:
    """ValueError unless every split of the manifest is in `data` with the recorded content hash."""
    for split, info in manifest.splits.items():
        if split not in data:
            raise ValueError(f"{version_dir}: split {split!r} listed in the manifest is missing from the data")
        actual = rows_sha256(data[split].to_list())
        if actual != info.sha256:
            raise ValueError(
                f"{version_dir}: split {split!r} hash {actual[:12]} does not match the manifest's {info.sha256[:12]}:"
                " the data was modified after publishing; republish it as a new version"
            )


def load_version(version_dir: Path):
    """The version's `datasets.DatasetDict` and manifest, from `arrow/` or else the Hub layout's `parquet/`;
    ValueError when neither is there or a file or content hash does not match."""
    manifest = read_manifest(version_dir)
    check_files(version_dir, manifest)
    if (Path(version_dir) / ARROW_DIR).is_dir():
        data = arrow_splits(version_dir)
    elif (Path(version_dir) / PARQUET_DIR).is_dir():
        data = parquet_splits(version_dir, manifest)
    else:
        raise ValueError(
            f"{version_dir} has a {MANIFEST} but neither {ARROW_DIR}/ nor {PARQUET_DIR}/: copy the whole version"
            " folder, or pull it again with `curate versions pull`"
        )
    check_hashes(version_dir, data, manifest)
    return data, manifest
