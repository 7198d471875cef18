"""Dataset versions and the Hugging Face Hub's layout (Parquet, card, manifest): push one with its version as tag,
pull one back into the registry after checking its hashes."""

import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from curate.publish.versions import check_name, filling, remove_unfinished, version_key
from schemas.dataset_version import (
    CARD,
    MANIFEST,
    PARQUET_DIR,
    check_files,
    check_hashes,
    parquet_splits,
    read_manifest,
)
from schemas.files import staging_folder
from schemas.hub import check_online
from schemas.manifest import DatasetManifest

UPLOADED = [f"{PARQUET_DIR}/*.parquet", CARD, MANIFEST]
REPO_ID = re.compile(r"^(?P<repo>[A-Za-z0-9][\w.-]*/[\w.-]+)(?:@(?P<revision>[^@\s]+))?$")


def push_version(version_dir: Path, repo: str, private: bool = True) -> str:
    """Upload Parquet files, card and manifest to dataset repo `repo`, then tag that commit `X.Y.Z`.

    The card's YAML `configs` maps each split to its Parquet file, so `load_dataset(repo, revision=X.Y.Z)` works.
    A version whose files or splits do not match its manifest, or whose tag already exists, is refused before
    anything is uploaded.
    """
    from huggingface_hub import HfApi

    check_online()
    manifest = checked_hub_layout(version_dir)
    api = HfApi()
    api.create_repo(repo, repo_type="dataset", private=private, exist_ok=True)
    tags = {ref.name for ref in api.list_repo_refs(repo, repo_type="dataset").tags}
    if manifest.version in tags:
        raise ValueError(f"{repo} already has a tag {manifest.version}: versions are immutable; publish a new one")
    commit = api.upload_folder(
        repo_id=repo,
        repo_type="dataset",
        folder_path=str(version_dir),
        allow_patterns=UPLOADED,
        commit_message=f"{manifest.name} {manifest.version}",
    )
    api.create_tag(
        repo,
        repo_type="dataset",
        tag=manifest.version,
        revision=commit.oid,
        tag_message=f"{manifest.name} {manifest.version}",
    )
    return f"https://huggingface.co/datasets/{repo}/tree/{manifest.version}"


def hub_snapshot(source: str) -> Path:
    """The files of Hub dataset repo `REPO[@REVISION]` in the Hugging Face cache; ValueError when it cannot be had."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HfHubHTTPError, HFValidationError, LocalEntryNotFoundError

    match = REPO_ID.match(source)
    if not match:
        raise ValueError(f"{source!r} is neither a folder nor a Hub dataset repo id ORG/NAME[@REVISION]")
    repo, revision = match["repo"], match["revision"]
    try:
        return Path(snapshot_download(repo, repo_type="dataset", revision=revision, allow_patterns=UPLOADED))
    except (LocalEntryNotFoundError, HfHubHTTPError, HFValidationError) as err:
        raise ValueError(
            f"cannot download {repo}@{revision or 'main'} from the Hub"
            f" ({type(err).__name__}: {str(err).splitlines()[0]}): check the repo id, the revision (the version"
            " tag), the network and HF_HUB_OFFLINE, or pull a local folder in the Hub's layout instead"
        ) from None


def checked_hub_layout(folder: Path) -> DatasetManifest:
    """The manifest of a folder in the Hub's layout whose files and Parquet splits all match its hashes; ValueError
    otherwise."""
    manifest = read_manifest(folder)
    check_name(manifest.name)
    version_key(manifest.version)
    check_files(folder, manifest)
    check_hashes(folder, parquet_splits(folder, manifest), manifest)
    return manifest


def copy_hub_layout(folder: Path, target: Path) -> None:
    """Copy the Hub layout's files into `target` atomically (a staging folder beside it, renamed into place)."""
    staging = staging_folder(target)
    try:
        with filling(staging):
            (staging / PARQUET_DIR).mkdir()
            for path in [*sorted((folder / PARQUET_DIR).glob("*.parquet")), folder / CARD, folder / MANIFEST]:
                if path.is_file():
                    shutil.copy2(path, staging / path.relative_to(folder))
            os.rename(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


@dataclass
class Pulled:
    """Where a pulled version is, whether it was written (False: already there, same hashes), and the unfinished
    publishes or pulls removed beside it."""

    target: Path
    written: bool
    removed: list[str]


def pull_version(source: str, registry: Path) -> Pulled:
    """Copy a version in the Hub's layout (a folder, or Hub repo `REPO[@REVISION]`) to REGISTRY/NAME/X.Y.Z after
    checking every file's and split's hash."""
    folder = Path(source) if Path(source).is_dir() else hub_snapshot(source)
    manifest = checked_hub_layout(folder)
    target = Path(registry) / manifest.name / manifest.version
    removed = remove_unfinished(target.parent)
    if (target / MANIFEST).is_file():
        if read_manifest(target).splits != manifest.splits:
            raise ValueError(
                f"{target} already holds {manifest.name} {manifest.version} with other content: versions are"
                " immutable; pull into another --registry, or publish the change as a new version"
            )
        return Pulled(target, False, removed)
    copy_hub_layout(folder, target)
    return Pulled(target, True, removed)
