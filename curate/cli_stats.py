"""Typer command `curate stats`: the drop report of a run, or two runs side by side."""

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from curate.cli_errors import exit_on_bad_input
from curate.stats import compute_report
from curate.stats_report import comparison, rich_table, sections, write_report

console = Console()


def stats_cmd(
    run_dir: Annotated[Path | None, typer.Argument(help="run directory of `curate generate`")] = None,
    compare: Annotated[
        tuple[Path, Path] | None, typer.Option("--compare", help="RUN_A RUN_B: two runs side by side")
    ] = None,
) -> None:
    """Table 7, failure reasons, acceptance by trial, tokens and throughput; writes stats.md/.json/.png."""
    with exit_on_bad_input():
        if (run_dir is None) == (compare is None):
            raise ValueError("give either RUN_DIR or --compare RUN_A RUN_B")
        if compare:
            console.print(rich_table(comparison(*(compute_report(path) for path in compare))))
            return
        report = compute_report(run_dir)
        for section in sections(report):
            console.print(rich_table(section))
        written = write_report(report, run_dir)
        console.print("wrote " + ", ".join(str(path) for path in written))
