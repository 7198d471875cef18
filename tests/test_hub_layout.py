"""A version in the Hub's layout (Parquet, card, manifest; no `arrow/`), as `--push-to-hub` uploads it: loaded by
`load_version`, `datasets.load_dataset`, `train run` and `evaluate run`, and pulled back with `curate versions pull`
(hash-checked, atomic). No network: the Hub's side is a folder, and `snapshot_download` is replaced or offline."""

import re
import shutil
from pathlib import Path

import polars as pl
import pytest
from datasets import ClassLabel, load_dataset
from huggingface_hub import DatasetCard
from typer.testing import CliRunner

import evaluate.cli
import train.cli
from curate.publish.hub import UPLOADED
from schemas.dataset_version import load_version
from tests.run_fixtures import synthetic_examples, write_run
from tests.test_publish import invoke, publish, write_test_file

FAST = ["head_hidden=16", "batch_size=4", "pack_tokens=256"]


def hub_copy(version_dir: Path, dest: Path) -> Path:
    """The files `push_version` uploads (its allow_patterns), copied as the Hub would serve them."""
    for path in version_dir.rglob("*"):
        relative = path.relative_to(version_dir)
        if path.is_file() and any(relative.match(pattern) for pattern in UPLOADED):
            (dest / relative).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, dest / relative)
    return dest


@pytest.fixture()
def published(tmp_path: Path) -> Path:
    """A published cf 1.0.0 (train, validation with both classes, a 4-row test split) and its Hub-layout copy."""
    examples = synthetic_examples(9)
    plan = {ex.id: ["accepted"] if ex.label or int(ex.id.split("-")[1]) % 2 else ["wrong_label"] * 2 for ex in examples}
    write_run(tmp_path / "run", examples, plan, k=2)
    rows = [(f"t-{i}", f"New claim {i}.", f"New abstract {i}.", str(i % 2)) for i in range(4)]
    test_file = write_test_file(tmp_path / "test.csv", rows)
    result = publish(tmp_path, tmp_path / "run", "1.0.0", "--test", test_file)
    assert result.exit_code == 0, result.output
    return tmp_path / "registry" / "cf" / "1.0.0"


def card_snippet_lines(card: str, call: str) -> list[str]:
    """The lines of the card's code blocks that call `call`."""
    code = "\n".join(re.findall(r"```python\n(.*?)```", card, flags=re.S))
    return [line for line in code.splitlines() if f"{call}(" in line]


def test_the_hub_layout_loads_like_the_registry_copy(tmp_path: Path, published: Path):
    hub = hub_copy(published, tmp_path / "hub")
    assert sorted(str(p.relative_to(hub)) for p in hub.rglob("*") if p.is_file()) == [
        "README.md",
        "manifest.json",
        "parquet/test.parquet",
        "parquet/train.parquet",
        "parquet/validation.parquet",
    ]
    local, manifest = load_version(published)
    remote, remote_manifest = load_version(hub)
    assert remote_manifest == manifest
    for split in local:
        assert remote[split].to_list() == local[split].to_list()
        assert remote[split].features == local[split].features
        assert local[split].features["label"] == ClassLabel(names=["FALSE", "TRUE"])


def test_the_cards_loading_snippets_work_from_both_layouts(tmp_path: Path, published: Path):
    hub = hub_copy(published, tmp_path / "hub")
    card = (published / "README.md").read_text()
    (local_line,) = [line for line in card_snippet_lines(card, "load_dataset") if "VERSION_DIR" in line]
    (checked_line,) = card_snippet_lines(card, "load_version")
    expected = load_version(published)[0]
    for folder in (published, hub):
        scope: dict = {}
        exec("from datasets import load_dataset", scope)
        exec("from schemas.dataset_version import load_version", scope)
        exec(local_line.replace('"VERSION_DIR"', f"{str(folder)!r}, cache_dir={str(tmp_path / 'hf-cache')!r}"), scope)
        exec(checked_line.replace('"VERSION_DIR"', repr(str(folder))), scope)
        for split in expected:
            assert scope["data"][split].to_list() == expected[split].to_list()
        assert scope["data"]["train"].features["label"].names == ["FALSE", "TRUE"]
    assert "curate versions pull ORG/REPO@1.0.0" in card and "train run --dataset registry/cf/1.0.0" in card


