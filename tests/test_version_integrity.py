"""A version's files are all hashed and checked, names and versions have one spelling, and the staging folders of
killed publishes are removed (issue 9, items 6-8)."""

import json
import os
import time
from pathlib import Path

import polars as pl
import pytest

from curate.publish.versions import QUIET_SECONDS, filling
from schemas.dataset_version import load_version, version_key
from tests.run_fixtures import synthetic_run
from tests.test_hub_layout import hub_copy
from tests.test_publish import invoke, publish


@pytest.fixture()
def version_dir(tmp_path: Path) -> Path:
    """A published cf 1.0.0 in tmp_path/registry."""
    run_dir, _, _ = synthetic_run(tmp_path / "run", 12, k=2, seed=5)
    result = publish(tmp_path, run_dir, "1.0.0")
    assert result.exit_code == 0, result.output
    return tmp_path / "registry" / "cf" / "1.0.0"


def flip_byte(path: Path) -> None:
    """Change one byte in the middle of a file."""
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))


def staging_folder(name_dir: Path, name: str, age: float) -> Path:
    """A staging folder as a killed publish leaves it, last touched `age` seconds ago."""
    folder = name_dir / name
    (folder / "parquet").mkdir(parents=True)
    (folder / "parquet" / "train.parquet").write_bytes(b"half written")
    os.utime(folder, (time.time() - age, time.time() - age))
    return folder


def test_the_manifest_records_the_hash_of_every_file_but_itself(version_dir: Path):
    manifest = json.loads((version_dir / "manifest.json").read_text())
    files = {p.relative_to(version_dir).as_posix() for p in version_dir.rglob("*") if p.is_file()}
    assert set(manifest["files"]) == files - {"manifest.json"}
    assert {"README.md", "parquet/train.parquet", "arrow/dataset_dict.json"} <= set(manifest["files"])


@pytest.mark.parametrize("changed", ["parquet/train.parquet", "README.md", "arrow/train/state.json"])
def test_a_one_byte_edit_of_any_file_fails_to_load_naming_it(tmp_path: Path, version_dir: Path, changed: str):
    flip_byte(version_dir / changed)
    with pytest.raises(ValueError, match=f"{changed} sha256 .* does not match the manifest's .*new version"):
        load_version(version_dir)
    result = invoke("versions", "diff", "cf", "1.0.0", "1.0.0", "--registry", tmp_path / "registry")
    assert result.exit_code == 2 and changed in result.output


def test_a_missing_file_is_named(version_dir: Path):
    (version_dir / "parquet" / "validation.parquet").unlink()
    with pytest.raises(ValueError, match="parquet/validation.parquet .* is missing"):
        load_version(version_dir)


def test_a_version_without_file_hashes_still_loads_and_checks_its_rows(version_dir: Path):
    manifest = json.loads((version_dir / "manifest.json").read_text())
    del manifest["files"]
    (version_dir / "manifest.json").write_text(json.dumps(manifest))
    assert load_version(version_dir)[1].files == {}
    train = version_dir / "parquet" / "train.parquet"
    os.rename(version_dir / "arrow", version_dir.parent / "arrow-aside")  # the Hub layout: rows read from Parquet
    pl.read_parquet(train).with_columns(label=1 - pl.col("label")).write_parquet(train)
    with pytest.raises(ValueError, match="split 'train' hash .* does not match the manifest"):
        load_version(version_dir)


def test_pull_refuses_a_hub_copy_with_an_edited_card(tmp_path: Path, version_dir: Path):
    hub = hub_copy(version_dir, tmp_path / "hub")
    flip_byte(hub / "README.md")
    result = invoke("versions", "pull", hub, "--registry", tmp_path / "elsewhere")
    assert result.exit_code == 2 and "README.md sha256" in result.output
    assert not (tmp_path / "elsewhere").exists()


def test_push_refuses_an_edited_parquet_file_before_uploading(
    tmp_path: Path, version_dir: Path, monkeypatch: pytest.MonkeyPatch
):
    from huggingface_hub import HfApi, constants

    calls = []
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(HfApi, "create_repo", lambda self, repo, **kw: calls.append(repo))
    flip_byte(version_dir / "parquet" / "train.parquet")
    result = invoke("versions", "push", "cf", "1.0.0", "org/cf", "--registry", tmp_path / "registry")
    assert result.exit_code == 2 and "parquet/train.parquet sha256" in result.output
    assert calls == []


