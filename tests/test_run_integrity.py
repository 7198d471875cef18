"""Issue 9: one writer per run directory, changed inputs noticed, foreign --out folders refused, nested config merge."""

import csv
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from curate.cli import app, config_overrides
from curate.demo_data import write_demo_csv
from curate.generation.fingerprint import row_fingerprints
from curate.generation.run_dir import TRIALS, read_run_info, write_run_info
from evaluate.pipeline import evaluate_checkpoint
from schemas.config import GenerateConfig, SamplingConfig, validated_config
from schemas.files import LOCK, folder_lock
from schemas.inputs import input_mapping, load_examples
from schemas.task import load_task
from tests.run_fixtures import random_plan, write_run

runner = CliRunner()
ROOT = Path(__file__).resolve().parents[1]
HOLD = """
import sys, time
from pathlib import Path
from schemas.files import folder_lock
with folder_lock(Path(sys.argv[1]), "curate generate"):
    print("held", flush=True)
    time.sleep(120)
"""


def curate(*args: str) -> subprocess.CompletedProcess:
    """Run `curate ARGS` in a process of its own."""
    return subprocess.run([sys.executable, "-m", "curate", *args], cwd=ROOT, capture_output=True, text=True, timeout=60)


@pytest.fixture
def holder():
    """Start a process holding the lock of the folder it is given; kill -9 it at the end."""
    procs = []

    def hold(folder: Path) -> subprocess.Popen:
        proc = subprocess.Popen([sys.executable, "-c", HOLD, str(folder)], cwd=ROOT, stdout=subprocess.PIPE, text=True)
        procs.append(proc)
        assert proc.stdout.readline().strip() == "held"
        return proc

    yield hold
    for proc in procs:
        proc.kill()
        proc.wait()


def demo_run(tmp_path: Path, count: int = 12, fingerprinted: bool = True) -> tuple[Path, Path]:
    """A finished scripted run over a real demo CSV, recording (or, like an old run, not recording) its rows."""
    data = write_demo_csv(tmp_path / "data" / "train.csv", count)
    task = load_task("clinifact")
    examples = load_examples(data, task, input_mapping(task, None), "train")
    run = tmp_path / "run"
    write_run(run, examples, random_plan(examples, 3, seed=1), k=3)
    info = read_run_info(run)
    info.inputs = {"train": str(data)}
    info.input_rows = row_fingerprints(examples) if fingerprinted else None
    write_run_info(run, info)
    return run, data


def edit_csv(path: Path) -> None:
    """Change row 1001's claim, drop row 1002 and add row 9999."""
    with path.open() as handle:
        rows = list(csv.DictReader(handle))
    rows[1]["claim"] = "Edited claim about another drug."
    rows = [row for row in rows if row["index"] != "1002"] + [{**rows[0], "index": "9999"}]
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


# --- 1: one writer per run directory --------------------------------------------------------------------------


@pytest.mark.parametrize("command", [["generate", "--out"], ["decide"], ["rationalize"]])
def test_a_second_process_on_a_held_run_dir_exits_2_naming_the_holder(tmp_path: Path, holder, command) -> None:
    run, _ = demo_run(tmp_path)
    before = (run / TRIALS).read_bytes()
    proc = holder(run)
    result = curate(*command, str(run))
    assert result.returncode == 2, result.stderr
    message = " ".join(result.stderr.split())
    assert f"is in use by pid {proc.pid} on " in message and "(curate generate, since" in message
    assert (run / TRIALS).read_bytes() == before


def test_a_killed_holder_leaves_no_stuck_lock(tmp_path: Path, holder) -> None:
    run, _ = demo_run(tmp_path)
    proc = holder(run)
    assert curate("decide", str(run)).returncode == 2
    proc.kill()
    proc.wait()
    assert (run / LOCK).is_file(), "kill -9 leaves the lock file behind"
    result = curate("decide", str(run))
    assert result.returncode == 0, result.stderr
    assert not (run / LOCK).exists()


