"""Time the planning step (`curate generate --dry-run`) on a synthetic CSV of N rows; print JSON per size.

The CSV repeats CliniFact train rows with new ids in a temporary folder (never committed); the dry run runs in a
subprocess so its peak RSS is its own:
    .venv/bin/python benchmarks/plan.py --rows 50000 200000 1000000 [--engine vllm:default]
Each line also gives the 1/5/15-minute load averages before and after the dry run (the machine may be shared).
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import polars as pl

CLINIFACT = Path(__file__).resolve().parents[2] / "shared" / "data" / "clinifact" / "train_set.csv"


def synthetic_csv(source: Path, rows: int, folder: Path) -> Path:
    """A train CSV of `rows` rows: the source's rows repeated, each with a new unique `index`."""
    frame = pl.read_csv(source, infer_schema_length=0)
    repeats = -(-rows // frame.height)
    big = pl.concat([frame] * repeats).head(rows).with_columns(pl.int_range(rows).cast(pl.String).alias("index"))
    path = folder / "train_set.csv"
    big.write_csv(path)
    return path


def plan_once(csv: Path, engine: str, out: Path) -> dict[str, float]:
    """Run one dry run in a child process; its wall seconds and peak RSS in MB (ru_maxrss of the children)."""
    command = [sys.executable, "-m", "curate", "generate", "--dry-run", "--input", str(csv), "--out", str(out)]
    started = time.perf_counter()
    done = subprocess.run([*command, "--engine", engine], capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"dry run failed ({done.returncode}): {done.stderr[-2000:]}")
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return {"seconds": round(seconds, 1), "peak_rss_mb": round(peak_mb, 1)}


def measure(rows: int, engine: str, source: Path) -> dict[str, float | int | str]:
    """Build the CSV of `rows` rows, plan it once and report rows, file MB, seconds, peak RSS and RSS/file."""
    with tempfile.TemporaryDirectory() as tmp:
        csv = synthetic_csv(source, rows, Path(tmp))
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
    args = parser.parse_args()
    for rows in args.rows:  # ru_maxrss of children is a running maximum: one process per size keeps it honest
        if len(args.rows) > 1:
            one = [sys.executable, __file__, "--rows", str(rows), "--engine", args.engine, "--source", str(args.source)]
            subprocess.run(one, check=True)
            continue
        print(json.dumps(measure(rows, args.engine, args.source)), flush=True)


if __name__ == "__main__":
    main()
