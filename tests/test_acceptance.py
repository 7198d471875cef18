"""Algorithm 1 semantics: seeds, decisions from the journal, rounds vs parallel vs pipelined (scripted teacher)."""

from collections.abc import Iterator, Sequence
from itertools import pairwise
from pathlib import Path

from rich.console import Console

from curate.engines import GenerationRequest, GenerationResult, trial_seed
from curate.engines.base import BatchStreams
from curate.generation.acceptance import decide, latest_slots, open_slots
from curate.generation.run import Plan, chosen_strategy, generation_asking, run_trials
from schemas import Example, GenerateConfig, Trial, TrialStatus, load_task
from schemas.files import Journal

TASK = load_task("clinifact")
ANSWERS = {
    0: ("The abstract reports a significant benefit on the primary outcome.\nClassification: TRUE", "stop"),
    1: ("The abstract reports no significant difference on the primary outcome.\nClassification: FALSE", "stop"),
    2: ("I cannot tell.", "stop"),
    3: ("The abstract reports", "length"),
}


def answer(request: GenerationRequest) -> GenerationResult:
    text, finish = ANSWERS[request.seed % 4]
    return GenerationResult(key=request.key, text=text, completion_tokens=len(text.split()), finish_reason=finish)


class ScriptedEngine(BatchStreams):
    """A deterministic stand-in whose answer depends only on the request seed; it records every request."""

    uri, model_id, supports_constraints = "script:", "script", False

    def __init__(self) -> None:
        self.requests: list[GenerationRequest] = []

    def generate(self, requests: Sequence[GenerationRequest]) -> Iterator[GenerationResult]:
        for request in requests:
            self.requests.append(request)
            yield answer(request)

    def count_tokens(self, text: str) -> int:
        return len(text.split())

    def truncate_to_tokens(self, text: str, max_tokens: int) -> str:
        return " ".join(text.split()[:max_tokens])

    def close(self) -> None:
        pass


class StreamingScriptedEngine(ScriptedEngine):
    """The scripted teacher as a stream that answers the newest submission first, so results arrive out of order
    and between submissions; it logs ("submit" | "result", key) events and the most requests it held at once."""

    streams = True

    def __init__(self) -> None:
        super().__init__()
        self.queued: list[GenerationRequest] = []
        self.events: list[tuple[str, str]] = []
        self.most_in_flight = 0

    def stream(self) -> "StreamingScriptedEngine":
        return self

    def submit(self, requests: Sequence[GenerationRequest]) -> None:
        self.queued.extend(requests)
        self.requests.extend(requests)
        self.events.extend(("submit", r.key) for r in requests)
        self.most_in_flight = max(self.most_in_flight, len(self.queued))

    def __iter__(self) -> Iterator[GenerationResult]:
        while self.queued:
            request = self.queued.pop()
            self.events.append(("result", request.key))
            yield answer(request)


def examples(count: int = 40) -> list[Example]:
    return [
        Example(id=f"ex{i}", fields={"claim": f"claim {i}", "article_abstract": "abstract"}, label=i % 2)
        for i in range(count)
    ]


def run(
    strategy: str, tmp_path: Path, k: int = 4, engine: ScriptedEngine | None = None
) -> tuple[dict[str, tuple[str, int | None]], ScriptedEngine]:
    engine = engine or ScriptedEngine()
    config = GenerateConfig(k=k, strategy=strategy, min_explanation_chars=10, concurrency=8)
    data = examples()
    plan = Plan(config, TASK, {"train": tmp_path}, data, engine)
    documents = {ex.id: (TASK.render_document(ex.fields), False) for ex in data}
    journal = Journal(tmp_path / f"{strategy}.jsonl", Trial)
    slots: dict = {}
    run_trials(plan, generation_asking(plan, documents, None), data, slots, journal, Console(quiet=True))
    journal.close()
    assert latest_slots(journal.load()) == slots
    return {ex.id: (d.state, d.trial) for ex in data for d in [decide(ex.id, slots, k)]}, engine


def test_seeds_depend_on_example_trial_and_base() -> None:
    assert trial_seed(0, "a", 1) == trial_seed(0, "a", 1)
    seeds = {trial_seed(0, "a", 1), trial_seed(0, "a", 2), trial_seed(0, "b", 1), trial_seed(1, "a", 1)}
    assert len(seeds) == 4 and all(0 <= s < 2**31 for s in seeds)


