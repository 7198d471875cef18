"""Prompt and target ids: chat template, generation prefix, truncation of the document field only, EOG."""

import pytest
from datasets import Dataset
from transformers import AutoTokenizer

from tests.train_fixtures import TOY_TASK
from train.collate import IGNORE, pack, plan_micro_batches
from train.data import Encoded, encode_prompt, encode_split, eog_token_id, prompt_ids, student_document

FIELDS = {
    "claim": "the drug improves survival",
    "article_abstract": "the trial showed a significant improvement. " * 30,
}


@pytest.fixture(scope="module")
def tok(tiny_model_dir):
    return AutoTokenizer.from_pretrained(tiny_model_dir)


def test_prompt_is_chat_template_then_generation_prefix(tok):
    prompt = encode_prompt(tok, TOY_TASK, {**FIELDS, "article_abstract": "short."}, 10_000)
    header = tok.apply_chat_template(
        TOY_TASK.student_messages(TOY_TASK.render_document({**FIELDS, "article_abstract": "short."})),
        add_generation_prompt=True,
    )["input_ids"]
    prefix = tok(TOY_TASK.generation_prefix, add_special_tokens=False)["input_ids"]
    assert prompt.ids == list(header) + prefix
    assert not prompt.truncated
    assert tok.decode(prompt.ids).endswith("<|start_header_id|>assistant<|end_header_id|>\n\nReasoning: ")


def test_max_input_tokens_counts_document_tokens_and_cuts_only_the_document_field(tok):
    full = encode_prompt(tok, TOY_TASK, FIELDS, 10_000)
    cut = encode_prompt(tok, TOY_TASK, FIELDS, 60)
    assert not full.truncated and cut.truncated
    document, truncated = student_document(tok, TOY_TASK, FIELDS, 60)
    assert truncated and 55 <= len(tok(document, add_special_tokens=False)["input_ids"]) <= 60
    assert document.startswith("Claim: the drug improves survival\nAbstract: the trial showed")
    assert FIELDS["article_abstract"].startswith(document.removeprefix("Claim: the drug improves survival\nAbstract: "))
    assert cut.ids == prompt_ids(tok, TOY_TASK, document)  # the system prompt and question are not counted
    assert len(cut.ids) > 60
    text = tok.decode(cut.ids)
    assert text.endswith("TRUE or FALSE?<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\nReasoning: ")


def test_truncation_fails_when_the_other_fields_alone_are_too_long(tok):
    with pytest.raises(ValueError, match="even with an empty 'article_abstract'; raise max_input_tokens above 5"):
        encode_prompt(tok, TOY_TASK, FIELDS, 5)


def test_eog_is_the_templates_turn_end_token(tok):
    assert tok.convert_ids_to_tokens(eog_token_id(tok)) == "<|eot_id|>"


def test_encode_split_appends_target_and_eog_and_checks_columns(tok):
    rows = [{"id": "a", "label": 1, "claim": "c", "article_abstract": "a.", "explanation": "Because."}]
    [ex] = encode_split(tok, TOY_TASK, Dataset.from_list(rows), 100, eog_token_id(tok), "train")
    target = tok(TOY_TASK.render_target("Because.", 1), add_special_tokens=False)["input_ids"] + [eog_token_id(tok)]
    assert ex.input_ids[ex.prompt_len :] == target
    assert ex.input_ids[: ex.prompt_len] == encode_prompt(tok, TOY_TASK, rows[0], 100).ids
    with pytest.raises(ValueError, match=r"lacks the column\(s\) \['explanation'\]"):
        encode_split(
            tok,
            TOY_TASK,
            Dataset.from_list([{k: v for k, v in rows[0].items() if k != "explanation"}]),
            100,
            1,
            "train",
        )
    with pytest.raises(ValueError, match="label 3 is not 0 or 1"):
        encode_split(tok, TOY_TASK, Dataset.from_list([{**rows[0], "label": 3}]), 100, 1, "train")


def test_pack_restarts_positions_and_marks_targets_and_h_n():
    a, b = Encoded([5, 6, 7, 8, 9], 3, 1, False), Encoded([1, 2, 3, 4], 2, 0, False)
    batch = pack([a, b])
    assert batch.input_ids.tolist() == [[5, 6, 7, 8, 9, 1, 2, 3, 4]]
    assert batch.position_ids.tolist() == [[0, 1, 2, 3, 4, 0, 1, 2, 3]]
    assert batch.targets.tolist() == [IGNORE, IGNORE, 8, 9, IGNORE, IGNORE, 3, 4, IGNORE]
    assert batch.h_index.tolist() == [2, 6]
    assert batch.labels.tolist() == [1, 0]


def test_plan_packs_longest_first_within_the_token_budget():
    lengths = [50, 10, 40, 70, 30]
    packs = plan_micro_batches(list(range(5)), lengths, 80)
    assert sorted(i for p in packs for i in p) == [0, 1, 2, 3, 4]
    assert all(sum(lengths[i] for i in p) <= 80 or len(p) == 1 for p in packs)
    assert packs[0][0] == 3 and len(packs) == 3
    assert plan_micro_batches([0], [500], 80) == [[0]]