def test_the_card_holds_no_machine_path_valid_licence_fields_and_the_real_truncation_count(
    tmp_path: Path, published: Path
):
    card = (published / "README.md").read_text()
    assert str(tmp_path) not in card and "| source run | `run` (the run folder's name) |" in card
    assert DatasetCard.load(published / "README.md").data.license == "unknown"
    assert "No document the teacher saw was longer than 1024 tokens: none was truncated." in card
    examples = pl.read_parquet(tmp_path / "run" / "examples.parquet")
    examples.with_columns(truncated=pl.col("id").is_in(["train-1", "validation-4"])).write_parquet(
        tmp_path / "run" / "examples.parquet"
    )
    licence = ["--license", "other", "--license-name", "cf-terms-1.0", "--license-link", "https://example.org/cf-terms"]
    named = publish(tmp_path, tmp_path / "run", "1.1.0", *licence)
    assert named.exit_code == 0, named.output
    card = DatasetCard.load(tmp_path / "registry" / "cf" / "1.1.0" / "README.md")
    assert (card.data.license, card.data.license_name, card.data.license_link) == (
        "other",
        "cf-terms-1.0",
        "https://example.org/cf-terms",
    )
    assert (
        "2 of 18 documents the teacher saw were longer than 1024 tokens and were truncated (field `article_abstract`)"
        in " ".join(card.text.split())
    )


@pytest.mark.parametrize(
    "args, message",
    [
        (["--license", "other"], "--license other needs --license-name"),
        (["--license", "other", "--license-name", "My Terms", "--license-link", "https://x.org"], "lowercase"),
        (["--license", "mit", "--license-name", "x"], "are for --license other"),
    ],
)
def test_licence_fields_the_hub_would_refuse_exit_2(tmp_path: Path, args: list[str], message: str):
    examples = synthetic_examples(3)
    write_run(tmp_path / "run", examples, {ex.id: ["accepted"] for ex in examples}, k=2)
    result = publish(tmp_path, tmp_path / "run", "1.0.0", *args)
    assert result.exit_code == 2 and message in " ".join(result.output.split())
    assert not (tmp_path / "registry").exists() and not (tmp_path / "cards").exists()


def test_a_split_with_no_rows_is_left_out_of_configs_and_still_loads(tmp_path: Path):
    examples = synthetic_examples(4)
    plan = {ex.id: ["accepted"] if ex.split == "train" else ["truncated"] * 2 for ex in examples}
    write_run(tmp_path / "run", examples, plan, k=2)
    assert publish(tmp_path, tmp_path / "run", "1.0.0").exit_code == 0
    version_dir = tmp_path / "registry" / "cf" / "1.0.0"
    card = DatasetCard.load(version_dir / "README.md")
    assert [f["split"] for f in card.data.configs[0]["data_files"]] == ["train"]
    assert "**Empty splits: validation** (no rows)" in card.text
    for folder in (version_dir, hub_copy(version_dir, tmp_path / "hub")):
        assert list(load_dataset(str(folder), cache_dir=str(tmp_path / "hf-cache"))) == ["train"]
        data, _ = load_version(folder)
        assert len(data["validation"]) == 0 and data["validation"].features == data["train"].features


def test_versions_pull_of_a_folder_copies_it_into_the_registry_once(tmp_path: Path, published: Path):
    hub = hub_copy(published, tmp_path / "hub")
    registry = tmp_path / "elsewhere"
    result = invoke("versions", "pull", hub, "--registry", registry)
    assert result.exit_code == 0, result.output
    pulled = registry / "cf" / "1.0.0"
    assert f"pulled {hub} -> {pulled}" in " ".join(result.output.split())
    assert sorted(str(p.relative_to(pulled)) for p in pulled.rglob("*")) == sorted(
        str(p.relative_to(hub)) for p in hub.rglob("*")
    )
    assert [p.name for p in (registry / "cf").iterdir()] == ["1.0.0"]  # no staging folder left
    assert load_version(pulled)[0]["train"].to_list() == load_version(published)[0]["train"].to_list()
    again = invoke("versions", "pull", hub, "--registry", registry)
    assert again.exit_code == 0 and "already there, same hashes" in again.output
    listed = invoke("versions", "list", "cf", "--registry", registry)
    assert listed.exit_code == 0 and "1.0.0" in listed.output


