"""Typer commands `curate generate` and `curate decide`."""

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from curate.cli_errors import exit_on_bad_input
from curate.generate import run_generate
from curate.inputs import resolve_inputs
from curate.run_dir import RUN_JSON, read_run_info
from schemas.config import GenerateConfig, validated_config

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
    strategy: Annotated[str | None, typer.Option(help="rounds | parallel")] = None,
    structured_output: Annotated[str | None, typer.Option(help="none | json | regex")] = None,
    temperature: Annotated[float | None, typer.Option()] = None,
    top_p: Annotated[float | None, typer.Option()] = None,
    max_tokens: Annotated[int | None, typer.Option(help="max new tokens per trial")] = None,
    base_seed: Annotated[int | None, typer.Option("--seed", help="base of the per-trial seeds")] = None,
    batch_size: Annotated[int | None, typer.Option()] = None,
    concurrency: Annotated[int | None, typer.Option(help="requests in flight (openai)")] = None,
    limit: Annotated[int | None, typer.Option(help="only the first N examples")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="print counts and token budget, write nothing")] = False,
) -> None:
    """Ask the teacher for explanations, up to K trials per example, journaling every trial."""
    overrides = config_overrides(
        task=task, engine=engine, k=k, strategy=strategy, structured_output=structured_output,
        temperature=temperature, top_p=top_p, max_tokens=max_tokens, base_seed=base_seed, batch_size=batch_size,
        concurrency=concurrency,
    )
    with exit_on_bad_input():
        if config is None and (out / RUN_JSON).is_file():
            stored = read_run_info(out).config.model_dump(mode="json", exclude_none=True)
            nested = {**stored.get("sampling", {}), **overrides.pop("sampling", {})}
            overrides = {**stored, **overrides, "sampling": nested}
        settings = validated_config(GenerateConfig, config, overrides, "generate")
        resolved = resolve_inputs(inputs, split) if inputs else None
        code = run_generate(settings, resolved, out, limit, dry_run, console)
    raise typer.Exit(code)


def decide_cmd(
    run_dir: Annotated[Path, typer.Argument(help="run directory of `curate generate`")],
    min_explanation_chars: Annotated[int | None, typer.Option(help="new minimum explanation length")] = None,
) -> None:
    """Re-judge every journaled trial with the current rules and rewrite the accepted/rejected tables."""
    from curate.decide import redecide

    with exit_on_bad_input():
        changed, counts = redecide(run_dir, min_explanation_chars)
    console.print(
        f"{changed} trial statuses changed; {counts['accepted']} accepted, {counts['discarded']} discarded,"
        f" {counts['pending']} pending of {counts['examples']}"
    )
