"""The Argilla dataset layout of a review queue: fields, questions, metadata and the reviewer's guidelines."""

from schemas.task import TaskSpec

OWN_FIELDS = ["gold_label", "attempts"]
QUESTION_TYPES = {"decision": "label_selection", "explanation": "text"}

DECISIONS = {
    "keep": "Keep, with my explanation",
    "drop_noise": "Drop as noise",
    "wrong_gold_label": "Gold label looks wrong",
}
GUIDELINES = """\
Each record is an example the teacher model failed on K times in a row, so it was left out of the dataset.
Read the **document** and the **gold label**, then the teacher's **attempts** (each with its predicted label and
why it was rejected). Choose one decision:

- **Keep, with my explanation**: the gold label is right and the document supports it. Write (or edit the
  pre-filled near-miss attempt into) a short, faithful explanation that leads to the gold label. Write the
  reasoning only: no "Classification:" line, the label is added for you. The example enters the next dataset
  version with provenance `human`.
- **Drop as noise**: the document does not allow a confident decision (ambiguous, off-topic, cut off).
  The example stays out.
- **Gold label looks wrong**: the document clearly supports the other label. The example stays out and is
  listed in the dataset card for the data owner to fix at the source.

The decision and the explanation come pre-filled with a suggestion: the decision from the labels the attempts
named, the explanation from the most complete attempt. Check and edit both. `keep` needs an explanation: a
`keep` submitted without one stops `curate review pull` until it is written.

Submit each record; drafts are not pulled. When several reviewers answer a record, the majority decision is
used; a tie is left out and listed at pull.
"""


def review_settings(task: TaskSpec, annotators: int):
    """`rg.Settings` for a review queue of `task` (each input field apart) needing `annotators` submitted responses
    per record; needs a connected default client (`server.connect`)."""
    import argilla as rg

    labels = ", ".join(f"{value} = {name}" for value, name in sorted(task.verbalizers.items()))
    titles = {name: name.replace("_", " ").capitalize() for name in task.input_fields}
    titles.update(gold_label=f"Gold label ({labels})", attempts="Teacher attempts")
    return rg.Settings(
        guidelines=GUIDELINES,
        fields=[
            rg.TextField(name=name, title=titles[name], use_markdown=name == "attempts") for name in field_names(task)
        ],
        questions=[
            rg.LabelQuestion(name="decision", title="Decision", labels=DECISIONS),
            rg.TextQuestion(
                name="explanation", title="Explanation supporting the gold label (required to keep)", required=False
            ),
        ],
        metadata=[
            rg.TermsMetadataProperty(name="example_id", title="Example id"),
            rg.TermsMetadataProperty(name="split", title="Split"),
            rg.TermsMetadataProperty(name="label", title="Gold label"),
            rg.IntegerMetadataProperty(name="n_attempts", title="Number of attempts"),
            rg.TermsMetadataProperty(name="reasons", title="Failure reasons"),
            rg.TermsMetadataProperty(name="truncated", title="Document truncated", options=["yes", "no"]),
        ],
        distribution=rg.TaskDistribution(min_submitted=annotators),
    )


def field_names(task: TaskSpec) -> list[str]:
    """The record fields of a queue: the task's input fields, then the gold label and the attempts."""
    clash = set(task.input_fields) & set(OWN_FIELDS)
    if clash:
        raise ValueError(f"task {task.name!r} has input fields named {sorted(clash)}, which a review queue uses itself")
    return [*task.input_fields, *OWN_FIELDS]


def check_questions(settings, where: str) -> None:
    """Refuse a dataset whose questions are not a review queue's (e.g. edited by hand): pull could not read it."""
    found = {question.name: question.type for question in settings.questions}
    decision = next((q for q in settings.questions if q.name == "decision"), None)
    labels = decision.labels if decision is not None and found["decision"] == QUESTION_TYPES["decision"] else None
    if found != QUESTION_TYPES or labels != list(DECISIONS):
        raise ValueError(
            f"Argilla dataset {where} is not a curate review queue: questions {found} with decision labels {labels},"
            f" expected {QUESTION_TYPES} with labels {list(DECISIONS)}; restore them in Argilla, or pass the"
            " queue curate created with --dataset"
        )


def check_fields(settings, task: TaskSpec, where: str) -> None:
    """Refuse to add records to a dataset whose fields differ from this task's queue (another task, older curate)."""
    found = [field.name for field in settings.fields]
    if sorted(found) != sorted(field_names(task)):
        raise ValueError(
            f"Argilla dataset {where} has fields {found}, not this run's {field_names(task)}: push to a new queue"
            " with --dataset NAME"
        )
