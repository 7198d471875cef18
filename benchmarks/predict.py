"""`evaluate predict` engines and `evaluate serve` throughput on CPU, SmolLM2: the same CliniFact test rows through
the transformers one-prefill path and the vLLM path (LoRA generate + pooling head), their probability agreement and
rows/s; then requests/s of a served checkpoint at 1, 8 and 32 concurrent clients against direct in-process calls
(each call one row, as a client sends it). Prints one JSON line.

`python benchmarks/predict.py [--run RUN]`: without --run, a short `train run` (1 epoch, 16 + 8 CliniFact rows)
makes the checkpoint first (about 2 minutes on 2 cores).
"""

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from evaluate.checkpoint_check import check_checkpoint  # noqa: E402
from evaluate.config import EvalConfig  # noqa: E402
from evaluate.io import Document  # noqa: E402
from evaluate.predict import hf_batches  # noqa: E402
from evaluate.predict_inputs import document_mapping, read_documents  # noqa: E402
from schemas.task import TaskSpec  # noqa: E402
from train.checkpoint import load_checkpoint  # noqa: E402

CLINIFACT = REPO.parent / "shared" / "data" / "clinifact"


def short_run(root: Path) -> Path:
    """A 1-epoch SmolLM2 run on 16 train / 8 dev CliniFact rows through `train run`; returns the run folder."""
    from tests.train_fixtures import clinifact_version

    version = clinifact_version(root / "registry", CLINIFACT, 16, 8)
    overrides = ["epochs=1", "batch_size=4", "head_hidden=64", "max_input_tokens=384", "learning_rate=1e-3"]
    command = [sys.executable, "-m", "train", "run", "--dataset", str(version), "--model", "default"]
    subprocess.run([*command, "--out", str(root / "run"), *overrides], check=True, env={**os.environ})
    return root / "run"


def timed(fn) -> tuple[object, float]:
    """fn()'s value and its wall seconds."""
    began = time.perf_counter()
    value = fn()
    return value, time.perf_counter() - began


async def clients(url: str, rows: list[Document], concurrency: int) -> float:
    """Requests/s of `concurrency` clients sending one row each until every row is answered."""
    queue = list(rows)

    async def client(http: httpx.AsyncClient) -> None:
        while queue:
            row = queue.pop()
            response = await http.post("/predict", json=row.fields)
            response.raise_for_status()

    async with httpx.AsyncClient(base_url=url, timeout=600.0) as http:
        began = time.perf_counter()
        await asyncio.gather(*(client(http) for _ in range(concurrency)))
        return len(rows) / (time.perf_counter() - began)


def serve(checkpoint: Path, port: int, config: EvalConfig) -> subprocess.Popen:
    """`evaluate serve` on the checkpoint; returns once /ready answers 200."""
    command = [sys.executable, "-m", "evaluate", "serve", "--checkpoint", str(checkpoint), "--port", str(port)]
    command += ["--max-new-tokens", str(config.max_new_tokens), "--batch-size", str(config.batch_size)]
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while True:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/ready", timeout=2).status_code == 200:
                return server
        except httpx.TransportError:
            pass
        if server.poll() is not None:
            raise RuntimeError(f"evaluate serve exited with {server.returncode}")
        time.sleep(0.5)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--run", type=Path, help="a `train run` folder with epoch-1 (default: train one)")
    parser.add_argument("--rows", type=int, default=32)
    parser.add_argument("--max-new-tokens", type=int, default=32)
    parser.add_argument("--served-rows", type=int, default=32, help="rows sent per concurrency level")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--skip-vllm", action="store_true")
    args = parser.parse_args()
    run = args.run or short_run(Path(os.environ.get("TMPDIR", "/tmp")) / f"bench-predict-{os.getpid()}")
    checkpoint = run / "epoch-1"
    head_config = check_checkpoint(checkpoint)
    task = TaskSpec.model_validate(head_config.task_spec)
    rows = read_documents(CLINIFACT / "test_set.csv", task, document_mapping(task, None, []))[: args.rows]
    config = EvalConfig(max_new_tokens=args.max_new_tokens, batch_size=8)
    loaded = load_checkpoint(checkpoint)
    hf, hf_s = timed(lambda: {o.id: o for batch in hf_batches(loaded, rows, config) for o in batch})
    result: dict = {"benchmark": "predict", "rows": len(rows), "max_new_tokens": args.max_new_tokens}
    result["hf_rows_per_s"] = round(len(rows) / hf_s, 3)
    print(json.dumps(result), file=sys.stderr, flush=True)  # each stage as it ends (a long run shows progress)
    if not args.skip_vllm:
        from evaluate.vllm_predict import VLLMPredictor

        predictor, start_s = timed(lambda: VLLMPredictor(checkpoint, head_config, config, rows))
        vllm, vllm_s = timed(lambda: {o.id: o for batch in predictor.batches(rows) for o in batch})
        result |= {
            "vllm_start_s": round(start_s, 1),
            "vllm_rows_per_s": round(len(rows) / vllm_s, 3),
            "max_abs_p_diff": max(abs(hf[r.id].p_head - vllm[r.id].p_head) for r in rows),
            "same_text": sum(hf[r.id].text == vllm[r.id].text for r in rows),
        }
        del predictor
        print(json.dumps(result), file=sys.stderr, flush=True)
    served_rows = (rows * (args.served_rows // len(rows) + 1))[: args.served_rows]
    # in process, the served rows as one-row calls one after another (what a client loop without a server does)
    _, direct_s = timed(lambda: [list(hf_batches(loaded, [row], config)) for row in served_rows])
    server = serve(checkpoint, args.port, config)
    try:
        served = {
            c: round(asyncio.run(clients(f"http://127.0.0.1:{args.port}", served_rows, c)), 3) for c in (1, 8, 32)
        }
    finally:
        server.terminate()
        server.wait()
    result |= {
        "direct_one_row_calls_per_s": round(len(served_rows) / direct_s, 3),
        "served_requests_per_s": served,
        "load_avg": os.getloadavg()[0],
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
