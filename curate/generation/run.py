"""`curate generate`: K-trial acceptance over a run directory that survives a crash and resumes exactly."""

import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console
from rich.progress import Progress, TaskID

from curate.engines import open_counter
from curate.engines.base import Constraint, Engine, GenerationRequest, GenerationResult, trial_seed
from curate.generation.acceptance import decide, judge, latest_slots, open_slots, trial_from_result
from curate.generation.documents import fitted_documents
from curate.generation.fingerprint import check_inputs, row_fingerprints
from curate.generation.run_dir import ENGINE_LOG, TRIALS, RunInfo, read_run_info, write_run_info
from curate.generation.tables import examples_frame, finalize_run, summarize, write_examples
from schemas.config import GenerateConfig
from schemas.default_model import resolve_model_path
from schemas.example import Example
from schemas.exits import ExitCode
from schemas.files import Journal
from schemas.inputs import InputError, input_mapping, load_splits
from schemas.integrity import describe_overlap, find_overlap, overlap_ids
from schemas.progress import progress_bar
from schemas.task import BUILTIN_TASKS, TaskSpec, load_task
from schemas.teacher_output import structured_output_regex, structured_output_schema
from schemas.trial import Trial, TrialKind
from schemas.truncation import TokenCounter, fit_in_chunks

DOCUMENT_MARK = "\x1f\x1e"  # stands for the document when the teacher prompt's fixed text is cut out and counted


@dataclass
class Plan:
    """Everything a run needs, validated before anything is written."""

    config: GenerateConfig
    task: TaskSpec
    inputs: dict[str, Path]
    examples: Sequence[Example]
    engine: Engine | None  # None for a dry run: it needs the teacher's tokenizer only


@dataclass(frozen=True)
class Asking:
    """How a trial loop asks: up to `k` trials per example in `strategy`, the prompt of an example, the seed of its
    trial n, the structured-output constraint, and the kind its journal rows carry."""

    k: int
    strategy: str
    messages: Callable[[Example], list[dict[str, str]]]
    seed: Callable[[Example, int], int]
    constraint: Constraint | None
    kind: TrialKind = TrialKind.generate


def constraint_for(config: GenerateConfig, task: TaskSpec, engine: Engine) -> Constraint | None:
    """The structured-output constraint the config asks for; refuse it on an engine that cannot apply it."""
    if config.structured_output == "none":
        return None
    if not engine.supports_constraints:
        raise InputError(
            f"engine {engine.uri} cannot constrain output: use a vllm: or openai: engine, or structured_output: none"
        )
    if config.structured_output == "json":
        return Constraint(json_schema=structured_output_schema(task))
    return Constraint(regex=structured_output_regex(task))


def changed_fields(old: GenerateConfig, new: GenerateConfig) -> str:
    """The config fields that differ, comma-separated (`columns` when only the nested mapping does)."""
    before, after = old.model_dump(), new.model_dump()
    return ", ".join(sorted(key for key in after if before.get(key) != after.get(key))) or "columns"


def check_resume(run_dir: Path, config: GenerateConfig, task: TaskSpec, inputs: dict[str, Path] | None) -> dict:
    """Inputs of the run: refuse to resume a run directory under another config, task or inputs."""
    info = read_run_info(run_dir)
    if info.config_hash != config.identity_hash():
        raise InputError(
            f"{run_dir} was started with another config (changed: {changed_fields(info.config, config)});"
            " resume with the same settings or pass a new --out directory"
        )
    if info.task_spec_hash != task.spec_hash():
        raise InputError(f"{run_dir} was started with another version of task {task.name!r}: use a new --out")
    recorded = {split: Path(path) for split, path in info.inputs.items()}
    if inputs and {s: p.resolve() for s, p in inputs.items()} != {s: p.resolve() for s, p in recorded.items()}:
        raise InputError(f"{run_dir} was started on {info.inputs}: resume without --input or use a new --out")
    return recorded


def absolute_if_exists(text: str) -> str:
    """An existing file or folder as an absolute path; anything else (a name, a hub id) unchanged."""
    path = Path(text).expanduser()
    return str(path.resolve()) if path.exists() else text


