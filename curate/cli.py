"""`curate`: generate explanations with a teacher, inspect drops, review, publish versions."""

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from curate.generation.run import run_generate
from curate.generation.run_dir import RUN_JSON, check_run_folder, read_run_info
from curate.publish.card import CardLicense
from curate.publish.hub import check_online, pull_version, push_version
from curate.publish.release import PublishRequest, card_path, publish
from curate.publish.versions import check_name, diff_versions, list_versions, remove_unfinished, version_key
from curate.review.merge import describe
from curate.review.queue import DEFAULT_WORKSPACE, REVIEWS, pull, push
from curate.stats.compute import compute_report
from curate.stats.render import comparison, rich_table, sections, write_report
from schemas.config import GenerateConfig, merged, validated_config
from schemas.exits import exit_on_bad_input
from schemas.files import check_output_folder, folder_lock
from schemas.inputs import resolve_inputs
from schemas.integrity import DEFAULT_SHARE_MARGIN
from schemas.manifest import IncludedRows
from schemas.progress import progress_bar

app = typer.Typer(no_args_is_help=True, add_completion=False, help=__doc__)
console = Console(soft_wrap=True)


def config_overrides(**flags: Any) -> dict[str, Any]:
    """CLI flags as config fields; sampling flags go into the nested `sampling` mapping."""
    sampling = {key: flags.pop(key) for key in ("temperature", "top_p", "max_tokens") if flags.get(key) is not None}
    overrides = {key: value for key, value in flags.items() if value is not None}
    return {**overrides, "sampling": sampling} if sampling else overrides


def generate_cmd(
    out: Annotated[Path, typer.Option("--out", help="run directory (created, or resumed if it exists)")],
    inputs: Annotated[list[str] | None, typer.Option("--input", help="PATH, SPLIT=PATH, or a folder")] = None,
    split: Annotated[str | None, typer.Option(help="split of a single --input PATH (default: from its name)")] = None,
    config: Annotated[Path | None, typer.Option("--config", help="GenerateConfig YAML; flags override it")] = None,
    task: Annotated[str | None, typer.Option(help="built-in task (clinifact, lcd-30d, lcd-90d) or YAML")] = None,
    engine: Annotated[str | None, typer.Option(help="hf:PATH | vllm:PATH_OR_ID | openai:BASE_URL#MODEL")] = None,
    k: Annotated[int | None, typer.Option("--k", help="max trials per example")] = None,
    strategy: Annotated[str | None, typer.Option(help="rounds | parallel | pipelined | auto")] = None,
    structured_output: Annotated[str | None, typer.Option(help="none | json | regex")] = None,
    temperature: Annotated[float | None, typer.Option()] = None,
    top_p: Annotated[float | None, typer.Option()] = None,
    max_tokens: Annotated[int | None, typer.Option(help="max new tokens per trial")] = None,
    base_seed: Annotated[int | None, typer.Option("--seed", help="base of the per-trial seeds")] = None,
    batch_size: Annotated[int | None, typer.Option()] = None,
    concurrency: Annotated[int | None, typer.Option(help="requests in flight (openai)")] = None,
    limit: Annotated[int | None, typer.Option(min=1, help="only the first N examples (at least 1)")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="print counts and token budget, write nothing")] = False,
) -> None:
    """Ask the teacher for explanations, up to K trials per example, journaling every trial."""
    overrides = config_overrides(
        task=task,
        engine=engine,
        k=k,
        strategy=strategy,
        structured_output=structured_output,
        temperature=temperature,
        top_p=top_p,
        max_tokens=max_tokens,
        base_seed=base_seed,
        batch_size=batch_size,
        concurrency=concurrency,
    )
    with exit_on_bad_input():
        check_output_folder(out)
        check_run_folder(out)
        with folder_lock(out, "curate generate"):
            if config is None and (out / RUN_JSON).is_file():
                overrides = merged(read_run_info(out).config.model_dump(mode="json", exclude_none=True), overrides)
            settings = validated_config(GenerateConfig, config, overrides, "generate")
            resolved = resolve_inputs(inputs, split) if inputs else None
            code = run_generate(settings, resolved, out, limit, dry_run, console)
    raise typer.Exit(code)


