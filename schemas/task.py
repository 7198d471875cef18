"""Task specs: how fields render into a document, the prompts, verbalizers and default input mapping."""

import hashlib
import json
from importlib import resources
from pathlib import Path

import yaml
from pydantic import Field, ValidationError, model_validator

from schemas.base import Strict

EOG_MARKER = "EOG"
DEFAULT_RATIONALIZE_TEMPLATE = (
    "{teacher_prompt}\n\nThe correct answer is {label}. Explain why the document supports {label}, citing what in it"
    " leads there, and end with the line `Classification: {label}`."
)


class InputMapping(Strict):
    """Which source columns hold the id, the text fields and the label, and how raw labels map to 0/1."""

    id_column: str | None = None
    field_columns: dict[str, str]
    label_column: str = "label"
    label_map: dict[str, int] | None = None


class TaskSpec(Strict):
    """A binary classification task with the paper's prompt parts (Appendix A.4)."""

    name: str
    description: str = ""
    input_fields: list[str] = Field(min_length=1)
    document_template: str
    truncate_field: str
    max_input_tokens: int = Field(gt=0)
    verbalizers: dict[int, str]
    label_aliases: dict[int, list[str]] = {}
    positive_label: int = 1
    system_prompt: str
    question: str
    user_template: str = "{document}\n\n{question}"
    generation_prefix: str = "Reasoning: "
    response_template: str = "{explanation}\n\nClassification: {label}\n\n" + EOG_MARKER
    teacher_system_prompt: str
    teacher_user_template: str
    rationalize_user_template: str = Field(
        DEFAULT_RATIONALIZE_TEMPLATE,
        description="the teacher's user message under `curate rationalize`: {teacher_prompt} is the rendered teacher"
        " user message, {label} the gold label's verbalizer (the hint); {document}, {question}, {labels} as there",
    )
    input_mapping: InputMapping | None = None

    @model_validator(mode="after")
    def _consistent(self) -> "TaskSpec":
        if sorted(self.verbalizers) != [0, 1]:
            raise ValueError(f"verbalizers must have exactly the keys 0 and 1, got {sorted(self.verbalizers)}")
        if self.truncate_field not in self.input_fields:
            raise ValueError(f"truncate_field {self.truncate_field!r} is not one of input_fields {self.input_fields}")
        for name in self.input_fields:
            if "{" + name + "}" not in self.document_template:
                raise ValueError(f"document_template does not use the input field {{{name}}}")
        if "{label}" not in self.rationalize_user_template:
            raise ValueError("rationalize_user_template must use {label}: the gold label is the teacher's hint")
        return self

    def render_document(self, fields: dict[str, str]) -> str:
        """Fill the document template with an example's fields."""
        return self.document_template.format(**{name: fields[name] for name in self.input_fields})

    def student_messages(self, document: str) -> list[dict[str, str]]:
        """Chat messages for the fine-tuned model (the generation prefix follows the template's assistant turn)."""
        user = self.user_template.format(document=document, question=self.question)
        return [{"role": "system", "content": self.system_prompt}, {"role": "user", "content": user}]

    def label_choices(self) -> str:
        """The verbalizers as the teacher prompt offers them, e.g. "TRUE or FALSE"."""
        return " or ".join(self.verbalizers[label] for label in (1, 0))

    def teacher_messages(self, document: str) -> list[dict[str, str]]:
        """Chat messages that ask the teacher for an explanation ending in a `Classification:` line."""
        user = self.teacher_user_template.format(document=document, question=self.question, labels=self.label_choices())
        return [{"role": "system", "content": self.teacher_system_prompt}, {"role": "user", "content": user}]

    def rationalize_messages(self, document: str, label: int) -> list[dict[str, str]]:
        """Teacher messages that give the gold `label` as a hint and ask why it holds (rationalization)."""
        system, user = self.teacher_messages(document)
        hinted = self.rationalize_user_template.format(
            teacher_prompt=user["content"],
            document=document,
            question=self.question,
            labels=self.label_choices(),
            label=self.verbalizers[label],
        )
        return [system, {"role": "user", "content": hinted}]

    def render_target(self, explanation: str, label: int) -> str:
        """The training target text: explanation and verbalized label; the trailing EOG marker becomes a token."""
        text = self.response_template.format(explanation=explanation.strip(), label=self.verbalizers[label])
        return text.removesuffix(EOG_MARKER).rstrip()

    def spec_hash(self) -> str:
        """Stable content hash of the spec (prompts included); the default rationalization template is left out, so
        specs written before the field existed keep their hash."""
        default = self.rationalize_user_template == DEFAULT_RATIONALIZE_TEMPLATE
        spec = self.model_dump(mode="json", exclude={"rationalize_user_template"} if default else None)
        blob = json.dumps(spec, sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:16]


BUILTIN_TASKS = ("clinifact", "lcd-30d", "lcd-90d")
TASK_SUFFIXES = {".yaml", ".yml"}


def looks_like_path(name: str) -> bool:
    """True when a task name is meant as a file: a .yaml/.yml suffix, a directory part, or an existing file."""
    path = Path(name)
    return path.suffix in TASK_SUFFIXES or path.name != name or path.is_file()


def task_text(name_or_path: str) -> tuple[str, str]:
    """(YAML text, where it came from) of a built-in task or a task file; ValueError says which and the fix."""
    if name_or_path in BUILTIN_TASKS:
        text = resources.files("schemas").joinpath("tasks", f"{name_or_path}.yaml").read_text()
        return text, f"built-in task {name_or_path!r}"
    path = Path(name_or_path)
    if not looks_like_path(name_or_path):
        raise ValueError(
            f"unknown task {name_or_path!r}: use a built-in task ({', '.join(BUILTIN_TASKS)}) or a path to a task"
            " YAML file"
        )
    if not path.is_file():
        where = "" if path.is_absolute() else f" (relative to {Path.cwd()})"
        raise ValueError(
            f"task file {name_or_path} not found{where}: fix the path,"
            f" or use a built-in task ({', '.join(BUILTIN_TASKS)})"
        )
    if path.suffix not in TASK_SUFFIXES:
        raise ValueError(f"task file {name_or_path} is not YAML: give a .yaml or .yml file")
    return path.read_text(), str(path)


def load_task(name_or_path: str) -> TaskSpec:
    """Load a built-in spec by name or a spec from a YAML file; raise ValueError naming the fix."""
    text, source = task_text(name_or_path)
    try:
        return TaskSpec.model_validate(yaml.safe_load(text))
    except (ValidationError, yaml.YAMLError) as err:
        raise ValueError(f"{source} is not a valid task spec: {err}") from err
