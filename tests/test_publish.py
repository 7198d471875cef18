"""`curate publish` and `curate versions`: exact round trip, hashes, immutability, card, review merge, Hub upload."""

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest
from datasets import load_dataset, load_from_disk
from huggingface_hub import DatasetCard
from rich.text import Text
from typer.testing import CliRunner

from curate.cli import app
from curate.review.merge import RESPONSE_SCHEMA as REVIEW_SCHEMA
from curate.review.queue import REVIEWS
from schemas.dataset_version import load_version, rows_sha256
from schemas.task import load_task
from tests.run_fixtures import random_plan, synthetic_examples, synthetic_run, terminal, write_run

TASK = load_task("clinifact")
WIDE = {"COLUMNS": "200"}


def invoke(*args: str):
    """Run the curate CLI."""
    return CliRunner().invoke(app, [str(a) for a in args], env=WIDE)


@pytest.fixture()
def run(tmp_path: Path):
    """A synthetic clinifact run (K=3) and its plan."""
    return synthetic_run(tmp_path / "run", 20, k=3, seed=3)


def publish(tmp_path: Path, run_dir: Path, version: str, *extra: str):
    """`curate publish` into tmp_path/registry with cards in tmp_path/cards."""
    return invoke(
        "publish",
        run_dir,
        "--name",
        "cf",
        "--version",
        version,
        "--registry",
        tmp_path / "registry",
        "--cards-dir",
        tmp_path / "cards",
        *extra,
    )


def test_published_version_loads_back_exactly(tmp_path: Path, run, clinifact_dir: Path):
    run_dir, examples, plan = run
    result = publish(tmp_path, run_dir, "1.0.0", "--test", clinifact_dir / "test_set.csv", "--license", "mit")
    assert result.exit_code == 0, result.output
    version_dir = tmp_path / "registry" / "cf" / "1.0.0"
    data = load_from_disk(str(version_dir / "arrow"))
    assert list(data) == ["train", "validation", "test"]
    for split in ("train", "validation"):
        expected = []
        for ex in examples:
            trials = plan[ex.id]
            if ex.split == split and trials[-1] == "accepted":
                explanation = f"Trial {len(trials)} on {ex.id}: the abstract reports results about the claim in detail."
                expected.append(
                    {
                        "id": ex.id,
                        "label": ex.label,
                        **ex.fields,
                        "explanation": explanation,
                        "target": TASK.render_target(explanation, ex.label),
                        "provenance": "teacher",
                        "trial": len(trials),
                    }
                )
        assert data[split].to_list() == expected
    raw = pl.read_csv(clinifact_dir / "test_set.csv", infer_schema_length=0)
    test = data["test"].to_list()
    assert [row["id"] for row in test] == raw["index"].to_list()
    assert [row["label"] for row in test] == [int(v == "1") for v in raw["label"]]
    assert {(r["explanation"], r["target"], r["provenance"], r["trial"]) for r in test} == {(None, None, None, None)}
    reloaded, manifest = load_version(version_dir)
    for split in data:
        assert manifest.splits[split].sha256 == rows_sha256(data[split].to_list())
        assert manifest.splits[split].count == len(data[split])
        assert pl.read_parquet(version_dir / "parquet" / f"{split}.parquet").to_dicts() == data[split].to_list()
    assert manifest.parent_version is None and manifest.k == 3 and manifest.teacher_model == "scripted-teacher"
    assert manifest.test_source == str((clinifact_dir / "test_set.csv").resolve())


def test_a_terminal_shows_the_splits_written_then_only_the_summary(
    tmp_path: Path, run, monkeypatch: pytest.MonkeyPatch
) -> None:
    screen = terminal(monkeypatch)
    result = publish(tmp_path, run[0], "1.0.0")
    assert result.exit_code == 0, result.output
    shown = Text.from_ansi(screen.getvalue()).plain
    assert "checking it loads back" in shown and "4/4" in shown  # arrow, parquet train and validation, the check
    assert shown.splitlines()[-1].startswith(f"published {tmp_path / 'registry' / 'cf' / '1.0.0'} (card: ")


