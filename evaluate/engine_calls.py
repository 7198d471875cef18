"""Engine calls journaled in an output folder: a killed judge or baseline resumes without asking twice."""

import json
from collections import Counter
from pathlib import Path
from typing import Any

from curate.engines import Engine, GenerationRequest, GenerationResult
from evaluate.progress import progress
from schemas.files import Journal, atomic_write_bytes

CALLS = "calls.jsonl"
CALLS_INFO = "calls.json"


def check_call_settings(out: Path, settings: dict[str, Any], name: str = CALLS_INFO) -> None:
    """Record what the calls in `out` answer (in `out/name`); refuse to resume them under other settings (engine,
    prompts...)."""
    path = out / name
    if path.is_file():
        old = json.loads(path.read_text())
        changed = sorted(key for key in settings.keys() | old.keys() if old.get(key) != settings.get(key))
        if changed:
            raise ValueError(
                f"{out} holds calls made with other settings (changed: {', '.join(changed)}):"
                " pass a new --out folder, or delete this one to start over"
            )
        return
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, json.dumps(settings, indent=2, sort_keys=True).encode())


def example_of(key: str) -> str:
    """The example id of a request key `EXAMPLE_ID/PART` (a judge question, a baseline vote)."""
    return key.rsplit("/", 1)[0]


def run_journaled(
    engine: Engine, requests: list[GenerationRequest], out: Path, description: str
) -> dict[str, GenerationResult]:
    """Results by key: journaled ones are reused (errors are retried), the rest are asked and journaled; a progress
    bar counts the examples whose every request is answered."""
    journal = Journal(out / CALLS, GenerationResult)
    done = {result.key: result for result in journal.load() if result.finish_reason != "error"}
    pending = [request for request in requests if request.key not in done]
    results = dict(done)
    waiting = Counter(example_of(request.key) for request in pending)
    total = len({example_of(request.key) for request in requests})
    try:
        with progress(description, total) as advance:
            advance(total - len(waiting))
            for result in engine.generate(pending):
                journal.append(result)
                results[result.key] = result
                waiting[example_of(result.key)] -= 1
                advance(int(waiting[example_of(result.key)] == 0))
    finally:
        journal.close()
    return {request.key: results[request.key] for request in requests}
