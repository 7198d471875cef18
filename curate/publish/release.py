"""`curate publish`: a run (plus reviews and the gold test split) as an immutable, content-hashed dataset version."""

import os
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
from rich.progress import Progress

from curate.generation.outcomes import read_examples
from curate.generation.run_dir import read_run_info
from curate.publish.card import CardLicense, check_license, render_card
from curate.publish.integrity import checked_overlap, notes, split_warnings
from curate.publish.rows import (
    latest_reviews,
    rationalization_summary,
    release_schema,
    run_rows,
    split_frames,
    test_rows,
)
from curate.publish.versions import check_name, filling, parent_version, remove_unfinished, version_key
from curate.review.merge import decisions_sha256
from curate.stats.compute import compute_report
from schemas.base import Strict
from schemas.dataset_version import (
    ARROW_DIR,
    CARD,
    MANIFEST,
    PARQUET_DIR,
    check_hashes,
    files_sha256,
    load_version,
    parquet_splits,
    read_manifest,
    rows_sha256,
)
from schemas.files import atomic_write_bytes, staging_folder
from schemas.integrity import DEFAULT_SHARE_MARGIN
from schemas.manifest import DatasetManifest, IncludedRows, Integrity, ReviewSummary, SplitInfo, tool_version
from schemas.task import TaskSpec


class PublishRequest(Strict):
    """Everything `curate publish` needs."""

    run_dir: Path
    name: str
    version: str
    registry: Path
    reviews: bool = False
    allow_pending: bool = False
    test: Path | None = None
    allow_overlap: bool = False
    share_margin: float = DEFAULT_SHARE_MARGIN
    cards_dir: Path = Path("data_cards")
    license: CardLicense = CardLicense()
    include: list[IncludedRows] = []


@dataclass
class Published:
    """A written version, what publish reports about it (class warnings, an allowed overlap, unmerged reviews) and
    the unfinished publishes it removed."""

    target: Path
    notes: list[str]
    removed: list[str]


def to_dataset_dict(frames: dict[str, pl.DataFrame], task: TaskSpec):
    """A `datasets.DatasetDict` with the same explicit features in every split; `label` is a `ClassLabel` named by
    the task's verbalizers."""
    from datasets import ClassLabel, Dataset, DatasetDict, Features, Value

    types = {pl.String: Value("string"), pl.Int64: Value("int64")}
    features = Features({column: types[dtype] for column, dtype in release_schema(task).items()})
    features["label"] = ClassLabel(names=[task.verbalizers[label] for label in (0, 1)])
    return DatasetDict({split: Dataset.from_polars(frame, features=features) for split, frame in frames.items()})


def card_path(request: PublishRequest) -> Path:
    """Where the version's card is copied for the repository: `data_cards/NAME-X.Y.Z.md`."""
    return request.cards_dir / f"{request.name}-{request.version}.md"


def refuse_existing(request: PublishRequest) -> Path:
    """The new version's folder; ValueError if the version (or its card) exists: versions are immutable."""
    version_key(request.version)
    target = request.registry / check_name(request.name) / request.version
    if target.exists() or card_path(request).exists():
        major, minor, patch = version_key(request.version)
        existing = target if target.exists() else card_path(request)
        raise ValueError(
            f"{request.name} {request.version} is already published ({existing}):"
            f" versions are immutable; publish as a new version, e.g. --version {major}.{minor}.{patch + 1}"
        )
    return target


def write_version(staging: Path, data, manifest: DatasetManifest, card: str, progress: Progress) -> None:
    """Arrow, Parquet, card and a manifest with every file's hash into a staging folder, then check it loads back
    with the same hashes."""
    bar = progress.add_task("writing arrow", total=len(data) + 2)
    empty = {split: 1 for split, dataset in data.items() if len(dataset) == 0}  # else 0 shards: unloadable
    data.save_to_disk(str(staging / ARROW_DIR), num_shards=empty)
    (staging / PARQUET_DIR).mkdir()
    for split, dataset in data.items():
        progress.update(bar, advance=1, description=f"writing parquet: {split}")
        dataset.to_parquet(str(staging / PARQUET_DIR / f"{split}.parquet"))
    (staging / CARD).write_text(card)
    manifest = manifest.model_copy(update={"files": files_sha256(staging)})
    (staging / MANIFEST).write_text(manifest.model_dump_json(indent=2))
    progress.update(bar, advance=1, description="checking it loads back")
    load_version(staging)
    check_hashes(staging, parquet_splits(staging, manifest), manifest)
    progress.advance(bar)