def decide_cmd(
    run_dir: Annotated[Path, typer.Argument(help="run directory of `curate generate`")],
    min_explanation_chars: Annotated[int | None, typer.Option(help="new minimum explanation length")] = None,
) -> None:
    """Re-judge every journaled trial with the current rules and rewrite the accepted/rejected tables."""
    from curate.generation.tables import redecide

    with exit_on_bad_input(), folder_lock(run_dir, "curate decide"):
        changed, counts = redecide(run_dir, min_explanation_chars)
    console.print(
        f"{changed} trial statuses changed; {counts['accepted']} accepted, {counts['discarded']} discarded,"
        f" {counts['pending']} pending of {counts['examples']}"
    )


def rationalize_cmd(
    run_dir: Annotated[Path, typer.Argument(help="run directory of a finished `curate generate`")],
    k: Annotated[int | None, typer.Option("--k", help="K': max hinted trials per example [default: 3]")] = None,
    label: Annotated[
        int | None, typer.Option(min=0, max=1, help="gold label to rationalize (default: the minority class)")
    ] = None,
    all_discarded: Annotated[bool, typer.Option("--all-discarded", help="every discarded example")] = False,
    engine: Annotated[str | None, typer.Option(help="teacher engine URI (default: the run's)")] = None,
    structured_output: Annotated[str | None, typer.Option(help="none | json | regex (default: the run's)")] = None,
    max_tokens: Annotated[int | None, typer.Option(help="max new tokens per trial (default: the run's)")] = None,
    limit: Annotated[int | None, typer.Option(min=1, help="only the first N chosen examples")] = None,
) -> None:
    """Give the teacher the gold label of discarded examples as a hint and ask why it holds, up to K' trials each,
    journaled in RUN_DIR/rationalized.jsonl; rerun to resume. Recovered rows are marked `rationalized`."""
    from curate.rationalize.run import run_rationalize

    overrides = config_overrides(k=k, engine=engine, structured_output=structured_output, max_tokens=max_tokens)
    with exit_on_bad_input():
        if label is not None and all_discarded:
            raise ValueError("give --label or --all-discarded, not both")
        with folder_lock(run_dir, "curate rationalize"):
            code = run_rationalize(run_dir, overrides, label, all_discarded, limit, console)
    raise typer.Exit(code)


ShareMargin = Annotated[
    float,
    typer.Option(
        "--share-margin",
        min=0.0,
        max=1.0,
        help="warn when a split's positive share moves more than this from the input's",
    ),
]


def stats_cmd(
    run_dir: Annotated[Path | None, typer.Argument(help="run directory of `curate generate`")] = None,
    compare: Annotated[
        tuple[Path, Path] | None, typer.Option("--compare", help="RUN_A RUN_B: two runs side by side")
    ] = None,
    share_margin: ShareMargin = DEFAULT_SHARE_MARGIN,
) -> None:
    """Table 7, class-balance warnings, failure reasons, acceptance by trial, tokens, throughput; writes
    stats.md/.json/.png."""
    with exit_on_bad_input():
        if (run_dir is None) == (compare is None):
            raise ValueError("give either RUN_DIR or --compare RUN_A RUN_B")
        if compare:
            console.print(rich_table(comparison(*(compute_report(path, share_margin) for path in compare))))
            return
        report = compute_report(run_dir, share_margin)
        for section in sections(report):
            console.print(rich_table(section))
        written = write_report(report, run_dir)
        console.print("wrote " + ", ".join(str(path) for path in written))


review_app = typer.Typer(
    no_args_is_help=True,
    help="Human review of discarded examples in Argilla 2.x (server from ARGILLA_API_URL / ARGILLA_API_KEY).",
)


@review_app.command("push")
def review_push_cmd(
    run_dir: Annotated[Path, typer.Argument(help="run directory of `curate generate`")],
    label: Annotated[int | None, typer.Option(help="gold label to review (default: the minority class)")] = None,
    all_discarded: Annotated[bool, typer.Option("--all-discarded", help="every discarded example")] = False,
    workspace: Annotated[str, typer.Option(help="Argilla workspace (created if missing)")] = DEFAULT_WORKSPACE,
    dataset: Annotated[str | None, typer.Option(help="Argilla dataset (default: RUN_DIR name + -review)")] = None,
    annotators: Annotated[
        int, typer.Option(min=1, help="submitted responses each record needs (set when the queue is created)")
    ] = 1,
    rationalized: Annotated[
        bool, typer.Option("--rationalized", help="the discarded examples `curate rationalize` recovered")
    ] = False,
) -> None:
    """Create or reuse a review queue and add the discarded examples it does not hold yet."""
    with exit_on_bad_input(), progress_bar(console, transient=True) as progress:
        if label is not None and all_discarded:
            raise ValueError("give --label or --all-discarded, not both")
        result = push(run_dir, label, all_discarded, workspace, dataset, annotators, progress, rationalized)
    which = "all classes" if result.label is None else f"label {result.label}"
    kind = "rationalized" if result.rationalized else "discarded"
    console.print(
        f"{result.discarded} {kind} examples ({which}); {result.added} added to"
        f" {result.workspace}/{result.dataset}, {result.discarded - result.added} already there"
    )


