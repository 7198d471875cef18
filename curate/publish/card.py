"""The data card of a dataset version: Hugging Face card format (YAML header) from `card_template.md`."""

from pathlib import Path

import polars as pl

from curate.stats.compute import DropReport
from curate.stats.render import markdown_table, table7_sections
from schemas.integrity import describe_overlap
from schemas.manifest import DatasetManifest, Integrity
from schemas.task import TaskSpec

TEMPLATE = Path(__file__).with_name("card_template.md")
SIZE_CATEGORIES = [(1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M")]


def size_category(rows: int) -> str:
    """The Hub's size bucket for a row count."""
    return next((name for limit, name in SIZE_CATEGORIES if rows < limit), "1M<n<10M")


def overlap_note(integrity: Integrity | None) -> str | None:
    """The card's sentence on test rows found in train/validation, or None when the test split was clean or absent."""
    overlap = integrity and integrity.test_overlap
    if not overlap or not overlap.allowed:
        return None
    return f"{describe_overlap(overlap, 'The test split', 'train/validation')}: published anyway with --allow-overlap"


def render_card(
    manifest: DatasetManifest, frames: dict[str, pl.DataFrame], report: DropReport, task: TaskSpec, license: str
) -> str:
    """The card text: YAML header (license, task, size, Parquet configs), then description, Table 7, prompts."""
    from huggingface_hub import DatasetCard, DatasetCardData

    reviewed = manifest.review is not None and manifest.review.kept > 0
    card_data = DatasetCardData(
        license=license,
        language=["en"],
        task_categories=["text-classification"],
        size_categories=[size_category(sum(info.count for info in manifest.splits.values()))],
        annotations_creators=["machine-generated", "expert-generated"] if reviewed else ["machine-generated"],
        pretty_name=f"{manifest.name} {manifest.version}",
        tags=["clsgen", "explanations", "synthetic", manifest.task],
        configs=[
            {
                "config_name": "default",
                "data_files": [{"split": s, "path": f"parquet/{s}.parquet"} for s in manifest.splits],
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
        source_run=manifest.source_run,
        teacher=manifest.teacher_model,
        engine=manifest.engine,
        k=manifest.k,
        strategy=manifest.strategy,
        sampling=", ".join(f"{key} {value}" for key, value in manifest.sampling.items()),
        splits=splits,
        has_test="test" in manifest.splits,
        positive_label=task.positive_label,
        positive_name=task.verbalizers[task.positive_label],
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
        max_input_tokens=task.max_input_tokens,
        truncate_field=task.truncate_field,
    )
    return str(card)