def test_card_has_hub_header_table7_and_loads_as_hub_layout(tmp_path: Path, run):
    run_dir, _, _ = run
    assert publish(tmp_path, run_dir, "1.0.0", "--license", "mit").exit_code == 0
    version_dir = tmp_path / "registry" / "cf" / "1.0.0"
    card = DatasetCard.load(version_dir / "README.md")
    assert card.data.license == "mit"
    assert card.data.task_categories == ["text-classification"]
    assert card.data.size_categories == ["n<1K"]
    assert (tmp_path / "cards" / "cf-1.0.0.md").read_text() == (version_dir / "README.md").read_text()
    stats = invoke("stats", run_dir)
    assert stats.exit_code == 0
    table7 = (run_dir / "stats.md").read_text().split("## Table 7 — train\n\n")[1].split("\n\n")[0]
    assert table7 in card.text
    assert "No test split was published" in card.text
    assert TASK.teacher_system_prompt in card.text and "## Known limitations" in card.text
    # the card's `configs` make the folder loadable the way the Hub loads the pushed repo
    hub_view = load_dataset(str(version_dir), cache_dir=str(tmp_path / "hf-cache"))
    assert hub_view["train"].to_list() == load_from_disk(str(version_dir / "arrow"))["train"].to_list()


def test_versions_are_immutable_and_chain_to_their_parent(tmp_path: Path, run):
    run_dir, _, _ = run
    assert publish(tmp_path, run_dir, "1.0.0").exit_code == 0
    version_dir = tmp_path / "registry" / "cf" / "1.0.0"
    before = {p: p.stat().st_mtime_ns for p in version_dir.rglob("*")}
    again = publish(tmp_path, run_dir, "1.0.0")
    assert again.exit_code == 2 and "immutable" in again.output and "1.0.1" in again.output
    assert {p: p.stat().st_mtime_ns for p in version_dir.rglob("*")} == before
    assert publish(tmp_path, run_dir, "1.1.0").exit_code == 0
    _, manifest = load_version(tmp_path / "registry" / "cf" / "1.1.0")
    assert manifest.parent_version == "1.0.0"
    assert sorted(p.name for p in (tmp_path / "registry" / "cf").iterdir()) == ["1.0.0", "1.1.0"]


def test_a_modified_version_fails_to_load(tmp_path: Path, run):
    run_dir, _, _ = run
    assert publish(tmp_path, run_dir, "1.0.0").exit_code == 0
    version_dir = tmp_path / "registry" / "cf" / "1.0.0"
    data = load_from_disk(str(version_dir / "arrow"))
    data["train"] = data["train"].map(lambda row: {"label": 1 - row["label"]})
    data.save_to_disk(str(tmp_path / "tampered"))
    os.rename(version_dir / "arrow", tmp_path / "original-arrow")
    os.rename(tmp_path / "tampered", version_dir / "arrow")
    with pytest.raises(ValueError, match="does not match the manifest"):
        load_version(version_dir)
    result = invoke("versions", "diff", "cf", "1.0.0", "1.0.0", "--registry", tmp_path / "registry")
    assert result.exit_code == 2 and "does not match" in result.output


