"""What a rationalization leaves in the run directory: its journal, its record, and its outcomes as polars frames."""

import json
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from curate.generation.outcomes import example_outcomes, read_trials
from curate.generation.run_dir import StageRecord, write_record

RATIONALIZED = "rationalized.jsonl"  # Trial rows of kind `rationalize`, apart from generate's trials.jsonl
RATIONALIZE_JSON = "rationalize.json"
PROVENANCE = "rationalized"


class RationalizeInfo(StageRecord):
    """`rationalize.json`: the config rationalization trials are asked with (K' as `k`) and where they stand."""


@dataclass(frozen=True)
class Rationalization:
    """A run's rationalization: its record, its journal rows, and per discarded example it tried the outcome
    (`outcome`, `accepted_trial`, `attempts`, as for generate)."""

    info: RationalizeInfo
    trials: pl.DataFrame
    outcomes: pl.DataFrame


def write_rationalize_info(run_dir: Path, info: RationalizeInfo) -> None:
    """Save `rationalize.json`."""
    write_record(Path(run_dir) / RATIONALIZE_JSON, info)


def read_rationalize_info(run_dir: Path) -> RationalizeInfo | None:
    """`rationalize.json`, or None when the run was never rationalized; ValueError names a malformed file."""
    path = Path(run_dir) / RATIONALIZE_JSON
    if not path.is_file():
        return None
    try:
        return RationalizeInfo.model_validate(json.loads(path.read_text()))
    except ValueError as err:
        raise ValueError(f"{path} is malformed: {err}; fix it or remove it with {RATIONALIZED} to start over") from err


def rationalization(run_dir: Path, outcomes: pl.DataFrame, columns: list[str]) -> Rationalization | None:
    """The run's rationalization over the examples `outcomes` (generate's) calls discarded, with journal `columns`;
    None when it was never rationalized."""
    info = read_rationalize_info(run_dir)
    if info is None:
        return None
    trials = read_trials(run_dir, columns, RATIONALIZED)
    discarded = outcomes.filter(pl.col("outcome") == "discarded")
    tried = discarded.join(trials.select("example_id").unique(), left_on="id", right_on="example_id", how="semi")
    return Rationalization(info, trials, example_outcomes(tried, trials, info.config.k))
