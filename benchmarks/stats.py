"""Time `curate stats` on a synthetic journal of 1,000,000 trials; print JSON.

Also times the pure-Python path (pydantic Journal.load + acceptance.decide per example) on a 100,000-trial
prefix of the same journal, so the ratio is measured in one process:
    .venv/bin/python benchmarks/stats.py [--trials 1000000]
"""

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl

from curate.generation.acceptance import decide, latest_slots
from curate.generation.outcomes import example_outcomes, read_examples, read_trials
from curate.generation.run_dir import EXAMPLES, TRIALS, RunInfo, write_run_info
from curate.stats.compute import compute_report
from schemas.config import GenerateConfig
from schemas.files import Journal
from schemas.task import load_task
from schemas.trial import Trial

K = 5
FAILURES = np.array(["wrong_label", "unparseable", "invalid", "truncated", "error"])


def build_run(run_dir: Path, n_trials: int, seed: int = 0) -> int:
    """Write run.json, examples.parquet and trials.jsonl with at most `n_trials` trials; return the trial count."""
    rng = np.random.default_rng(seed)
    labels = (rng.random(n_trials) < 0.3).astype(np.int64)
    first_accept = rng.geometric(np.where(labels == 1, 0.35, 0.6))
    n_examples = int(np.searchsorted(np.cumsum(np.minimum(first_accept, K)), n_trials, side="right"))
    labels, first_accept = labels[:n_examples], first_accept[:n_examples]
    attempts = np.minimum(first_accept, K)
    accepted = first_accept <= K
    ids = np.array([f"ex-{i}" for i in range(n_examples)])
    splits = np.where(rng.random(n_examples) < 0.8, "train", "validation")
    example_index = np.repeat(np.arange(n_examples), attempts)
    trial = np.concatenate([np.arange(1, a + 1) for a in attempts]) if n_examples else np.array([], dtype=np.int64)
    last = trial == attempts[example_index]
    status = np.where(last & accepted[example_index], "accepted", FAILURES[rng.integers(0, 5, trial.size)])
    tokens = rng.integers(30, 400, trial.size)
    trials = pl.DataFrame(
        {
            "example_id": ids[example_index],
            "split": splits[example_index],
            "gold_label": labels[example_index],
            "trial": trial,
            "seed": trial * 7919,
            "status": status,
            "reason": None,
            "label": None,
            "explanation": "The abstract reports a significant improvement in the primary outcome.",
            "raw_text": "The abstract reports a significant improvement.\n\nClassification: TRUE",
            "prompt_tokens": 900,
            "completion_tokens": tokens,
            "finish_reason": "stop",
            "engine": "hf:bench",
            "model_id": "bench-teacher",
            "latency_s": 0.8,
            "created_at": 1.7e9 + np.arange(trial.size) * 0.01,
        },
        schema_overrides={"reason": pl.String, "label": pl.Int64},
    )
    trials.write_ndjson(run_dir / TRIALS)
    pl.DataFrame(
        {
            "id": ids,
            "split": splits,
            "label": labels,
            "document": "Claim: ...",
            "truncated": False,
            "claim": "c",
            "article_abstract": "a",
        }
    ).write_parquet(run_dir / EXAMPLES)
    spec, config = load_task("clinifact"), GenerateConfig(k=K, engine="hf:bench")
    write_run_info(
        run_dir,
        RunInfo(
            config=config,
            config_hash=config.identity_hash(),
            task_spec=spec.model_dump(mode="json"),
            task_spec_hash=spec.spec_hash(),
            inputs={},
            model_id="bench-teacher",
            created_at=0,
            updated_at=0,
            tool_version="bench",
        ),
    )
    return trial.size


def python_outcomes(run_dir: Path) -> dict[str, str]:
    """The per-trial pydantic path: load the journal and decide every example."""
    slots = latest_slots(Journal(run_dir / TRIALS, Trial).load())
    return {eid: decide(eid, slots, K).state for eid in {eid for eid, _ in slots}}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--trials", type=int, default=1_000_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        run, prefix = Path(tmp, "run"), Path(tmp, "prefix")
        run.mkdir(), prefix.mkdir()
        n = build_run(run, args.trials)
        journal_mb = round((run / TRIALS).stat().st_size / 2**20)
        start = time.perf_counter()
        report = compute_report(run)
        report_s = time.perf_counter() - start
        m = build_run(prefix, min(100_000, args.trials), seed=1)
        start = time.perf_counter()
        fast = example_outcomes(read_examples(prefix), read_trials(prefix, ["status"]), K)
        polars_prefix_s = time.perf_counter() - start
        start = time.perf_counter()
        slow = python_outcomes(prefix)
        python_prefix_s = time.perf_counter() - start
        agree = all(slow[eid] == state for eid, state in fast.select("id", "outcome").iter_rows())
    print(
        json.dumps(
            {
                "trials": n,
                "journal_mb": journal_mb,
                "report_s": round(report_s, 2),
                "accepted": sum(t.generated.negative + t.generated.positive for t in report.table7.values()),
                "prefix_trials": m,
                "outcomes_polars_s": round(polars_prefix_s, 3),
                "outcomes_python_s": round(python_prefix_s, 3),
                "speedup": round(python_prefix_s / polars_prefix_s, 1),
                "outcomes_agree": agree,
            }
        )
    )


if __name__ == "__main__":
    main()