def with_decisions_hash(review: ReviewSummary | None, run_dir: Path) -> ReviewSummary | None:
    """The review summary with the hash of the decisions it merged (`curate.review.merge.decisions_sha256`)."""
    if review is None:
        return None
    return review.model_copy(update={"decisions_sha256": decisions_sha256(latest_reviews(run_dir))})


def merged(review: ReviewSummary | None) -> bool:
    """Whether a version's review summary holds any merged decision."""
    return review is not None and review.reviewed > 0


def last_decisions_hash(name_dir: Path, manifest: DatasetManifest | None) -> str | None:
    """The decisions hash of the nearest version in `manifest`'s line (itself, then its parents in `name_dir`) that
    merged reviews; None when none did."""
    while manifest is not None and not merged(manifest.review):
        parent = name_dir / manifest.parent_version if manifest.parent_version else None
        manifest = read_manifest(parent) if parent and (parent / MANIFEST).is_file() else None
    return manifest.review.decisions_sha256 if manifest else None


def review_rounds(name_dir: Path, parent: DatasetManifest | None, review: ReviewSummary | None) -> int:
    """Review rounds up to this version: the parent's, plus one when this version merged decisions other than the
    last ones merged in its line (republishing the same pull is not a new round)."""
    before = parent.review_rounds if parent else 0
    new_round = merged(review) and review.decisions_sha256 != last_decisions_hash(name_dir, parent)
    return before + int(new_round)


def publish(request: PublishRequest, progress: Progress) -> Published:
    """Build, check, hash and write the version folder atomically (a staging folder renamed into place)."""
    target = refuse_existing(request)
    removed = remove_unfinished(target.parent)
    check_license(request.license)
    info = read_run_info(request.run_dir)
    task = TaskSpec.model_validate(info.task_spec)
    rationalized = IncludedRows.rationalized in request.include
    rows, review = run_rows(request.run_dir, info, task, request.reviews, request.allow_pending, rationalized)
    review = with_decisions_hash(review, request.run_dir)
    examples = read_examples(request.run_dir)
    test = test_rows(request.test, info, task) if request.test else None
    overlap = None
    if test is not None:
        overlap = checked_overlap(test, examples, task, request.allow_overlap)
    frames = split_frames(rows, list(info.inputs), test, task)
    report = compute_report(request.run_dir, request.share_margin)
    warnings = split_warnings(frames, report, task)
    data = to_dataset_dict(frames, task)
    parent = parent_version(request.registry, request.name, request.version)
    parent_manifest = read_manifest(target.parent / parent) if parent else None
    manifest = DatasetManifest(
        name=request.name,
        version=request.version,
        parent_version=parent,
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
        splits={
            split: SplitInfo(
                count=len(ds),
                positives=sum(label == task.positive_label for label in ds["label"]),
                sha256=rows_sha256(ds.to_list()),
            )
            for split, ds in data.items()
        },
        task=task.name,
        task_spec_hash=task.spec_hash(),
        task_spec=task.model_dump(mode="json"),
        teacher_model=info.model_id,
        engine=info.config.engine,
        sampling=info.config.sampling.model_dump(mode="json"),
        k=info.config.k,
        strategy=info.config.strategy,
        review_rounds=review_rounds(target.parent, parent_manifest, review),
        tool_version=tool_version(),
        source_run=str(Path(request.run_dir).resolve()),
        test_source=str(Path(request.test).resolve()) if request.test else None,
        review=review,
        integrity=Integrity(share_margin=request.share_margin, class_warnings=warnings, test_overlap=overlap),
        include=request.include,
        rationalization=rationalization_summary(request.run_dir, frames, request.include),
    )
    card = render_card(manifest, frames, report, task, request.license, examples)
    staging = staging_folder(target)
    try:
        with filling(staging):
            write_version(staging, data, manifest, card, progress)
            os.rename(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    request.cards_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(card_path(request), card.encode())
    return Published(target, notes(overlap, warnings, request.run_dir, request.reviews), removed)
