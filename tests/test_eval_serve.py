"""`evaluate serve` as a real uvicorn process on a free port, on a tiny trained checkpoint, queried with httpx:
concurrent requests answer what in-process predict gives, bad bodies get 413/422, and no document text is logged."""

import asyncio
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from evaluate.config import EvalConfig
from evaluate.predict import predict
from schemas.example import Example
from tests.engines_fixtures import free_port, wait_until_healthy
from tests.eval_fixtures import clinifact_version, train_one_epoch
from train.checkpoint import load_checkpoint

ABSTRACT = "The trial randomised {n} patients; survival improved significantly with the drug at one year."
ROWS = [{"claim": f"Drug {n} improves survival.", "article_abstract": ABSTRACT.format(n=n * 10)} for n in range(6)]


@pytest.fixture(scope="module")
def served(tiny_model_dir, clinifact_dir, tmp_path_factory) -> Iterator[tuple[str, Path, Path]]:
    """(base URL, checkpoint, server log) of `evaluate serve` on a tiny trained checkpoint, once /ready says so."""
    root = tmp_path_factory.mktemp("serve")
    version = clinifact_version(clinifact_dir, root / "registry", per_split=6)
    checkpoint = train_one_epoch(version, tiny_model_dir, root / "run") / "epoch-1"
    port, log_path = free_port(), root / "server.log"
    command = [sys.executable, "-m", "evaluate", "serve", "--checkpoint", str(checkpoint), "--port", str(port)]
    command += ["--max-new-tokens", "6", "--batch-size", "4", "--max-wait-ms", "20", "--max-body-bytes", "4000"]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    with log_path.open("wb") as log:
        server = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_healthy(f"{url}/ready", server, log_path)  # /ready: 200 once the model is loaded
        yield url, checkpoint, log_path
    finally:
        server.terminate()
        server.wait(timeout=30)


async def post_all(url: str, bodies: list) -> list[httpx.Response]:
    """POST every body to /predict at once."""
    async with httpx.AsyncClient(base_url=url, timeout=60.0) as client:
        return await asyncio.gather(*(client.post("/predict", json=body) for body in bodies))


def test_concurrent_requests_answer_what_in_process_predict_gives(served) -> None:
    url, checkpoint, log_path = served
    assert httpx.get(f"{url}/ready").json() == {"status": "ready"}
    assert httpx.get(f"{url}/health").json() == {"status": "up"}
    bodies = [{**row, "id": f"r{n}"} for n, row in enumerate(ROWS[:4])] + [ROWS[4:]]  # 4 objects and one list
    responses = asyncio.run(post_all(url, bodies))
    assert [r.status_code for r in responses] == [200] * 5
    answers = [r.json() for r in responses[:4]] + responses[4].json()
    examples = [Example(id=str(n), fields=row, label=0) for n, row in enumerate(ROWS)]
    direct = predict(load_checkpoint(checkpoint), examples, EvalConfig(max_new_tokens=6, batch_size=4))
    assert [a["id"] for a in answers] == ["r0", "r1", "r2", "r3", "0", "1"]
    for answer, row in zip(answers, direct, strict=True):
        assert answer["probability"] == pytest.approx(row.p_head, abs=1e-4)
        assert answer["label"] == int(row.p_head >= 0.5) and answer["parse_status"] == row.parse_status
        assert set(answer) == {"id", "probability", "label", "explanation", "verbalized_label", "parse_status"}
    log = log_path.read_text()
    assert "batch of" in log and "POST /predict" in log
    assert not any(text in log for row in ROWS for text in row.values())  # no document text in the logs


def test_bad_bodies_get_413_or_422_naming_the_problem(served) -> None:
    url, _, _ = served
    with httpx.Client(base_url=url, timeout=30.0) as client:
        malformed = client.post("/predict", content=b"{not json", headers={"content-type": "application/json"})
        missing = client.post("/predict", json={"claim": "A claim."})
        empty = client.post("/predict", json={"claim": "  ", "article_abstract": "An abstract."})
        unknown = client.post("/predict", json={**ROWS[0], "abstract": "typo"})
        oversized = client.post("/predict", json={**ROWS[0], "article_abstract": "x" * 5000})
        no_rows = client.post("/predict", json=[])
    assert malformed.status_code == 422 and "not valid JSON" in malformed.json()["error"]
    assert missing.status_code == 422 and missing.json()["details"] == ["article_abstract: Field required"]
    assert empty.status_code == 422 and empty.json()["details"][0].startswith("claim: String should have at least 1")
    assert unknown.status_code == 422 and "abstract: Extra inputs are not permitted" in unknown.json()["details"]
    assert oversized.status_code == 413 and "over 4000 bytes" in oversized.json()["error"]
    assert no_rows.status_code == 422 and "1 to 256 rows" in no_rows.json()["error"]
