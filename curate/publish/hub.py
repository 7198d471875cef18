"""Upload a published dataset version to the Hugging Face Hub, tagged with its version."""

from pathlib import Path

from schemas.dataset_version import MANIFEST, PARQUET_DIR, read_manifest

UPLOADED = [f"{PARQUET_DIR}/*.parquet", "README.md", MANIFEST]


def check_online() -> None:
    """Refuse before any work when the Hub is switched off in this environment."""
    from huggingface_hub import constants

    if constants.HF_HUB_OFFLINE:
        raise ValueError("HF_HUB_OFFLINE is set: unset it (and log in with `hf auth login`) to use --push-to-hub")


def push_version(version_dir: Path, repo: str, private: bool = True) -> str:
    """Upload Parquet files, card and manifest to dataset repo `repo`, then tag that commit `X.Y.Z`.

    The card's YAML `configs` maps each split to its Parquet file, so `load_dataset(repo, revision=X.Y.Z)` works.
    A version tag that already exists is refused before anything is uploaded.
    """
    from huggingface_hub import HfApi

    check_online()
    manifest = read_manifest(version_dir)
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