def test_versions_list_and_diff(tmp_path: Path):
    examples = synthetic_examples(15)
    write_run(tmp_path / "a", examples, random_plan(examples, 3, seed=1), k=3)
    write_run(tmp_path / "b", examples, random_plan(examples, 3, seed=2), k=3)
    assert publish(tmp_path, tmp_path / "a", "1.0.0").exit_code == 0
    assert publish(tmp_path, tmp_path / "b", "2.0.0").exit_code == 0
    listed = invoke("versions", "list", "cf", "--registry", tmp_path / "registry")
    assert listed.exit_code == 0 and "1.0.0" in listed.output and "2.0.0" in listed.output
    result = invoke("versions", "diff", "cf", "1.0.0", "2.0.0", "--registry", tmp_path / "registry", "--show", "100")
    assert result.exit_code == 0, result.output
    old = {r["id"]: r for r in load_from_disk(str(tmp_path / "registry/cf/1.0.0/arrow"))["train"].to_list()}
    new = {r["id"]: r for r in load_from_disk(str(tmp_path / "registry/cf/2.0.0/arrow"))["train"].to_list()}
    changed = sorted(i for i in old.keys() & new.keys() if old[i] != new[i])
    row = next(line for line in result.output.splitlines() if line.strip("│ ").startswith("train"))
    counts = [cell.strip() for cell in row.split("│")[2:7]]
    expected = [len(old), len(new), len(new.keys() - old.keys()), len(old.keys() - new.keys()), len(changed)]
    assert counts == [str(v) for v in expected]
    if changed:
        assert f"train changed: {', '.join(changed)}" in result.output


def test_reviews_merge_latest_decision_per_example(tmp_path: Path, run):
    run_dir, examples, plan = run
    discarded = sorted(i for i, s in plan.items() if s[-1] != "accepted")
    accepted = sorted(i for i, s in plan.items() if s[-1] == "accepted")
    assert len(discarded) >= 4
    keep, noise, wrong, empty = discarded[:4]
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    rows = [
        (keep, "drop_noise", None, "ann", t0),
        (keep, "keep", "  The abstract reports the primary outcome improved.  ", "bob", t0 + timedelta(hours=1)),
        (noise, "drop_noise", None, "ann", t0),
        (wrong, "wrong_gold_label", None, "ann", t0),
        (empty, "keep", "", "ann", t0),
        (accepted[0], "keep", "A human rewrite.", "ann", t0),
    ]
    pl.DataFrame(rows, schema=REVIEW_SCHEMA, orient="row").write_parquet(run_dir / REVIEWS)
    assert publish(tmp_path, run_dir, "1.0.0", "--reviews").exit_code == 0
    data, manifest = load_version(tmp_path / "registry" / "cf" / "1.0.0")
    by_id = {row["id"]: row for split in data for row in data[split].to_list()}
    human = {i: r for i, r in by_id.items() if r["provenance"] == "human"}
    assert list(human) == [keep]
    label = next(ex.label for ex in examples if ex.id == keep)
    explanation = "The abstract reports the primary outcome improved."
    assert human[keep]["explanation"] == explanation and human[keep]["trial"] is None
    assert human[keep]["target"] == TASK.render_target(explanation, label)
    assert not {noise, wrong, empty} & by_id.keys()
    assert by_id[accepted[0]]["provenance"] == "teacher"
    review = manifest.review
    assert (review.reviewed, review.kept, review.dropped_noise, review.not_discarded) == (5, 1, 1, 1)
    assert review.wrong_gold_label == [wrong] and review.kept_without_explanation == [empty]
    assert manifest.review_rounds == 1
    card = (tmp_path / "registry" / "cf" / "1.0.0" / "README.md").read_text()
    assert wrong in card and "excluded" in card


@pytest.mark.parametrize(
    "args, message",
    [
        (["--version", "1.0"], "X.Y.Z"),
        (["--version", "1.0.0", "--reviews"], "review pull"),
        (["--version", "1.0.0", "--test", "missing.csv"], "missing.csv"),
        (["--version", "1.0.0", "--name", "a/b"], "dataset name"),
    ],
)
def test_bad_input_exits_2_and_writes_nothing(tmp_path: Path, run, args: list[str], message: str):
    run_dir, _, _ = run
    options = ["--name", "cf", *args] if "--name" not in args else args
    result = invoke(
        "publish", run_dir, *options, "--registry", tmp_path / "registry", "--cards-dir", tmp_path / "cards"
    )
    assert result.exit_code == 2, result.output
    assert message in result.output.replace("\n", "")
    assert not any((tmp_path / "registry").rglob("*.json")) and not (tmp_path / "cards").exists()