def anchored_engine(uri: str) -> str:
    """An hf:/vllm:/ray: URI with its local model folder made absolute ('default' and hub ids stay as given)."""
    scheme, _, model = uri.partition(":")
    if scheme not in ("hf", "vllm", "ray") or resolve_model_path(model) != model:
        return uri
    return f"{scheme}:{absolute_if_exists(model)}"


def anchored(config: GenerateConfig) -> GenerateConfig:
    """The config with its local paths (task YAML, model, tokenizer) absolute, so a run resumes from any folder."""
    return config.model_copy(
        update={
            "task": config.task if config.task in BUILTIN_TASKS else absolute_if_exists(config.task),
            "engine": anchored_engine(config.engine),
            "tokenizer": config.tokenizer and absolute_if_exists(config.tokenizer),
        }
    )


def plan_run(config: GenerateConfig, inputs: dict[str, Path] | None, run_dir: Path, dry_run: bool = False) -> Plan:
    """Load task, inputs and engine, or raise InputError / EngineError / ValueError before writing any output.

    The engine's log goes to RUN/engine.log; a dry run opens no engine."""
    task = load_task(config.task)
    config = anchored(config)
    resuming = (run_dir / "run.json").exists()
    if resuming:
        inputs = check_resume(run_dir, config, task, inputs)
    elif not inputs:
        raise InputError("no --input given and the run directory is new: pass --input PATH")
    inputs = {split: path.resolve() for split, path in inputs.items()}
    examples = load_splits(inputs, task, input_mapping(task, config.columns))
    if resuming:
        check_inputs(run_dir, read_run_info(run_dir), examples)
    return Plan(config, task, inputs, examples, None if dry_run else open_teacher(config, run_dir / ENGINE_LOG))


def open_teacher(config: GenerateConfig, log_path: Path | None) -> Engine:
    """The config's teacher engine, its log appended to `log_path` (None: the terminal)."""
    from curate.engines import open_engine  # heavy (torch, vllm, openai): only once the inputs are valid

    return open_engine(
        config.engine,
        batch_size=config.batch_size,
        concurrency=config.concurrency,
        tokenizer=config.tokenizer,
        log_path=log_path,
        ray=config.ray,
    )


def start_run_dir(run_dir: Path, plan: Plan, documents: Mapping[str, tuple[str, bool]]) -> RunInfo:
    """Create or reopen the run directory: examples.parquet and run.json."""
    run_dir.mkdir(parents=True, exist_ok=True)
    write_examples(run_dir, examples_frame(plan.examples, documents))
    info = (
        read_run_info(run_dir)
        if (run_dir / "run.json").exists()
        else RunInfo.begin(
            plan.config,
            plan.engine.model_id,
            task_spec=plan.task.model_dump(mode="json"),
            task_spec_hash=plan.task.spec_hash(),
            inputs={split: str(path) for split, path in plan.inputs.items()},
            input_rows=row_fingerprints(plan.examples),
        )
    )
    info.status = "running"
    write_run_info(run_dir, info)
    return info


def request_for(plan: Plan, asking: Asking, example: Example, number: int) -> GenerationRequest:
    """The engine request for trial `number` of an example, with the run's sampling parameters."""
    sampling = plan.config.sampling
    return GenerationRequest(
        key=f"{example.id}\x1f{number}",
        messages=asking.messages(example),
        seed=asking.seed(example, number),
        max_tokens=sampling.max_tokens,
        temperature=sampling.temperature,
        top_p=sampling.top_p,
        constraint=asking.constraint,
    )


def generation_asking(plan: Plan, documents: Mapping[str, tuple[str, bool]], constraint: Constraint | None) -> Asking:
    """Algorithm 1's trials: the teacher prompt, seeds from (base seed, example id, trial)."""
    config = plan.config
    return Asking(
        k=config.k,
        strategy=config.strategy,
        messages=lambda example: plan.task.teacher_messages(documents[example.id][0]),
        seed=lambda example, number: trial_seed(config.base_seed, example.id, number),
        constraint=constraint,
    )


