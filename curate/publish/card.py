"""The data card of a dataset version: Hugging Face card format (YAML header) from `card_template.md`."""

import re
from pathlib import Path

import polars as pl

from curate.stats.compute import DropReport
from curate.stats.render import markdown_table, table7_sections
from schemas.base import Strict
from schemas.dataset_version import PARQUET_DIR
from schemas.integrity import describe_overlap
from schemas.manifest import DatasetManifest, Integrity
from schemas.task import TaskSpec

TEMPLATE = Path(__file__).with_name("card_template.md")
SIZE_CATEGORIES = [(1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M")]
LICENSE_NAME = re.compile(r"^[a-z0-9][a-z0-9.-]*$")


class CardLicense(Strict):
    """The card's licence fields: a Hub licence id (`unknown` when not known), and for `other` its own id and link."""

    license: str = "unknown"
    license_name: str | None = None
    license_link: str | None = None


def check_license(card_license: CardLicense) -> None:
    """The licence fields as the Hub validates them; ValueError names the missing or stray flag."""
    other = card_license.license == "other"
    if other and not (card_license.license_name and card_license.license_link):
        raise ValueError(
            "--license other needs --license-name ID (lowercase, e.g. my-license-1.0) and --license-link (a URL"
            " to the licence text); or pass a Hub licence id such as mit or cc-by-4.0, or leave it `unknown`"
        )
    if not other and (card_license.license_name or card_license.license_link):
        raise ValueError(f"--license-name and --license-link are for --license other, not {card_license.license}")
    if other and not LICENSE_NAME.match(card_license.license_name):
        raise ValueError(f"--license-name {card_license.license_name!r}: use lowercase letters, digits, '.' and '-'")


def size_category(rows: int) -> str:
    """The Hub's size bucket for a row count."""
    return next((name for limit, name in SIZE_CATEGORIES if rows < limit), "1M<n<10M")


def overlap_note(integrity: Integrity | None) -> str | None:
    """The card's sentence on test rows found in train/validation, or None when the test split was clean or absent."""
    overlap = integrity and integrity.test_overlap
    if not overlap or not overlap.allowed:
        return None
    return f"{describe_overlap(overlap, 'The test split', 'train/validation')}: published anyway with --allow-overlap"


def truncation_note(examples: pl.DataFrame, task: TaskSpec) -> str:
    """The card's sentence on documents cut to `max_input_tokens` for the teacher, with the run's real count."""
    cut = int(examples["truncated"].sum())
    limit = f"longer than {task.max_input_tokens} tokens"
    if not cut:
        return f"No document the teacher saw was {limit}: none was truncated."
    return (
        f"{cut} of {examples.height} documents the teacher saw were {limit} and were truncated (field"
        f" `{task.truncate_field}`); the published fields are the full source text."
    )


def render_card(
    manifest: DatasetManifest,
    frames: dict[str, pl.DataFrame],
    report: DropReport,
    task: TaskSpec,
    card_license: CardLicense,
    examples: pl.DataFrame,
) -> str:
    """The card text: YAML header (licence, task, size, Parquet configs of the non-empty splits), then description,
    loading snippets, Table 7, prompts; `examples` is the run's examples.parquet (the truncation count)."""
    from huggingface_hub import DatasetCard, DatasetCardData

    reviewed = manifest.review is not None and manifest.review.kept > 0
    loadable = [split for split, info in manifest.splits.items() if info.count]
    card_data = DatasetCardData(
        **card_license.model_dump(exclude_none=True),
        language=["en"],
        task_categories=["text-classification"],
        size_categories=[size_category(sum(info.count for info in manifest.splits.values()))],
        annotations_creators=["machine-generated", "expert-generated"] if reviewed else ["machine-generated"],
        pretty_name=f"{manifest.name} {manifest.version}",
        tags=["clsgen", "explanations", "synthetic", manifest.task],
        configs=[
            {
                "config_name": "default",
                "data_files": [{"split": s, "path": f"{PARQUET_DIR}/{s}.parquet"} for s in loadable],
            }
        ],
    )
    splits = [
        {
            "name": name,
            "count": info.count,
            "positives": info.positives,
            "sha256": info.sha256,
            "teacher": int((frames[name]["provenance"] == "teacher").sum()),
            "human": int((frames[name]["provenance"] == "human").sum()),
        }
        for name, info in manifest.splits.items()
    ]
    table7 = "\n\n".join(f"**{s.title}**\n\n{markdown_table(s)}" for s in table7_sections(report))
    card = DatasetCard.from_template(
        card_data,
        template_path=str(TEMPLATE),
        name=manifest.name,
        version=manifest.version,
        parent=manifest.parent_version,
        created_at=manifest.created_at,
        description=task.description or f"Explanation-augmented binary classification ({task.name}).",
        task_name=task.name,
        task_spec_hash=manifest.task_spec_hash,
        source_run=Path(manifest.source_run).name if manifest.source_run else None,
        teacher=manifest.teacher_model,
        engine=manifest.engine,
        k=manifest.k,
        strategy=manifest.strategy,
        sampling=", ".join(f"{key} {value}" for key, value in manifest.sampling.items()),
        splits=splits,
        has_test="test" in manifest.splits,
        positive_label=task.positive_label,
        positive_name=task.verbalizers[task.positive_label],
        label_names=[task.verbalizers[label] for label in (0, 1)],
        empty_splits=[split for split in manifest.splits if split not in loadable],
        input_fields=task.input_fields,
        table7=table7,
        class_warnings=manifest.integrity.class_warnings if manifest.integrity else [],
        share_margin=manifest.integrity and manifest.integrity.share_margin,
        overlap=overlap_note(manifest.integrity),
        teacher_system_prompt=task.teacher_system_prompt,
        teacher_user_template=task.teacher_user_template,
        system_prompt=task.system_prompt,
        question=task.question,
        review=manifest.review,
        review_rounds=manifest.review_rounds,
        rationalization=manifest.rationalization,
        truncation=truncation_note(examples, task),
    )
    return str(card)