@pytest.mark.parametrize("name", ["cfx\n", "cf/x", ".cf", "cf x"])
def test_a_name_that_is_not_one_plain_folder_name_is_refused(tmp_path: Path, name: str):
    run_dir, _, _ = synthetic_run(tmp_path / "run", 4, k=2, seed=1)
    registry, cards = tmp_path / "registry", tmp_path / "cards"
    result = invoke(
        "publish", run_dir, "--name", name, "--version", "1.0.0", "--registry", registry, "--cards-dir", cards
    )
    assert result.exit_code == 2 and "dataset name" in result.output
    assert not (tmp_path / "registry").exists() or not any((tmp_path / "registry").iterdir())


@pytest.mark.parametrize(("version", "canonical"), [("2.0.02", "2.0.2"), ("2.0.002", "2.0.2"), ("01.00.0", "1.0.0")])
def test_a_version_with_a_leading_zero_is_refused_showing_its_canonical_form(
    tmp_path: Path, version: str, canonical: str
):
    run_dir, _, _ = synthetic_run(tmp_path / "run", 4, k=2, seed=1)
    result = publish(tmp_path, run_dir, version)
    assert result.exit_code == 2 and "leading zero" in result.output and canonical in result.output
    assert not (tmp_path / "registry" / "cf").exists() or not any((tmp_path / "registry" / "cf").iterdir())


@pytest.mark.parametrize("version", ["1.0.0\n", "1.0", "1.0.0.0", "v1.0.0", "1.0.٣"])
def test_a_version_that_is_not_three_numbers_is_refused(version: str):
    with pytest.raises(ValueError, match="is not X.Y.Z"):
        version_key(version)
    assert version_key("10.0.0") > version_key("9.10.0") > version_key("0.0.0")


def test_publish_removes_unfinished_publishes_no_one_is_filling(tmp_path: Path):
    run_dir, _, _ = synthetic_run(tmp_path / "run", 4, k=2, seed=1)
    name_dir = tmp_path / "registry" / "cf"
    staging_folder(name_dir, ".1.0.0.ab12cd34", QUIET_SECONDS + 60)
    young = staging_folder(name_dir, ".1.0.0.00000001", 1)  # maybe a publish that has not locked it yet
    other = staging_folder(name_dir, ".cache", QUIET_SECONDS + 60)  # not a staging folder's name
    held = staging_folder(name_dir, ".1.1.0.00000002", QUIET_SECONDS + 60)
    with filling(held):  # a concurrent publish filling it
        result = publish(tmp_path, run_dir, "1.0.0")
    assert result.exit_code == 0, result.output
    assert "removed 1 unfinished publish of 1.0.0 (.1.0.0.ab12cd34)" in result.output
    assert sorted(p.name for p in name_dir.iterdir()) == sorted(["1.0.0", young.name, other.name, held.name])


def test_versions_list_and_pull_remove_unfinished_publishes(tmp_path: Path, version_dir: Path):
    name_dir = version_dir.parent
    for suffix in ("aaaaaaaa", "bbbbbbbb"):
        staging_folder(name_dir, f".1.1.0.{suffix}", QUIET_SECONDS + 60)
    listed = invoke("versions", "list", "cf", "--registry", tmp_path / "registry")
    assert listed.exit_code == 0, listed.output
    assert "removed 2 unfinished publishes of 1.1.0 (.1.1.0.aaaaaaaa, .1.1.0.bbbbbbbb)" in listed.output
    assert [p.name for p in name_dir.iterdir()] == ["1.0.0"]
    hub = hub_copy(version_dir, tmp_path / "hub")
    staging_folder(tmp_path / "elsewhere" / "cf", ".1.0.0.cccccccc", QUIET_SECONDS + 60)
    pulled = invoke("versions", "pull", hub, "--registry", tmp_path / "elsewhere")
    assert pulled.exit_code == 0, pulled.output
    assert "removed 1 unfinished publish of 1.0.0 (.1.0.0.cccccccc)" in pulled.output
    assert [p.name for p in (tmp_path / "elsewhere" / "cf").iterdir()] == ["1.0.0"]
