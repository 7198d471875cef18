"""The run directory of `curate generate`: file names and the run record."""

import json
import time
from pathlib import Path
from typing import Any, Literal, Self

from schemas.base import Strict
from schemas.config import GenerateConfig
from schemas.files import LOCK, atomic_write_bytes
from schemas.manifest import tool_version

RUN_JSON = "run.json"
TRIALS = "trials.jsonl"
EXAMPLES = "examples.parquet"
ACCEPTED = "accepted.parquet"
REJECTED = "rejected.parquet"
ENGINE_LOG = "engine.log"  # what the engine logs or prints (vLLM), kept off the terminal


class StageRecord(Strict):
    """What a teacher stage (generate, rationalize) records: its config, teacher, where it stands, when."""

    config: GenerateConfig
    config_hash: str
    model_id: str
    status: Literal["running", "done", "partial"] = "running"
    counts: dict[str, int] = {}
    created_at: float
    updated_at: float
    tool_version: str

    @classmethod
    def begin(cls, config: GenerateConfig, model_id: str, **fields: Any) -> Self:
        """A new record of a stage starting now with `config` on teacher `model_id`."""
        now = time.time()
        return cls(
            config=config,
            config_hash=config.identity_hash(),
            model_id=model_id,
            created_at=now,
            updated_at=now,
            tool_version=tool_version(),
            **fields,
        )


class RunInfo(StageRecord):
    """`run.json`: the config, task and inputs a run was started with and where it stands."""

    task_spec: dict[str, Any]
    task_spec_hash: str
    inputs: dict[str, str]
    input_rows: dict[str, str] | None = None  # example id -> content hash (None: a run from before fingerprints)


def write_record(path: Path, record: StageRecord) -> None:
    """Save a stage record atomically, stamping `updated_at`."""
    record.updated_at = time.time()
    atomic_write_bytes(path, record.model_dump_json(indent=2).encode())


def write_run_info(run_dir: Path, info: RunInfo) -> None:
    """Save `run.json`."""
    write_record(run_dir / RUN_JSON, info)


def read_run_info(run_dir: Path) -> RunInfo:
    """Load `run.json`; ValueError names the run directory when it is missing or malformed."""
    path = run_dir / RUN_JSON
    if not path.is_file():
        raise ValueError(f"{run_dir} is not a curate run directory (no {RUN_JSON}): run `curate generate` first")
    try:
        return RunInfo.model_validate(json.loads(path.read_text()))
    except ValueError as err:
        raise ValueError(f"{path} is malformed: {err}") from err


def check_run_folder(out: Path) -> None:
    """ValueError when `out` is a non-empty folder that is not a run directory: generate would adopt its files."""
    if out.is_dir() and not (out / RUN_JSON).is_file() and any(p.name != LOCK for p in out.iterdir()):
        raise ValueError(
            f"--out {out} is a non-empty folder that is not a curate run (no {RUN_JSON}): pick an empty or new folder"
        )