def test_rounds_and_parallel_accept_the_same_set(tmp_path: Path) -> None:
    rounds, rounds_engine = run("rounds", tmp_path)
    parallel, parallel_engine = run("parallel", tmp_path)
    assert rounds == parallel
    states = [state for state, _ in rounds.values()]
    assert "accepted" in states and "discarded" in states and "pending" not in states
    assert {trial for _, trial in rounds.values()} - {None} != {1}, "some examples need more than one trial"
    # rounds sends only what Algorithm 1 needs; parallel sends every trial up front
    assert len(rounds_engine.requests) < len(parallel_engine.requests) == 40 * 4


def test_rounds_never_sends_a_trial_after_acceptance(tmp_path: Path) -> None:
    decisions, engine = run("rounds", tmp_path)
    sent: dict[str, list[int]] = {}
    for request in engine.requests:
        example_id, trial = request.key.split("\x1f")
        sent.setdefault(example_id, []).append(int(trial))
    for example_id, (_state, trial) in decisions.items():
        expected = list(range(1, (trial or 4) + 1))
        assert sent[example_id] == expected, example_id


def test_pipelined_sends_each_retry_right_after_a_failure_and_accepts_the_rounds_set(tmp_path: Path) -> None:
    rounds, _ = run("rounds", tmp_path)
    engine = StreamingScriptedEngine()
    pipelined, _ = run("pipelined", tmp_path, engine=engine)
    assert pipelined == rounds
    assert engine.most_in_flight == 8, "the config's concurrency bounds the requests in flight"
    seen: dict[str, list[str]] = {}
    for event, key in engine.events:
        example_id, trial = key.split("\x1f")
        seen.setdefault(example_id, []).append(f"{event} {trial}")
    for example_id, (_state, accepted_at) in pipelined.items():
        last = accepted_at or 4
        assert seen[example_id] == [f"{event} {n}" for n in range(1, last + 1) for event in ("submit", "result")]
    for (event, key), following in pairwise(engine.events):
        example_id, trial = key.split("\x1f")
        if event == "result" and int(trial) < (pipelined[example_id][1] or 4):
            assert following == ("submit", f"{example_id}\x1f{int(trial) + 1}"), "a retry waited"


def test_auto_is_the_default_pipelined_where_the_engine_streams_and_rounds_elsewhere(tmp_path: Path) -> None:
    assert chosen_strategy(GenerateConfig().strategy, StreamingScriptedEngine()) == "pipelined"
    assert chosen_strategy("auto", ScriptedEngine()) == chosen_strategy("rounds", StreamingScriptedEngine()) == "rounds"
    _, rounds_engine = run("rounds", tmp_path)
    _, auto_engine = run("auto", tmp_path)
    assert [r.key for r in auto_engine.requests] == [r.key for r in rounds_engine.requests]


def trial(example_id: str, number: int, status: TrialStatus) -> Trial:
    return Trial(
        example_id=example_id,
        split="train",
        gold_label=1,
        trial=number,
        seed=0,
        status=status,
        engine="e",
        model_id="m",
    )


def test_decide_first_accepted_in_trial_order_and_errors_keep_pending() -> None:
    slots = latest_slots(
        [
            trial("a", 1, TrialStatus.wrong_label),
            trial("a", 2, TrialStatus.accepted),
            trial("a", 3, TrialStatus.accepted),
        ]
    )
    assert decide("a", slots, 3).trial == 2
    slots = latest_slots([trial("b", 1, TrialStatus.error), trial("b", 2, TrialStatus.accepted)])
    assert decide("b", slots, 3).state == "pending"
    retried = latest_slots([trial("b", 1, TrialStatus.error), trial("b", 1, TrialStatus.accepted)])
    assert decide("b", retried, 3).trial == 1
    slots = latest_slots([trial("c", n, TrialStatus.invalid) for n in (1, 2, 3)])
    assert decide("c", slots, 3).state == "discarded"


def test_open_slots_skip_errored_slots_of_this_run() -> None:
    slots = latest_slots([trial("a", 1, TrialStatus.error)])
    assert open_slots("a", slots, 3, "rounds", set()) == [1]
    assert open_slots("a", slots, 3, "rounds", {("a", 1)}) == []
    assert open_slots("a", {}, 3, "parallel", set()) == [1, 2, 3]


def test_a_constraint_needs_exactly_one_of_schema_or_regex() -> None:
    import pytest
    from pydantic import ValidationError

    from curate.engines import Constraint

    for bad in ({}, {"json_schema": {"type": "object"}, "regex": "x"}):
        with pytest.raises(ValidationError, match="exactly one"):
            Constraint(**bad)
    assert Constraint(regex="x").regex == "x"