def test_a_lock_on_a_new_folder_that_stays_empty_leaves_nothing(tmp_path: Path) -> None:
    with folder_lock(tmp_path / "new", "test"):
        assert (tmp_path / "new" / LOCK).is_file()
    assert not (tmp_path / "new").exists()


def test_evaluate_output_folders_take_the_lock(tmp_path: Path, holder) -> None:
    out = tmp_path / "eval"
    proc = holder(out)
    with pytest.raises(ValueError, match=f"in use by pid {proc.pid} "):
        evaluate_checkpoint(tmp_path / "ckpt", tmp_path / "data", "test", out, None, None, "m", None)


# --- 2: a changed input is refused ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "command",
    [
        ["generate", "--out", "RUN"],
        ["decide", "RUN"],
        ["publish", "RUN", "--name", "demo", "--version", "1.0.0", "--registry", "REG"],
    ],
)
def test_changed_inputs_are_refused_naming_the_rows(tmp_path: Path, command: list[str]) -> None:
    run, data = demo_run(tmp_path)
    edit_csv(data)
    places = {"RUN": str(run), "REG": str(tmp_path / "registry")}
    result = runner.invoke(app, [places.get(arg, arg) for arg in command])
    message = " ".join(result.output.split())
    assert result.exit_code == 2, result.output
    assert "changed since the run started" in message and str(data) in message
    assert "1 added (9999)" in message and "1 removed (1002)" in message and "1 changed (1001)" in message
    assert not (tmp_path / "registry").exists()


def test_unchanged_inputs_and_old_runs_without_fingerprints_still_work(tmp_path: Path) -> None:
    run, _ = demo_run(tmp_path / "new")
    assert runner.invoke(app, ["decide", str(run)]).exit_code == 0
    old, data = demo_run(tmp_path / "old", fingerprinted=False)
    edit_csv(data)
    result = runner.invoke(app, ["decide", str(old)])
    assert result.exit_code == 0, result.output


# --- 3: a foreign --out folder is refused --------------------------------------------------------------------


def test_a_non_empty_folder_that_is_not_a_run_is_refused(tmp_path: Path) -> None:
    out = tmp_path / "mine"
    out.mkdir()
    (out / TRIALS).write_text('{"not": "ours"')
    data = write_demo_csv(tmp_path / "train.csv", 3)
    result = runner.invoke(app, ["generate", "--out", str(out), "--input", str(data)])
    message = " ".join(result.output.split())
    assert result.exit_code == 2 and str(out) in message and "pick an empty or new folder" in message
    assert (out / TRIALS).read_text() == '{"not": "ours"' and sorted(p.name for p in out.iterdir()) == [TRIALS]


def test_a_folder_holding_only_a_stale_lock_counts_as_empty(tmp_path: Path) -> None:
    out = tmp_path / "run"
    out.mkdir()
    (out / LOCK).write_text("{}")
    result = runner.invoke(app, ["generate", "--out", str(out)])
    assert result.exit_code == 2 and "no --input given" in result.output


# --- 5: nested settings merge field by field -----------------------------------------------------------------


@pytest.mark.parametrize(("flag", "value"), [("temperature", 0.1), ("top_p", 0.5), ("max_tokens", 77)])
def test_a_sampling_flag_keeps_the_files_other_sampling_fields(tmp_path: Path, flag: str, value: float) -> None:
    from_file = {"temperature": 0.3, "top_p": 0.8, "max_tokens": 100}
    path = tmp_path / "gen.yaml"
    path.write_text(yaml.safe_dump({"k": 2, "sampling": from_file}))
    config = validated_config(GenerateConfig, path, config_overrides(**{flag: value, "k": None}), "generate")
    assert config.sampling == SamplingConfig(**{**from_file, flag: value}) and config.k == 2
