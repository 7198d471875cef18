"""Fit documents into the task's token budget by cutting only the task's truncate field."""

from collections.abc import Callable

from schemas.example import Example
from schemas.task import TaskSpec


def fit_document(
    example: Example, task: TaskSpec, count: Callable[[str], int], cut: Callable[[str, int], str]
) -> tuple[str, bool]:
    """The rendered document, and whether its truncate field had to be shortened to fit max_input_tokens."""
    document = task.render_document(example.fields)
    total = count(document)
    if total <= task.max_input_tokens:
        return document, False
    field = example.fields[task.truncate_field]
    budget = max(task.max_input_tokens - (total - count(field)), 0)
    fields = {**example.fields, task.truncate_field: cut(field, budget)}
    return task.render_document(fields), True
