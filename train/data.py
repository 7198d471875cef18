"""Token ids of prompts and targets: the chat template, the generation prefix, document truncation, EOG.

`max_input_tokens` counts tokens of the rendered document (as in curate and the baselines), not of the prompt.
"""

from dataclasses import dataclass

from datasets import Dataset

from schemas.task import TaskSpec
from schemas.truncation import TokenizerCounter, fit_fields

PROBE = "\u2402probe\u2402"


@dataclass(frozen=True)
class PromptIds:
    """Prompt token ids; the last id is the `h_n` position; `truncated` if the document field was cut."""

    ids: list[int]
    truncated: bool


@dataclass(frozen=True)
class Encoded:
    """One training example as ids: prompt then target (explanation, label line, EOG)."""

    input_ids: list[int]
    prompt_len: int
    label: int
    truncated: bool

    @property
    def target_len(self) -> int:
        """Number of target tokens (the LM loss positions)."""
        return len(self.input_ids) - self.prompt_len


def prompt_ids(tokenizer, task: TaskSpec, document: str) -> list[int]:
    """Chat-template ids of system + document + question with the assistant header, then the generation prefix."""
    ids = list(tokenizer.apply_chat_template(task.student_messages(document), add_generation_prompt=True)["input_ids"])
    return ids + tokenizer(task.generation_prefix, add_special_tokens=False)["input_ids"]


def student_document(tokenizer, task: TaskSpec, fields: dict[str, str], max_input_tokens: int) -> tuple[str, bool]:
    """The document within `max_input_tokens` document tokens (schemas' one truncation); ValueError when the
    fields other than the truncate field alone exceed it."""
    counter = TokenizerCounter(tokenizer)
    document, truncated = fit_fields(fields, task, counter.count, counter.truncate, max_input_tokens)
    if truncated and (length := counter.count(document)) > max_input_tokens:
        raise ValueError(
            f"task {task.name!r}: the document is {length} tokens even with an empty {task.truncate_field!r};"
            f" raise max_input_tokens above {max_input_tokens}"
        )
    return document, truncated


def encode_prompt(tokenizer, task: TaskSpec, fields: dict[str, str], max_input_tokens: int) -> PromptIds:
    """Prompt ids whose document is cut to `max_input_tokens` tokens in the task's truncate field only."""
    document, truncated = student_document(tokenizer, task, fields, max_input_tokens)
    return PromptIds(prompt_ids(tokenizer, task, document), truncated)


def eog_token_id(tokenizer) -> int:
    """The token the chat template closes a turn with (`<|eot_id|>`, `<|im_end|>`), else the eos token."""
    messages = [{"role": "system", "content": PROBE}, {"role": "user", "content": PROBE}]
    text = tokenizer.apply_chat_template(messages, tokenize=False)
    after = text[text.rindex(PROBE) + len(PROBE) :]
    ids = tokenizer(after, add_special_tokens=False)["input_ids"]
    if ids and ids[0] in tokenizer.all_special_ids + list(tokenizer.added_tokens_decoder):
        return ids[0]
    if tokenizer.eos_token_id is None:
        raise ValueError(
            "cannot find the end-of-turn token: the chat template ends turns with no special token and"
            " the tokenizer has no eos token"
        )
    return tokenizer.eos_token_id


def target_ids(tokenizer, task: TaskSpec, explanation: str, label: int, eog_id: int) -> list[int]:
    """Ids of `task.render_target(explanation, label)` followed by the end-of-turn token."""
    return tokenizer(task.render_target(explanation, label), add_special_tokens=False)["input_ids"] + [eog_id]


def encode_split(
    tokenizer, task: TaskSpec, split: Dataset, max_input_tokens: int, eog_id: int, name: str
) -> list[Encoded]:
    """Encode every row of a published split; a row without an explanation gets an empty target."""
    missing = [c for c in ["id", "label", "explanation", *task.input_fields] if c not in split.column_names]
    if missing:
        raise ValueError(
            f"split {name!r} lacks the column(s) {missing}: train needs id, label, explanation and the task's input"
            f" fields {task.input_fields}; publish the dataset with `curate publish`"
        )
    encoded = []
    for row in split:
        if row["label"] not in (0, 1):
            raise ValueError(f"split {name!r}, row {row['id']!r}: label {row['label']!r} is not 0 or 1")
        prompt = encode_prompt(tokenizer, task, {f: row[f] for f in task.input_fields}, max_input_tokens)
        explanation = row["explanation"]
        if name == "train" and not explanation:
            raise ValueError(f"split 'train', row {row['id']!r}: empty explanation; every training row needs one")
        target = target_ids(tokenizer, task, explanation, row["label"], eog_id) if explanation else []
        encoded.append(Encoded(prompt.ids + target, len(prompt.ids), row["label"], prompt.truncated))
    return encoded