@review_app.command("pull")
def review_pull_cmd(
    run_dir: Annotated[Path, typer.Argument(help="run directory of `curate generate`")],
    workspace: Annotated[str | None, typer.Option(help="Argilla workspace (default: the one pushed to)")] = None,
    dataset: Annotated[str | None, typer.Option(help="Argilla dataset (default: the one pushed to)")] = None,
) -> None:
    """Write submitted responses and one decision per example (the majority; ties are listed, not merged) into
    RUN_DIR/reviews.parquet; a `keep` without an explanation stops the pull."""
    with exit_on_bad_input(), progress_bar(console, transient=True) as progress:
        summary = pull(run_dir, workspace, dataset, progress)
    console.print(
        f"{summary.responses} submitted responses from {len(summary.agreement.reviewers)} reviewers;"
        f" {sum(summary.decided.values())} decisions {summary.decided} -> {run_dir / REVIEWS}"
    )
    console.print(describe(summary.agreement))
    if summary.ties:
        console.print(f"{len(summary.ties)} ties left out (settle them in Argilla): {', '.join(summary.ties)}")


Registry = Annotated[Path, typer.Option("--registry", envvar="CURATE_REGISTRY", help="folder holding NAME/X.Y.Z/")]
versions_app = typer.Typer(no_args_is_help=True, help="Published dataset versions: list, diff, push, pull.")


def publish_cmd(
    run_dir: Annotated[Path, typer.Argument(help="run directory of `curate generate`")],
    name: Annotated[str, typer.Option("--name", help="dataset name")],
    version: Annotated[str, typer.Option("--version", help="new version X.Y.Z (never overwritten)")],
    registry: Registry = Path("registry"),
    reviews: Annotated[bool, typer.Option("--reviews", help="merge RUN_DIR/reviews.parquet (`review pull`)")] = False,
    test: Annotated[
        Path | None, typer.Option("--test", help="test split file, published with gold labels only")
    ] = None,
    allow_pending: Annotated[
        bool, typer.Option(help="publish an unfinished run, leaving pending examples out")
    ] = False,
    allow_overlap: Annotated[
        bool,
        typer.Option(help="publish a test split that shares examples with train/validation (recorded in the card)"),
    ] = False,
    share_margin: ShareMargin = DEFAULT_SHARE_MARGIN,
    cards_dir: Annotated[Path, typer.Option("--cards-dir", help="where the card copy goes")] = Path("data_cards"),
    license: Annotated[
        str, typer.Option("--license", help="Hub licence id for the card (mit, cc-by-4.0, ...; other: name it)")
    ] = "unknown",
    license_name: Annotated[
        str | None, typer.Option("--license-name", help="with --license other: its id, e.g. my-license-1.0")
    ] = None,
    license_link: Annotated[
        str | None, typer.Option("--license-link", help="with --license other: URL of the licence text")
    ] = None,
    push_to_hub: Annotated[
        str | None, typer.Option("--push-to-hub", help="then upload to this Hub dataset repo")
    ] = None,
    include: Annotated[
        list[IncludedRows] | None,
        typer.Option(
            "--include",
            help="also publish these rows: rationalized (`curate rationalize`, the teacher given the gold label)",
        ),
    ] = None,
) -> None:
    """Write train/validation (explanations, targets, provenance) and test (gold labels) as an immutable version."""
    from datasets import disable_progress_bars

    disable_progress_bars()
    with exit_on_bad_input(), progress_bar(console, transient=True) as progress:
        if push_to_hub:
            check_online()
        request = PublishRequest(
            run_dir=run_dir,
            name=name,
            version=version,
            registry=registry,
            reviews=reviews,
            allow_pending=allow_pending,
            test=test,
            allow_overlap=allow_overlap,
            share_margin=share_margin,
            cards_dir=cards_dir,
            license=CardLicense(license=license, license_name=license_name, license_link=license_link),
            include=include or [],
        )
        published = publish(request, progress)
    for line in published.removed:
        console.print(line, highlight=False)
    for note in published.notes:
        console.print(f"[yellow]warning:[/yellow] {note}", highlight=False)
    console.print(f"published {published.target} (card: {card_path(request)})")
    if push_to_hub:
        with exit_on_bad_input():
            console.print(f"pushed to {push_version(published.target, push_to_hub)}")