def test_a_split_with_nothing_accepted_round_trips(tmp_path: Path):
    examples = synthetic_examples(4)
    plan = {ex.id: ["accepted"] if ex.split == "train" else ["truncated"] * 2 for ex in examples}
    write_run(tmp_path / "run", examples, plan, k=2)
    result = publish(tmp_path, tmp_path / "run", "1.0.0")
    assert result.exit_code == 0, result.output
    version_dir = tmp_path / "registry" / "cf" / "1.0.0"
    data, manifest = load_version(version_dir)
    assert (len(data["train"]), len(data["validation"]), manifest.splits["validation"].count) == (4, 0, 0)
    assert data["validation"].column_names == data["train"].column_names
    assert pl.read_parquet(version_dir / "parquet" / "validation.parquet").height == 0


def test_an_unfinished_run_needs_allow_pending(tmp_path: Path):
    examples = synthetic_examples(6)
    plan = random_plan(examples, 3, seed=0)
    unfinished = next(i for i, statuses in plan.items() if len(statuses) > 1)
    plan[unfinished] = plan[unfinished][:1]  # one failed trial journaled, trials 2..K not yet
    write_run(tmp_path / "run", examples, plan, k=3)
    refused = publish(tmp_path, tmp_path / "run", "1.0.0")
    assert refused.exit_code == 2 and "1 examples are still pending" in refused.output.replace("\n", "")
    assert publish(tmp_path, tmp_path / "run", "1.0.0", "--allow-pending").exit_code == 0
    data, _ = load_version(tmp_path / "registry" / "cf" / "1.0.0")
    assert unfinished not in {row["id"] for split in data for row in data[split].to_list()}


def test_push_to_hub_uploads_the_version_and_tags_it(tmp_path: Path, run, monkeypatch: pytest.MonkeyPatch):
    """Everything up to the network: HfApi's four calls are replaced and their arguments checked."""
    from huggingface_hub import HfApi, constants
    from huggingface_hub.hf_api import CommitInfo, GitRefs

    run_dir, _, _ = run
    offline = publish(tmp_path, run_dir, "1.0.0", "--push-to-hub", "org/cf")
    assert offline.exit_code == 2 and "HF_HUB_OFFLINE" in offline.output
    assert not (tmp_path / "registry").exists()

    calls = []
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(HfApi, "create_repo", lambda self, repo, **kw: calls.append(("create_repo", repo, kw)))
    monkeypatch.setattr(HfApi, "list_repo_refs", lambda self, repo, **kw: GitRefs(branches=[], converts=[], tags=[]))

    def upload_folder(self, **kw):
        calls.append(("upload_folder", kw))
        return CommitInfo(
            commit_url="https://huggingface.co/datasets/org/cf/commit/abc123",
            commit_message="m",
            commit_description="",
            oid="abc123",
        )

    monkeypatch.setattr(HfApi, "upload_folder", upload_folder)
    monkeypatch.setattr(HfApi, "create_tag", lambda self, repo, **kw: calls.append(("create_tag", repo, kw)))
    result = publish(tmp_path, run_dir, "1.0.0", "--push-to-hub", "org/cf")
    assert result.exit_code == 0, result.output
    version_dir = tmp_path / "registry" / "cf" / "1.0.0"
    assert calls[0] == ("create_repo", "org/cf", {"repo_type": "dataset", "private": True, "exist_ok": True})
    upload = calls[1][1]
    assert (upload["repo_id"], upload["repo_type"], upload["folder_path"]) == ("org/cf", "dataset", str(version_dir))
    uploaded = sorted(
        str(p.relative_to(version_dir))
        for p in version_dir.rglob("*")
        if p.is_file() and any(p.relative_to(version_dir).match(g) for g in upload["allow_patterns"])
    )
    assert uploaded == ["README.md", "manifest.json", "parquet/train.parquet", "parquet/validation.parquet"]
    assert calls[2] == (
        "create_tag",
        "org/cf",
        {"repo_type": "dataset", "tag": "1.0.0", "revision": "abc123", "tag_message": "cf 1.0.0"},
    )


