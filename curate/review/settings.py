"""The Argilla dataset layout of a review queue: fields, questions, metadata and the reviewer's guidelines."""

from schemas.task import TaskSpec

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

Submit each record; drafts are not pulled.
"""


def review_settings(task: TaskSpec):
    """`rg.Settings` for a review queue of `task`; needs a connected default client (`argilla_client.connect`)."""
    import argilla as rg

    labels = ", ".join(f"{value} = {name}" for value, name in sorted(task.verbalizers.items()))
    return rg.Settings(
        guidelines=GUIDELINES,
        fields=[
            rg.TextField(name="document", title="Document"),
            rg.TextField(name="gold_label", title=f"Gold label ({labels})"),
            rg.TextField(name="attempts", title="Teacher attempts", use_markdown=True),
        ],
        questions=[
            rg.LabelQuestion(name="decision", title="Decision", labels=DECISIONS),
            rg.TextQuestion(
                name="explanation", title="Explanation supporting the gold label (when keeping)", required=False
            ),
        ],
        metadata=[
            rg.TermsMetadataProperty(name="example_id", title="Example id"),
            rg.TermsMetadataProperty(name="split", title="Split"),
            rg.TermsMetadataProperty(name="label", title="Gold label"),
            rg.IntegerMetadataProperty(name="n_attempts", title="Number of attempts"),
            rg.TermsMetadataProperty(name="reasons", title="Failure reasons"),
        ],
        distribution=rg.TaskDistribution(min_submitted=1),
    )
