"""Time the planning step (`curate generate --dry-run`) on a synthetic CSV of N rows; print JSON per size.

The CSV repeats CliniFact train rows with new ids in a temporary folder (never committed), written by a child
process: Linux keeps a process's peak RSS across exec, so a dry run started from the process that built the CSV
would report that process's peak. The dry run runs in a child too, and its own ru_maxrss (wait4) is reported:
    .venv/bin/python benchmarks/plan.py --rows 50000 200000 1000000 [--engine vllm:default]
Each line also gives the 1/5/15-minute load averages before and after the dry run (the machine may be shared).
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import polars as pl

CLINIFACT = Path(__file__).resolve().parents[2] / "shared" / "data" / "clinifact" / "train_set.csv"


def write_synthetic_csv(source: Path, rows: int, path: Path) -> None:
    """A train CSV of `rows` rows at `path`: the source's rows repeated, each with a new unique `index`."""
    frame = pl.read_csv(source, infer_schema_length=0)
    repeats = -(-rows // frame.height)
    big = pl.concat([frame] * repeats).head(rows).with_columns(pl.int_range(rows).cast(pl.String).alias("index"))
    big.write_csv(path)


def plan_once(csv: Path, engine: str, out: Path) -> dict[str, float]:
    """Run one dry run in a child process; its wall seconds and peak RSS in MB (that child's own ru_maxrss)."""
    command = [sys.executable, "-m", "curate", "generate", "--dry-run", "--input", str(csv), "--out", str(out)]
    with tempfile.TemporaryFile() as errors:
        started = time.perf_counter()
        child = subprocess.Popen([*command, "--engine", engine], stdout=subprocess.DEVNULL, stderr=errors)
        _, status, usage = os.wait4(child.pid, 0)
        seconds = time.perf_counter() - started
        child.returncode = os.waitstatus_to_exitcode(status)
        if child.returncode != 0:
            errors.seek(0)
            raise SystemExit(f"dry run failed ({child.returncode}): {errors.read()[-2000:].decode()}")
    return {"seconds": round(seconds, 1), "peak_rss_mb": round(usage.ru_maxrss / 1024, 1)}


def measure(rows: int, engine: str, source: Path) -> dict[str, float | int | str]:
    """Build the CSV of `rows` rows, plan it once and report rows, file MB, seconds, peak RSS and RSS/file."""
    with tempfile.TemporaryDirectory() as tmp:
        csv = Path(tmp) / "train_set.csv"
        write = [sys.executable, __file__, "--rows", str(rows), "--source", str(source), "--write-csv", str(csv)]
        subprocess.run(write, check=True)
        file_mb = csv.stat().st_size / 2**20
        load_before = os.getloadavg()
        result = plan_once(csv, engine, Path(tmp) / "run")
    ratio = result["peak_rss_mb"] / file_mb
    return {
        "rows": rows,
        "engine": engine,
        "file_mb": round(file_mb, 1),
        **result,
        "rss_per_file": round(ratio, 2),
        "load_before": [round(x, 2) for x in load_before],
        "load_after": [round(x, 2) for x in os.getloadavg()],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[50_000, 200_000, 1_000_000])
    parser.add_argument("--engine", default="hf:default")
    parser.add_argument("--source", type=Path, default=CLINIFACT, help="CSV whose rows are repeated")
    parser.add_argument("--write-csv", type=Path, help=argparse.SUPPRESS)  # the CSV-writing child
    args = parser.parse_args()
    if args.write_csv:
        write_synthetic_csv(args.source, args.rows[0], args.write_csv)
        return
    for rows in args.rows:  # ru_maxrss of children is a running maximum: one process per size keeps it honest
        if len(args.rows) > 1:
            one = [sys.executable, __file__, "--rows", str(rows), "--engine", args.engine, "--source", str(args.source)]
            subprocess.run(one, check=True)
            continue
        print(json.dumps(measure(rows, args.engine, args.source)), flush=True)


if __name__ == "__main__":
    main()