def test_versions_pull_of_a_modified_folder_exits_2_and_writes_nothing(tmp_path: Path, published: Path):
    hub = hub_copy(published, tmp_path / "hub")
    train = pl.read_parquet(hub / "parquet" / "train.parquet")
    train.with_columns(label=1 - pl.col("label")).write_parquet(hub / "parquet" / "train.parquet")
    result = invoke("versions", "pull", hub, "--registry", tmp_path / "elsewhere")
    assert result.exit_code == 2
    assert "parquet/train.parquet sha256" in result.output and "does not match the manifest" in result.output
    assert not (tmp_path / "elsewhere").exists()
    other = hub_copy(published, tmp_path / "other")
    manifest = published / "manifest.json"  # the registry already holds cf 1.0.0, here with other hashes
    manifest.write_text(re.sub(r'"sha256": "[0-9a-f]{4}', '"sha256": "0000', manifest.read_text()))
    clash = invoke("versions", "pull", other, "--registry", tmp_path / "registry")
    assert clash.exit_code == 2 and "with other content" in clash.output


def test_versions_pull_of_a_hub_repo_downloads_the_tag_and_checks_it(
    tmp_path: Path, published: Path, monkeypatch: pytest.MonkeyPatch
):
    """Up to the network: offline it exits 2 naming the repo and revision; online `snapshot_download` is replaced."""
    offline = invoke("versions", "pull", "org/cf@1.0.0", "--registry", tmp_path / "elsewhere")
    assert offline.exit_code == 2, offline.output
    assert "cannot download org/cf@1.0.0 from the Hub (LocalEntryNotFoundError" in " ".join(offline.output.split())
    assert not (tmp_path / "elsewhere").exists()

    calls = []

    def snapshot_download(repo_id: str, **kw) -> str:
        calls.append((repo_id, kw))
        return str(hub_copy(published, tmp_path / "snapshot"))

    monkeypatch.setattr("huggingface_hub.snapshot_download", snapshot_download)
    result = invoke("versions", "pull", "org/cf@1.0.0", "--registry", tmp_path / "elsewhere")
    assert result.exit_code == 0, result.output
    assert calls == [("org/cf", {"repo_type": "dataset", "revision": "1.0.0", "allow_patterns": UPLOADED})]
    assert load_version(tmp_path / "elsewhere" / "cf" / "1.0.0")[1].version == "1.0.0"
    bad = invoke("versions", "pull", "not a repo", "--registry", tmp_path / "elsewhere")
    assert bad.exit_code == 2 and "neither a folder nor a Hub dataset repo id" in bad.output


def test_train_and_evaluate_read_a_pulled_hub_layout_version(tmp_path: Path, published: Path, tiny_model_dir: Path):
    registry = tmp_path / "elsewhere"
    assert invoke("versions", "pull", hub_copy(published, tmp_path / "hub"), "--registry", registry).exit_code == 0
    pulled = registry / "cf" / "1.0.0"
    assert not (pulled / "arrow").exists()
    runner = CliRunner()
    out = tmp_path / "train"
    trained = runner.invoke(
        train.cli.app, ["run", "--dataset", str(pulled), "--model", str(tiny_model_dir), "--out", str(out), *FAST]
    )
    assert trained.exit_code == 0, trained.output
    checkpoint = sorted(out.glob("epoch-*"))[-1]
    evaluated = runner.invoke(
        evaluate.cli.app,
        ["run", "--checkpoint", str(checkpoint), "--dataset", str(pulled), "--split", "test"]
        + ["--out", str(tmp_path / "eval"), "--max-new-tokens", "4", "--n-bootstrap", "10"],
    )
    assert evaluated.exit_code == 0, evaluated.output
    assert pl.read_parquet(tmp_path / "eval" / "predictions.parquet")["id"].to_list() == [f"t-{i}" for i in range(4)]
