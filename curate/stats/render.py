"""Render a DropReport: titled tables for the terminal (rich) and markdown, a PNG chart, a side-by-side view."""

import io
from dataclasses import dataclass
from pathlib import Path

from rich.table import Table

from curate.generation.outcomes import FAILURES
from curate.stats.compute import CLASSES, ClassCounts, DropReport
from schemas.files import atomic_write_bytes

STATS_MD, STATS_JSON, STATS_PNG = "stats.md", "stats.json", "stats.png"


@dataclass
class Section:
    """A titled table of strings."""

    title: str
    header: list[str]
    rows: list[list[str]]


def share(part: int, whole: int) -> str:
    """`part / whole` as a percentage, or a dash."""
    return f"{part / whole:.1%}" if whole else "–"


def count_row(name: str, counts: ClassCounts) -> list[str]:
    """One Table-7 row: negative, positive, positive / total."""
    ratio = "–" if counts.positive_share is None else f"{counts.positive_share:.2f}"
    return [name, f"{counts.negative:,}", f"{counts.positive:,}", ratio]


def table7_sections(report: DropReport) -> list[Section]:
    """The paper's Table 7, one section per split."""
    neg, pos = report.verbalizers["negative"], report.verbalizers["positive"]
    header = ["", f"negative ({neg})", f"positive ({pos})", "positive / total"]
    sections = []
    for split, table in report.table7.items():
        rows = [
            count_row("Original dataset", table.original),
            count_row("Successfully generated", table.generated),
            count_row("Failed to generate", table.failed),
        ]
        if table.rationalized is not None:
            rows.append(count_row("Rationalized (gold label given)", table.rationalized))
        title = f"Table 7 — {split}" + (f" ({table.pending} pending)" if table.pending else "")
        sections.append(Section(title, header, rows))
    return sections


def balance_sections(report: DropReport) -> list[Section]:
    """The class-balance warnings of the generated examples as one section, or none when there are none."""
    if not report.class_warnings:
        return []
    title = f"Class balance warnings (generated examples; share margin {report.share_margin:.2f})"
    return [Section(title, ["warning"], [[text] for text in report.class_warnings])]


def sections(report: DropReport) -> list[Section]:
    """Every table of the report, in display order."""
    failures = Section(
        "Failed trials by reason (trials up to acceptance)",
        ["class", *FAILURES, "total"],
        [
            [name, *(f"{report.failures[name][r]:,}" for r in FAILURES), f"{sum(report.failures[name].values()):,}"]
            for name in CLASSES
        ],
    )
    cumulative = cumulative_section("Cumulative acceptance by trial", report.cumulative, report.class_totals)
    tokens, speed = report.tokens, report.throughput
    cost_rows = [
        ["trials journaled", f"{report.trials:,}"],
        ["prompt tokens", f"{tokens.prompt_total:,}"],
        ["completion tokens", f"{tokens.completion_total:,}"],
        ["completion tokens per accepted example", number(tokens.completion_per_accepted)],
        ["tokens in the accepted trial (mean)", number(tokens.accepted_trial_mean)],
    ]
    if speed:
        cost_rows += [
            ["wall time (s)", f"{speed.wall_s:,.1f}"],
            ["trials / s", f"{speed.trials_per_s:,.2f}"],
            ["completion tokens / s", f"{speed.completion_tokens_per_s:,.1f}"],
            ["accepted examples / hour", f"{speed.accepted_per_hour:,.0f}"],
        ]
    cost = Section("Tokens and throughput", ["measure", "value"], cost_rows)
    rationalized = rationalized_sections(report)
    return [*table7_sections(report), *balance_sections(report), failures, cumulative, *rationalized, cost]


def cumulative_section(title: str, curves: dict[str, list[int]], totals: dict[str, int]) -> Section:
    """Examples of each class accepted by trial 1, 2, ... (count and share of the class total)."""
    trials = len(curves[CLASSES[0]])
    return Section(
        title,
        ["trial", *(f"{name} (of {totals[name]:,})" for name in CLASSES)],
        [
            [str(k + 1), *(f"{curves[n][k]:,} ({share(curves[n][k], totals[n])})" for n in CLASSES)]
            for k in range(trials)
        ],
    )