def one_class_validation_run(run_dir: Path):
    """A run whose teacher accepted every train example but no negative of validation (the tiny-teacher case)."""
    examples = synthetic_examples(9)
    plan = {ex.id: ["accepted"] if ex.split == "train" or ex.label else ["wrong_label"] * 2 for ex in examples}
    write_run(run_dir, examples, plan, k=2)
    return examples


def write_test_file(path: Path, rows: list[dict]) -> Path:
    """A test split file in CliniFact's columns (`index`, `claim`, `article_abstract`, `label`)."""
    pl.DataFrame(rows, schema=["index", "claim", "article_abstract", "label"], orient="row").write_csv(path)
    return path


def test_a_test_file_sharing_rows_with_train_is_refused_unless_allowed(tmp_path: Path):
    examples = one_class_validation_run(tmp_path / "run")
    train = [ex for ex in examples if ex.split == "train"]
    same = [(ex.id, ex.fields["claim"], ex.fields["article_abstract"], str(ex.label)) for ex in train[:2]]
    retyped = (  # another id, the same text up to case and whitespace
        "t-9",
        "  " + train[3].fields["claim"].upper(),
        train[3].fields["article_abstract"].replace(" ", "   \n"),
        "0",
    )
    fresh = ("t-10", "A new claim.", "A new abstract.", "1")
    test_file = write_test_file(tmp_path / "test.csv", [*same, retyped, fresh])
    refused = publish(tmp_path, tmp_path / "run", "1.0.0", "--test", test_file)
    assert refused.exit_code == 2
    message = " ".join(refused.output.split())
    assert "test shares 3 examples with train/validation (2 by id, 3 by content; e.g. t-9, train-0, train-1)" in message
    assert "--allow-overlap" in message
    assert not (tmp_path / "registry").exists() and not (tmp_path / "cards").exists()

    allowed = publish(tmp_path, tmp_path / "run", "1.0.0", "--test", test_file, "--allow-overlap")
    assert allowed.exit_code == 0, allowed.output
    assert "published anyway (--allow-overlap)" in " ".join(allowed.output.split())
    _, manifest = load_version(tmp_path / "registry" / "cf" / "1.0.0")
    overlap = manifest.integrity.test_overlap
    assert (overlap.by_id, overlap.by_content, overlap.allowed) == (
        ["train-0", "train-1"],
        ["t-9", "train-0", "train-1"],
        True,
    )
    card = " ".join((tmp_path / "registry" / "cf" / "1.0.0" / "README.md").read_text().split())
    assert "**Test leakage: The test split shares 3 examples with train/validation" in card


def test_a_clean_test_file_records_no_overlap(tmp_path: Path):
    one_class_validation_run(tmp_path / "run")
    test_file = write_test_file(tmp_path / "test.csv", [("t-1", "A new claim.", "A new abstract.", "1")])
    assert publish(tmp_path, tmp_path / "run", "1.0.0", "--test", test_file).exit_code == 0
    _, manifest = load_version(tmp_path / "registry" / "cf" / "1.0.0")
    assert manifest.integrity.test_overlap.model_dump() == {"by_id": [], "by_content": [], "allowed": False}
    assert "Test leakage" not in (tmp_path / "registry" / "cf" / "1.0.0" / "README.md").read_text()


def test_a_split_left_with_one_class_is_reported_in_output_manifest_and_card(tmp_path: Path):
    one_class_validation_run(tmp_path / "run")
    result = publish(tmp_path, tmp_path / "run", "1.0.0")
    assert result.exit_code == 0, result.output
    assert "warning: validation has no negative examples (FALSE)" in result.output
    _, manifest = load_version(tmp_path / "registry" / "cf" / "1.0.0")
    assert manifest.integrity.class_warnings == ["validation has no negative examples (FALSE)"]
    assert manifest.integrity.share_margin == 0.15 and manifest.integrity.test_overlap is None
    card = (tmp_path / "registry" / "cf" / "1.0.0" / "README.md").read_text()
    table7_part = card.split("## Drop statistics")[1].split("## Teacher and prompts")[0]
    assert "- validation has no negative examples (FALSE)" in table7_part


