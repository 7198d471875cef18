"""Algorithm 1 as pure functions of the journal: judge a trial, decide examples, choose the next slots."""

import time
from collections.abc import Iterable
from dataclasses import dataclass

from curate.engines.base import GenerationResult
from schemas.example import Example
from schemas.task import TaskSpec
from schemas.teacher_output import parse_teacher_output
from schemas.trial import Trial, TrialKind, TrialStatus


@dataclass(frozen=True)
class Decision:
    """Where an example stands: accepted at a trial, discarded after K failures, or pending."""

    state: str  # "accepted" | "discarded" | "pending"
    trial: int | None = None


def judge(trial: Trial, task: TaskSpec, min_explanation_chars: int) -> Trial:
    """Re-derive status, label and explanation of a trial from its raw text (engine errors stay errors)."""
    if trial.status == TrialStatus.error:
        return trial
    parsed = parse_teacher_output(trial.raw_text, task, trial.finish_reason, min_explanation_chars)
    if parsed.status != "ok":
        status, reason = TrialStatus(parsed.status), parsed.reason
    elif parsed.label != trial.gold_label:
        status = TrialStatus.wrong_label
        reason = f"predicted {task.verbalizers[parsed.label]}, gold {task.verbalizers[trial.gold_label]}"
    else:
        status, reason = TrialStatus.accepted, None
    return trial.model_copy(
        update={"status": status, "reason": reason, "label": parsed.label, "explanation": parsed.explanation}
    )


def trial_from_result(
    result: GenerationResult,
    example: Example,
    trial: int,
    seed: int,
    engine: str,
    model_id: str,
    kind: TrialKind = TrialKind.generate,
) -> Trial:
    """A journal row for an engine result, before judging."""
    failed = result.finish_reason == "error"
    return Trial(
        kind=kind,
        example_id=example.id,
        split=example.split,
        gold_label=example.label,
        trial=trial,
        seed=seed,
        status=TrialStatus.error if failed else TrialStatus.invalid,
        reason=result.error if failed else None,
        raw_text=result.text,
        prompt_tokens=result.prompt_tokens,
        completion_tokens=result.completion_tokens,
        finish_reason=result.finish_reason,
        engine=engine,
        model_id=model_id,
        latency_s=result.latency_s,
        created_at=time.time(),
    )


def latest_slots(trials: Iterable[Trial]) -> dict[tuple[str, int], Trial]:
    """The last journal row of each (example, trial) slot."""
    return {(t.example_id, t.trial): t for t in trials}


def decide(example_id: str, slots: dict[tuple[str, int], Trial], k: int) -> Decision:
    """First accepted trial in trial order wins; a missing or errored earlier slot keeps the example pending."""
    for number in range(1, k + 1):
        trial = slots.get((example_id, number))
        if trial is None or trial.status == TrialStatus.error:
            return Decision("pending")
        if trial.status == TrialStatus.accepted:
            return Decision("accepted", number)
    return Decision("discarded")


def open_slots(
    example_id: str, slots: dict[tuple[str, int], Trial], k: int, strategy: str, skip: set[tuple[str, int]]
) -> list[int]:
    """Trials to send next: rounds sends the first open one, parallel every open one before any acceptance."""
    wanted = []
    for number in range(1, k + 1):
        trial = slots.get((example_id, number))
        if trial is not None and trial.status == TrialStatus.accepted:
            break
        if (trial is None or trial.status == TrialStatus.error) and (example_id, number) not in skip:
            wanted.append(number)
            if strategy == "rounds":
                break
        elif trial is None or trial.status == TrialStatus.error:
            break
    return wanted