@versions_app.command("list")
def versions_list_cmd(
    name: Annotated[str, typer.Argument(help="dataset name")], registry: Registry = Path("registry")
) -> None:
    """Every published version of NAME with its parent, splits and review rounds."""
    with exit_on_bad_input():
        for line in remove_unfinished(registry / check_name(name)):
            console.print(line, highlight=False)
        manifests = list_versions(registry, name)
        if not manifests:
            raise ValueError(f"no published versions of {name!r} under {registry}")
    table = Table(title=f"{name} in {registry}", title_justify="left")
    for column in ("version", "parent", "created", "splits (count / positive)", "reviews", "teacher"):
        table.add_column(column)
    for m in manifests:
        splits = ", ".join(f"{s} {i.count}/{i.positives}" for s, i in m.splits.items())
        table.add_row(
            m.version, m.parent_version or "–", m.created_at[:16], splits, str(m.review_rounds), m.teacher_model
        )
    console.print(table)


@versions_app.command("diff")
def versions_diff_cmd(
    name: Annotated[str, typer.Argument(help="dataset name")],
    a: Annotated[str, typer.Argument(help="old version")],
    b: Annotated[str, typer.Argument(help="new version")],
    registry: Registry = Path("registry"),
    show: Annotated[int, typer.Option(help="ids listed per change kind")] = 10,
) -> None:
    """Counts and examples added, removed or changed per split between versions A and B."""
    with exit_on_bad_input():
        version_key(a), version_key(b)
        diffs = diff_versions(registry, name, a, b)
    table = Table(title=f"{name} {a} → {b}", title_justify="left")
    for column in ("split", a, b, "added", "removed", "changed"):
        table.add_column(column, justify="left" if column == "split" else "right")
    for split, d in diffs.items():
        table.add_row(
            split, str(d.count_a), str(d.count_b), str(len(d.added)), str(len(d.removed)), str(len(d.changed))
        )
    console.print(table)
    for split, d in diffs.items():
        for kind in ("added", "removed", "changed"):
            ids = getattr(d, kind)
            if ids:
                more = f" … (+{len(ids) - show})" if len(ids) > show else ""
                console.print(f"{split} {kind}: {', '.join(ids[:show])}{more}")


@versions_app.command("push")
def versions_push_cmd(
    name: Annotated[str, typer.Argument(help="dataset name")],
    version: Annotated[str, typer.Argument(help="version X.Y.Z")],
    repo: Annotated[str, typer.Argument(help="Hub dataset repo, e.g. my-org/clinifact-explanations")],
    registry: Registry = Path("registry"),
) -> None:
    """Upload a published version to the Hub and tag it X.Y.Z (what `publish --push-to-hub` does after writing)."""
    with exit_on_bad_input():
        version_key(version)
        console.print(f"pushed to {push_version(registry / check_name(name) / version, repo)}")


@versions_app.command("pull")
def versions_pull_cmd(
    source: Annotated[str, typer.Argument(help="Hub dataset repo ORG/NAME[@REVISION], or a folder in the Hub layout")],
    registry: Registry = Path("registry"),
) -> None:
    """Copy a version in the Hub's layout (Parquet, card, manifest) into REGISTRY/NAME/X.Y.Z once every split's hash
    matches its manifest; a mismatch writes nothing."""
    with exit_on_bad_input():
        pulled = pull_version(source, registry)
    for line in pulled.removed:
        console.print(line, highlight=False)
    console.print(f"{'pulled' if pulled.written else 'already there, same hashes:'} {source} -> {pulled.target}")


app.command("generate")(generate_cmd)
app.command("decide")(decide_cmd)
app.command("rationalize")(rationalize_cmd)
app.command("stats")(stats_cmd)
app.add_typer(review_app, name="review")
app.command("publish")(publish_cmd)
app.add_typer(versions_app, name="versions")