def test_a_moved_class_share_is_reported_with_its_margin(tmp_path: Path):
    examples = synthetic_examples(9)
    negatives = [ex.id for ex in examples if ex.split == "train" and not ex.label]
    plan = {ex.id: ["wrong_label"] * 2 if ex.id in negatives[:4] else ["accepted"] for ex in examples}
    write_run(tmp_path / "run", examples, plan, k=2)
    result = publish(tmp_path, tmp_path / "run", "1.0.0")
    assert result.exit_code == 0, result.output
    shift = "train: the positive share moved from 0.33 in the input to 0.60 (+0.27, more than the 0.15 margin)"
    assert shift in " ".join(result.output.split())
    wide = publish(tmp_path, tmp_path / "run", "1.0.1", "--share-margin", "0.3")
    assert wide.exit_code == 0 and "warning" not in wide.output


def test_reviews_left_unmerged_are_said(tmp_path: Path, run):
    run_dir, _, plan = run
    discarded = sorted(i for i, s in plan.items() if s[-1] != "accepted")[:2]
    pl.DataFrame({"example_id": [*discarded, discarded[0]], "decision": ["keep", "drop_noise", "keep"]}).write_parquet(
        run_dir / REVIEWS
    )
    result = publish(tmp_path, run_dir, "1.0.0")
    assert result.exit_code == 0, result.output
    assert "warning: 2 reviews in reviews.parquet not merged: pass --reviews" in result.output


def test_review_rounds_count_new_decisions_across_versions(tmp_path: Path, run):
    from curate.review.merge import decisions_sha256

    run_dir, _, plan = run
    discarded = sorted(i for i, s in plan.items() if s[-1] != "accepted")
    t0 = datetime(2026, 1, 1, tzinfo=UTC)

    def pull(decisions: list[tuple[str, str, str | None]]) -> str:
        """What `curate review pull` writes: one decision per example in reviews.parquet; returns its hash."""
        rows = [(eid, decision, text, "ann", t0) for eid, decision, text in decisions]
        frame = pl.DataFrame(rows, schema=REVIEW_SCHEMA, orient="row")
        frame.write_parquet(run_dir / REVIEWS)
        return decisions_sha256(frame)

    first = pull([(discarded[0], "keep", "The abstract reports the outcome."), (discarded[1], "drop_noise", None)])
    assert publish(tmp_path, run_dir, "1.0.0", "--reviews").exit_code == 0
    assert publish(tmp_path, run_dir, "1.0.1", "--reviews").exit_code == 0  # the same pull, republished
    assert publish(tmp_path, run_dir, "1.0.2").exit_code == 0  # no reviews merged
    assert publish(tmp_path, run_dir, "1.0.3", "--reviews").exit_code == 0  # the same pull after a version without
    pull([(discarded[0], "keep", "The abstract reports the outcome."), (discarded[1], "wrong_gold_label", None)])
    assert publish(tmp_path, run_dir, "1.1.0", "--reviews").exit_code == 0
    versions = ("1.0.0", "1.0.1", "1.0.2", "1.0.3", "1.1.0")
    manifests = {v: load_version(tmp_path / "registry" / "cf" / v)[1] for v in versions}
    assert [m.review_rounds for m in manifests.values()] == [1, 1, 1, 1, 2]
    assert manifests["1.0.0"].review.decisions_sha256 == first == manifests["1.0.1"].review.decisions_sha256
    assert manifests["1.0.2"].review is None
    card = " ".join((tmp_path / "registry" / "cf" / "1.1.0" / "README.md").read_text().split())
    assert "Human review in Argilla: 2 round(s) up to this version" in card