@dataclass
class TrialLoop:
    """Judges and journals each result as it arrives, and keeps the slots and the progress bar current."""

    plan: Plan
    asking: Asking
    by_id: dict[str, Example]
    slots: dict[tuple[str, int], Trial]
    journal: Journal
    progress: Progress
    bar: TaskID
    accepted: int
    skip: set[tuple[str, int]] = field(default_factory=set)
    tokens: int = 0
    started: float = field(default_factory=time.perf_counter)

    def open_trials(self, example: Example, strategy: str) -> list[int]:
        """The example's trials to send next under `strategy` (errored slots of this run are not retried)."""
        return open_slots(example.id, self.slots, self.asking.k, strategy, self.skip)

    def request(self, example: Example, number: int) -> GenerationRequest:
        """The engine request for trial `number` of an example."""
        return request_for(self.plan, self.asking, example, number)

    def record(self, result: GenerationResult, seed: int) -> Example:
        """Judge and journal one result; returns its example."""
        engine = self.plan.engine
        example_id, number = result.key.split("\x1f")
        example = self.by_id[example_id]
        raw = trial_from_result(result, example, int(number), seed, engine.uri, engine.model_id, self.asking.kind)
        trial = judge(raw, self.plan.task, self.plan.config.min_explanation_chars)
        self.journal.append(trial)
        self.slots[(example_id, trial.trial)] = trial
        if trial.status == "error":
            self.skip.add((example_id, trial.trial))
        state = decide(example_id, self.slots, self.asking.k).state
        self.accepted += state == "accepted"
        self.tokens += trial.completion_tokens
        self.progress.update(
            self.bar,
            advance=int(state != "pending"),
            accepted=self.accepted,
            tps=self.tokens / max(time.perf_counter() - self.started, 1e-9),
        )
        return example


def round_trials(loop: TrialLoop, active: list[Example], strategy: str) -> None:
    """rounds / parallel: send every open slot, wait for the whole batch, repeat."""
    while wanted := [(ex, n) for ex in active for n in loop.open_trials(ex, strategy)]:
        requests = [loop.request(ex, n) for ex, n in wanted]
        seeds = {request.key: request.seed for request in requests}
        for result in loop.plan.engine.generate(requests):
            loop.record(result, seeds[result.key])


def pipelined_trials(loop: TrialLoop, active: list[Example], limit: int) -> None:
    """pipelined: an example's next trial goes out as soon as its last one failed (rounds' slots, so rounds'
    accepted set), at most `limit` requests in flight; retries go before examples not started yet."""
    waiting = deque(active)
    in_flight: dict[str, int] = {}  # request key -> seed
    stream = loop.plan.engine.stream()

    def refill() -> None:
        batch = []
        while waiting and len(in_flight) < limit:
            example = waiting.popleft()
            for number in loop.open_trials(example, "rounds"):
                batch.append(request := loop.request(example, number))
                in_flight[request.key] = request.seed
        stream.submit(batch)

    refill()
    for result in stream:
        waiting.appendleft(loop.record(result, in_flight.pop(result.key)))
        refill()


def chosen_strategy(strategy: str, engine: Engine) -> str:
    """The strategy `auto` stands for on this engine: pipelined where it streams, else rounds."""
    if strategy != "auto":
        return strategy
    return "pipelined" if engine.streams else "rounds"


def run_trials(
    plan: Plan,
    asking: Asking,
    active: Sequence[Example],
    slots: dict[tuple[str, int], Trial],
    journal: Journal,
    console,
) -> None:
    """Send the open trial slots of `active` in the asking's strategy, journaling each result as it arrives."""
    active = list(active)  # built once: every round reads them again
    states = [decide(ex.id, slots, asking.k).state for ex in active]
    fields = "accepted {task.fields[accepted]} · {task.fields[tps]:.1f} tok/s"
    with progress_bar(console, fields, remaining=True) as progress:
        accepted = states.count("accepted")
        bar = progress.add_task(
            "examples", total=len(active), completed=len(states) - states.count("pending"), accepted=accepted, tps=0.0
        )
        loop = TrialLoop(plan, asking, {ex.id: ex for ex in active}, slots, journal, progress, bar, accepted)
        strategy = chosen_strategy(asking.strategy, plan.engine)
        if strategy == "pipelined":
            pipelined_trials(loop, active, plan.config.concurrency)
        else:
            round_trials(loop, active, strategy)


