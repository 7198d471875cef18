"""The content fingerprint of a run's inputs: one hash per row, so a resume, `decide` or `publish` notices an edit."""

import hashlib
import json
from collections.abc import Iterable
from pathlib import Path

from curate.generation.run_dir import RunInfo
from schemas.example import Example
from schemas.inputs import InputError, input_mapping, load_splits
from schemas.task import TaskSpec

SHOWN = 5  # ids listed per kind of change


def row_hash(example: Example) -> str:
    """The first 16 hex digits of the sha256 of an example's id, split, label and text fields."""
    content = json.dumps([example.id, example.split, example.label, example.fields], sort_keys=True)
    return hashlib.sha256(content.encode()).hexdigest()[:16]


def row_fingerprints(examples: Iterable[Example]) -> dict[str, str]:
    """Example id -> its row hash."""
    return {ex.id: row_hash(ex) for ex in examples}


def listed(kind: str, ids: list[str]) -> str:
    """`2 changed (a, b)`, at most SHOWN ids then `…`."""
    more = ", …" if len(ids) > SHOWN else ""
    return f"{len(ids)} {kind} ({', '.join(ids[:SHOWN])}{more})"


def input_changes(recorded: dict[str, str], current: dict[str, str]) -> str | None:
    """The rows added, removed and changed between two fingerprints, or None when they match."""
    kinds = {
        "added": sorted(current.keys() - recorded.keys()),
        "removed": sorted(recorded.keys() - current.keys()),
        "changed": sorted(key for key in recorded.keys() & current.keys() if recorded[key] != current[key]),
    }
    found = [listed(kind, ids) for kind, ids in kinds.items() if ids]
    return "; ".join(found) or None


def check_inputs(run_dir: Path, info: RunInfo, examples: Iterable[Example]) -> None:
    """InputError naming the rows that changed since the run recorded its inputs (a run older than fingerprints:
    nothing to compare, accepted)."""
    if info.input_rows is None:
        return
    changes = input_changes(info.input_rows, row_fingerprints(examples))
    if changes:
        raise InputError(
            f"{run_dir}: the input files {', '.join(info.inputs.values())} changed since the run started ({changes}):"
            " restore the original inputs, or start a new run with another --out"
        )


def check_recorded_inputs(run_dir: Path, info: RunInfo) -> None:
    """Re-read the run's input files and refuse them when they no longer hold the rows the run was made from."""
    if info.input_rows is None:
        return
    task = TaskSpec.model_validate(info.task_spec)
    inputs = {split: Path(path) for split, path in info.inputs.items()}
    check_inputs(run_dir, info, load_splits(inputs, task, input_mapping(task, info.config.columns)))
