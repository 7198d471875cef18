"""Typer command `curate publish` and sub-app `curate versions` (list, diff, push)."""

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from curate.cli_errors import exit_on_bad_input
from curate.hub import check_online, push_version
from curate.publish import PublishRequest, card_path, publish
from curate.versions import check_name, diff_versions, list_versions, version_key

console = Console()
Registry = Annotated[Path, typer.Option("--registry", envvar="CURATE_REGISTRY", help="folder holding NAME/X.Y.Z/")]
versions_app = typer.Typer(no_args_is_help=True, help="Published dataset versions: list, diff, push.")


def publish_cmd(
    run_dir: Annotated[Path, typer.Argument(help="run directory of `curate generate`")],
    name: Annotated[str, typer.Option("--name", help="dataset name")],
    version: Annotated[str, typer.Option("--version", help="new version X.Y.Z (never overwritten)")],
    registry: Registry = Path("registry"),
    reviews: Annotated[bool, typer.Option("--reviews", help="merge RUN_DIR/reviews.parquet (`review pull`)")] = False,
    test: Annotated[Path | None, typer.Option("--test", help="test split file, published with gold labels only")] = None,
    allow_pending: Annotated[bool, typer.Option(help="publish an unfinished run, leaving pending examples out")] = False,
    cards_dir: Annotated[Path, typer.Option("--cards-dir", help="where the card copy goes")] = Path("data_cards"),
    license: Annotated[str, typer.Option("--license", help="license id for the card header")] = "other",
    push_to_hub: Annotated[str | None, typer.Option("--push-to-hub", help="then upload to this Hub dataset repo")] = None,
) -> None:
    """Write train/validation (explanations, targets, provenance) and test (gold labels) as an immutable version."""
    from datasets import disable_progress_bars

    disable_progress_bars()
    with exit_on_bad_input():
        if push_to_hub:
            check_online()
        request = PublishRequest(run_dir=run_dir, name=name, version=version, registry=registry, reviews=reviews,
                                 allow_pending=allow_pending, test=test, cards_dir=cards_dir, license=license)
        target = publish(request)
    console.print(f"published {target} (card: {card_path(request)})")
    if push_to_hub:
        with exit_on_bad_input():
            console.print(f"pushed to {push_version(target, push_to_hub)}")


@versions_app.command("list")
def list_cmd(name: Annotated[str, typer.Argument(help="dataset name")], registry: Registry = Path("registry")) -> None:
    """Every published version of NAME with its parent, splits and review rounds."""
    with exit_on_bad_input():
        manifests = list_versions(registry, name)
        if not manifests:
            raise ValueError(f"no published versions of {name!r} under {registry}")
    table = Table(title=f"{name} in {registry}", title_justify="left")
    for column in ("version", "parent", "created", "splits (count / positive)", "reviews", "teacher"):
        table.add_column(column)
    for m in manifests:
        splits = ", ".join(f"{s} {i.count}/{i.positives}" for s, i in m.splits.items())
        table.add_row(m.version, m.parent_version or "–", m.created_at[:16], splits, str(m.review_rounds), m.teacher_model)
    console.print(table)


@versions_app.command("diff")
def diff_cmd(
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
        table.add_row(split, str(d.count_a), str(d.count_b), str(len(d.added)), str(len(d.removed)), str(len(d.changed)))
    console.print(table)
    for split, d in diffs.items():
        for kind in ("added", "removed", "changed"):
            ids = getattr(d, kind)
            if ids:
                more = f" … (+{len(ids) - show})" if len(ids) > show else ""
                console.print(f"{split} {kind}: {', '.join(ids[:show])}{more}")


@versions_app.command("push")
def push_cmd(
    name: Annotated[str, typer.Argument(help="dataset name")],
    version: Annotated[str, typer.Argument(help="version X.Y.Z")],
    repo: Annotated[str, typer.Argument(help="Hub dataset repo, e.g. my-org/clinifact-explanations")],
    registry: Registry = Path("registry"),
) -> None:
    """Upload a published version to the Hub and tag it X.Y.Z (what `publish --push-to-hub` does after writing)."""
    with exit_on_bad_input():
        version_key(version)
        console.print(f"pushed to {push_version(registry / check_name(name) / version, repo)}")