def rationalized_sections(report: DropReport) -> list[Section]:
    """Rationalization's recoveries by trial and class, or none when the run was not rationalized."""
    found = report.rationalization
    if found is None:
        return []
    title = (
        f"Rationalization by trial (failed examples, gold label given as a hint; K' = {found.k},"
        f" {found.trials:,} trials, {found.completion_tokens:,} completion tokens)"
    )
    return [cumulative_section(title, found.cumulative, found.tried)]


def number(value: float | None) -> str:
    """A float with one decimal, or a dash."""
    return "–" if value is None else f"{value:,.1f}"


def markdown(report: DropReport) -> str:
    """The whole report as markdown (what `stats.md` holds)."""
    lines = [
        f"# Drop statistics: {report.run}",
        "",
        f"Task `{report.task}`, teacher `{report.teacher}`, K = {report.k}.",
    ]
    for section in sections(report):
        lines += ["", f"## {section.title}", "", markdown_table(section)]
    return "\n".join(lines) + "\n"


def markdown_table(section: Section) -> str:
    """A section as a GitHub markdown table."""
    rows = [section.header, ["---"] * len(section.header), *section.rows]
    return "\n".join("| " + " | ".join(cells) + " |" for cells in rows)


def rich_table(section: Section) -> Table:
    """A section as a rich table, numbers right-aligned."""
    table = Table(title=section.title, title_justify="left")
    for i, name in enumerate(section.header):
        table.add_column(name, justify="left" if i == 0 else "right", no_wrap=i == 0)
    for row in section.rows:
        table.add_row(*row)
    return table


def plot_png(report: DropReport) -> bytes:
    """Cumulative acceptance by trial and failure reasons by class, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    trials = list(range(1, report.k + 1))
    for name in CLASSES:
        total = report.class_totals[name] or 1
        label = f"{name} ({report.verbalizers[name]})"
        left.plot(trials, [100 * c / total for c in report.cumulative[name]], marker="o", label=label)
    left.set(title="Cumulative acceptance", xlabel="trial", ylabel="% of class accepted", ylim=(0, 100), xticks=trials)
    left.legend()
    bottom = [0] * len(CLASSES)
    for reason in FAILURES:
        values = [report.failures[name][reason] for name in CLASSES]
        right.bar(list(CLASSES), values, bottom=bottom, label=reason)
        bottom = [b + v for b, v in zip(bottom, values, strict=True)]
    right.set(title="Failed trials by reason", ylabel="trials", ylim=(0, max(max(bottom), 1) * 1.3))
    right.legend(ncols=3, loc="upper center", fontsize="small")
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    plt.close(fig)
    return buffer.getvalue()


def write_report(report: DropReport, run_dir: Path) -> list[Path]:
    """Write `stats.md`, `stats.json` and `stats.png` into the run directory."""
    files = {
        STATS_MD: markdown(report).encode(),
        STATS_JSON: report.model_dump_json(indent=2).encode(),
        STATS_PNG: plot_png(report),
    }
    for name, data in files.items():
        atomic_write_bytes(run_dir / name, data)
    return [run_dir / name for name in files]


def summary(report: DropReport) -> dict[str, str]:
    """Headline numbers of a run, keyed by what they measure (the rows of a comparison)."""
    rows = {"teacher": report.teacher, "K": str(report.k)}
    for split, table in report.table7.items():
        for kind in ("original", "generated", "failed"):
            counts: ClassCounts = getattr(table, kind)
            rows[f"{split}: {kind} (neg / pos)"] = f"{counts.negative:,} / {counts.positive:,}"
    for name in CLASSES:
        total = report.class_totals[name]
        rows[f"{name}: accepted at trial 1"] = share(report.cumulative[name][0], total)
        rows[f"{name}: accepted by trial K"] = share(report.cumulative[name][-1], total)
    rows["completion tokens per accepted"] = number(report.tokens.completion_per_accepted)
    rows["accepted / hour"] = number(report.throughput.accepted_per_hour if report.throughput else None)
    return rows


def comparison(a: DropReport, b: DropReport) -> Section:
    """Two runs side by side (e.g. two teachers or two K)."""
    left, right = summary(a), summary(b)
    keys = list(dict.fromkeys([*left, *right]))
    return Section("Run comparison", ["", a.run, b.run], [[k, left.get(k, "–"), right.get(k, "–")] for k in keys])