def journaled_trials(
    plan: Plan, asking: Asking, active: Sequence[Example], path: Path, console: Console
) -> dict[tuple[str, int], Trial]:
    """Resume from the journal at `path`, run the trial loop over `active` and return every slot; an interrupt
    stops the loop with each finished trial kept."""
    journal = Journal(path, Trial)
    slots = latest_slots(journal.load())
    try:
        run_trials(plan, asking, active, slots, journal, console)
    except KeyboardInterrupt:
        console.print("[yellow]interrupted: every finished trial is in the journal; rerun to resume[/yellow]")
    finally:
        journal.close()
    return slots


def train_overlap(examples: Iterable[Example], splits: Iterable[str]) -> str | None:
    """A warning when examples of the other `splits` repeat a train example's text (ids are unique already); reads
    `examples` twice, one example at a time."""
    others = sorted(split for split in splits if split != "train")
    if not others:
        return None
    train = ((ex.id, ex.fields) for ex in examples if ex.split == "train")
    overlap = find_overlap(((ex.id, ex.fields) for ex in examples if ex.split != "train"), train)
    if not overlap_ids(overlap):
        return None
    return (
        f"{describe_overlap(overlap, '/'.join(others), 'train')}: dev metrics on them will be optimistic;"
        " remove the repeats from one of the input files"
    )


def planned_tokens(task: TaskSpec, active: Sequence[Example], counter: TokenCounter) -> tuple[int, int]:
    """(documents truncated, teacher prompt tokens of one round) of `active`: each document is tokenized once (in
    batched chunks that are not kept) and the prompt's fixed text once, as the parts between its documents."""
    parts = "\n".join(message["content"] for message in task.teacher_messages(DOCUMENT_MARK)).split(DOCUMENT_MARK)
    truncated = document_tokens = 0
    for _, cut, tokens in fit_in_chunks(active, task, counter):
        truncated += cut
        document_tokens += tokens
    return truncated, len(active) * sum(counter.count_many(parts)) + (len(parts) - 1) * document_tokens


def dry_run_report(plan: Plan, active: Sequence[Example], console: Console) -> None:
    """Counts and token budget of a run, measured with the teacher's tokenizer alone (no engine is started)."""
    config = plan.config
    truncated, prompt_tokens = planned_tokens(plan.task, active, open_counter(config.engine, config.tokenizer))
    counts = Counter((ex.split, ex.label == plan.task.positive_label) for ex in active)
    for split in plan.inputs:
        positives, negatives = counts[(split, True)], counts[(split, False)]
        console.print(f"{split}: {positives + negatives} examples ({positives} positive, {negatives} negative)")
    console.print(f"documents truncated to {plan.task.max_input_tokens} tokens: {truncated}")
    console.print(
        f"teacher budget: about {prompt_tokens} prompt tokens per round of every example (documents and the prompt's"
        f" fixed text counted apart, no chat template); generated tokens between"
        f" {len(active) * config.sampling.max_tokens} (1 trial each) and"
        f" {len(active) * config.k * config.sampling.max_tokens} (K={config.k} trials each), at most"
    )


def run_generate(
    config: GenerateConfig,
    inputs: dict[str, Path] | None,
    run_dir: Path,
    limit: int | None,
    dry_run: bool,
    console: Console,
) -> int:
    """Run (or resume) generation and return 0 (done) or 1 (partial); bad input raises before anything is written."""
    plan = plan_run(config, inputs, run_dir, dry_run)
    overlap = train_overlap(plan.examples, plan.inputs)
    if overlap:
        console.print(f"[yellow]warning:[/yellow] {overlap}", highlight=False)
    active = plan.examples[:limit] if limit else plan.examples
    if dry_run:
        dry_run_report(plan, active, console)
        return ExitCode.DONE
    with plan.engine as engine:
        plan.config = plan.config.model_copy(update={"strategy": chosen_strategy(config.strategy, engine)})
        documents = fitted_documents(plan.examples, plan.task, engine.counter)
        asking = generation_asking(plan, documents, constraint_for(config, plan.task, engine))
        info = start_run_dir(run_dir, plan, documents)
        slots = journaled_trials(plan, asking, active, run_dir / TRIALS, console)
        decisions = finalize_run(run_dir, info, slots)
    counts = summarize({ex.id: decisions[ex.id] for ex in active})
    console.print(
        f"{counts['accepted']} accepted, {counts['discarded']} discarded, {counts['pending']} pending"
        f" of {counts['examples']} examples → {run_dir}"
    )
    return ExitCode.PARTIAL if counts["pending"] else ExitCode.DONE
