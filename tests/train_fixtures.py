"""Published dataset versions for train tests, written in the contract format (what `curate publish` writes)."""

import csv
import random
import sys
from pathlib import Path

from datasets import Dataset, DatasetDict

from schemas.dataset_version import ARROW_DIR, MANIFEST, PARQUET_DIR, rows_sha256
from schemas.manifest import DatasetManifest, SplitInfo
from schemas.task import TaskSpec, load_task

TOY_TASK = TaskSpec(
    name="toy-claims",
    input_fields=["claim", "article_abstract"],
    document_template="Claim: {claim}\nAbstract: {article_abstract}",
    truncate_field="article_abstract",
    max_input_tokens=160,
    verbalizers={0: "FALSE", 1: "TRUE"},
    system_prompt="Judge the claim.",
    question="TRUE or FALSE?",
    teacher_system_prompt="Explain, then classify.",
    teacher_user_template="{document}\n\n{question}",
)
POSITIVE = ["the drug improves survival", "the trial showed a significant improvement in survival"]
NEGATIVE = ["the results were not significant", "the patient was discharged home in stable condition"]


def synthetic_rows(n: int, seed: int, with_explanation: bool = True) -> list[dict]:
    """Toy claim/abstract rows whose label is visible in the text (so the head can learn it)."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        label = i % 2
        words = POSITIVE if label else NEGATIVE
        abstract = " ".join(rng.choice(words) for _ in range(rng.randint(1, 4))) + "."
        explanation = f"The text says {words[0]}." if with_explanation else None
        rows.append(
            {
                "id": f"s{seed}-{i}",
                "label": label,
                "claim": rng.choice(POSITIVE),
                "article_abstract": abstract,
                "explanation": explanation,
            }
        )
    return rows


def clinifact_rows(clinifact_dir: Path, file: str, n: int) -> list[dict]:
    """`n` CliniFact rows of a split file, half of each binary class (1 -> 1; 0, 2 -> 0), with a short explanation."""
    csv.field_size_limit(sys.maxsize)
    with (clinifact_dir / file).open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    positives = [row for row in rows if row["label"] == "1"][: n // 2]
    negatives = [row for row in rows if row["label"] != "1"][: n - len(positives)]
    out = []
    for row in positives + negatives:
        label = int(row["label"] == "1")
        first = row["article_abstract"].split(". ")[0][:120]
        out.append(
            {
                "id": row["index"],
                "label": label,
                "claim": row["claim"],
                "article_abstract": row["article_abstract"],
                "explanation": f"The abstract states: {first}.",
            }
        )
    return out


def with_targets(rows: list[dict], task: TaskSpec, split: str) -> list[dict]:
    """Add the contract's `target`, `provenance` and `trial` columns (null in test)."""
    out = []
    for row in rows:
        test = split == "test"
        explanation = None if test else row["explanation"]
        target = task.render_target(explanation, row["label"]) if explanation else None
        out.append(
            {
                **row,
                "explanation": explanation,
                "target": target,
                "provenance": None if test else "teacher",
                "trial": None if test else 1,
            }
        )
    return out


def write_version(
    registry: Path, name: str, version: str, splits: dict[str, list[dict]], task: TaskSpec, drop: tuple[str, ...] = ()
) -> Path:
    """Write REGISTRY/NAME/VERSION with arrow/, parquet/ and a manifest whose hashes match the rows (minus `drop`)."""
    folder = registry / name / version
    data = DatasetDict(
        {
            split: Dataset.from_list(with_targets(rows, task, split)).remove_columns(list(drop))
            for split, rows in splits.items()
        }
    )
    data.save_to_disk(str(folder / ARROW_DIR))
    (folder / PARQUET_DIR).mkdir()
    for split, ds in data.items():
        ds.to_parquet(str(folder / PARQUET_DIR / f"{split}.parquet"))
    manifest = DatasetManifest(
        name=name,
        version=version,
        created_at="2026-01-01T00:00:00Z",
        splits={
            split: SplitInfo(count=len(ds), positives=sum(ds["label"]), sha256=rows_sha256(ds.to_list()))
            for split, ds in data.items()
        },
        task=task.name,
        task_spec_hash=task.spec_hash(),
        task_spec=task.model_dump(mode="json"),
        teacher_model="fixture",
        engine="fixture",
        sampling={},
        k=1,
        strategy="rounds",
        tool_version="test",
    )
    (folder / MANIFEST).write_text(manifest.model_dump_json(indent=2))
    (folder / "README.md").write_text(f"# {name} {version}\n\nTest fixture.\n")
    return folder


def toy_version(registry: Path, n_train: int = 8, n_dev: int = 4, version: str = "1.0.0") -> Path:
    """A small synthetic version of the toy task."""
    splits = {
        "train": synthetic_rows(n_train, 1),
        "validation": synthetic_rows(n_dev, 2),
        "test": synthetic_rows(2, 3, with_explanation=False),
    }
    return write_version(registry, "toy", version, splits, TOY_TASK)


def clinifact_version(registry: Path, clinifact_dir: Path, n_train: int, n_dev: int) -> Path:
    """A small CliniFact slice with the built-in `clinifact` task spec."""
    splits = {
        "train": clinifact_rows(clinifact_dir, "train_set.csv", n_train),
        "validation": clinifact_rows(clinifact_dir, "validation_set.csv", n_dev),
        "test": clinifact_rows(clinifact_dir, "test_set.csv", 2),
    }
    return write_version(registry, "clinifact-slice", "1.0.0", splits, load_task("clinifact"))
