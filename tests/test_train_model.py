"""The dual-head model on a tiny random Llama: h_n position, packing, objectives, save -> load."""

import pytest
import torch
from transformers import AutoTokenizer

from tests.train_fixtures import TOY_TASK
from train import checkpoint as ckpt
from train.collate import pack
from train.config import TrainConfig
from train.data import Encoded, encode_prompt, eog_token_id, target_ids
from train.model import build_model, objective_loss

ROWS = [
    (
        {"claim": "the drug improves survival", "article_abstract": "the trial showed a significant improvement."},
        1,
        "The trial reports a significant improvement in survival.",
    ),
    (
        {"claim": "the drug improves survival", "article_abstract": "the results were not significant."},
        0,
        "Not significant.",
    ),
    (
        {"claim": "x", "article_abstract": "the patient was discharged home in stable condition. " * 3},
        0,
        "The abstract is only background about a discharge.",
    ),
]


@pytest.fixture(scope="module")
def tok(tiny_model_dir):
    return AutoTokenizer.from_pretrained(tiny_model_dir)


def encode(tok, fields, label, explanation) -> Encoded:
    prompt = encode_prompt(tok, TOY_TASK, fields, 200).ids
    return Encoded(prompt + target_ids(tok, TOY_TASK, explanation, label, eog_token_id(tok)), len(prompt), label, False)


def make_model(tiny_model_dir, trained: bool = True, **overrides):
    """A dual-head model; `trained` gives LoRA B and the head random non-zero weights, as after training."""
    torch.manual_seed(0)
    cfg = TrainConfig(head_hidden=32, **overrides)
    model = build_model(ckpt.load_base(str(tiny_model_dir), "cpu"), cfg, positive_label=1)
    if trained:
        with torch.no_grad():
            for name, param in model.named_parameters():
                if "lora_B" in name or name.startswith("head."):
                    param.normal_(0, 0.2)
    return model.eval()


def test_h_n_is_the_last_prompt_token(tiny_model_dir, tok):
    model = make_model(tiny_model_dir)
    fields, label, explanation = ROWS[0]
    a, b = encode(tok, fields, label, explanation), encode(tok, fields, label, "A different explanation entirely.")
    with torch.no_grad():
        logits_a, logits_b = model(pack([a])).head_logits, model(pack([b])).head_logits
        h = model.decoder_hidden(torch.tensor([a.input_ids[: a.prompt_len]]))
        from_prompt = model.head_logits(h[:, -1])
        changed = Encoded(
            a.input_ids[: a.prompt_len - 1] + [tok.eos_token_id] + a.input_ids[a.prompt_len :],
            a.prompt_len,
            label,
            False,
        )
        logits_changed = model(pack([changed])).head_logits
    torch.testing.assert_close(logits_a, logits_b, rtol=0, atol=1e-6)
    torch.testing.assert_close(logits_a, from_prompt, rtol=0, atol=1e-6)
    assert (logits_a - logits_changed).abs().max() > 1e-3


def test_packed_batch_gives_the_same_per_example_losses(tiny_model_dir, tok):
    model = make_model(tiny_model_dir)
    examples = [encode(tok, *row) for row in ROWS]
    with torch.no_grad():
        packed = model(pack(examples))
        single = [model(pack([ex])) for ex in examples]
    for field in ("lm_sum", "lm_count", "cls_loss", "head_logits"):
        alone = torch.cat([getattr(s, field) for s in single])
        torch.testing.assert_close(getattr(packed, field), alone, rtol=1e-5, atol=1e-5)
    assert packed.lm_count.tolist() == [ex.target_len for ex in examples]


def test_target_only_lm_loss_equals_the_full_labels_loss(tiny_model_dir, tok):
    model = make_model(tiny_model_dir)
    ex = encode(tok, *ROWS[0])
    labels = torch.tensor([[-100] * ex.prompt_len + ex.input_ids[ex.prompt_len :]])
    with torch.no_grad():
        reference = model.lm(input_ids=torch.tensor([ex.input_ids]), labels=labels, use_cache=False).loss
        parts = model(pack([ex]))
    torch.testing.assert_close(parts.lm_sum / parts.lm_count, reference.reshape(1), rtol=1e-5, atol=1e-5)


def test_objectives_change_only_the_loss_terms(tiny_model_dir, tok):
    examples = [encode(tok, *row) for row in ROWS]
    n_tokens, n = float(sum(ex.target_len for ex in examples)), float(len(examples))
    joint_model = make_model(tiny_model_dir)
    parts = joint_model(pack(examples), "joint")
    lm, cls = parts.lm_sum.sum() / n_tokens, parts.cls_loss.mean()
    torch.testing.assert_close(objective_loss(parts, "joint", n_tokens, n), lm + cls)

    cls_model = make_model(tiny_model_dir, objective="cls-only")
    cls_parts = cls_model(pack(examples), "cls-only")
    assert cls_parts.lm_count.sum() == 0
    torch.testing.assert_close(cls_parts.cls_loss, parts.cls_loss)
    cls_loss = objective_loss(cls_parts, "cls-only", n_tokens, n)
    torch.testing.assert_close(cls_loss, cls)
    cls_loss.backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in cls_model.head.parameters())

    gen_model = make_model(tiny_model_dir, objective="gen-only")
    gen_parts = gen_model(pack(examples), "gen-only")
    gen_loss = objective_loss(gen_parts, "gen-only", n_tokens, n)
    torch.testing.assert_close(gen_loss, lm)
    gen_loss.backward()
    assert not any(p.requires_grad for p in gen_model.head.parameters())
    lora_grads = [p.grad for name, p in gen_model.named_parameters() if "lora_B" in name]
    assert lora_grads and all(g is not None and g.abs().sum() > 0 for g in lora_grads)


def test_save_then_load_gives_identical_logits_and_probabilities(tiny_model_dir, tok, tmp_path):
    model = make_model(tiny_model_dir)
    config = ckpt.DualHeadConfig(
        base_model=str(tiny_model_dir),
        hidden_size=64,
        head_hidden=32,
        head_dropout=0.1,
        task_spec=TOY_TASK.model_dump(mode="json"),
        max_input_tokens=200,
        eog_token_id=eog_token_id(tok),
        objective="joint",
        dataset_dir="d",
        dataset_version="toy@1.0.0",
        epoch=1,
    )
    ckpt.save_weights(tmp_path, model.lm, model.state_dict(), config)
    loaded = ckpt.load_checkpoint(tmp_path)
    assert loaded.config == config and loaded.task == TOY_TASK
    assert loaded.tokenizer.convert_ids_to_tokens(loaded.config.eog_token_id) == "<|eot_id|>"
    ids = torch.tensor([encode(tok, *ROWS[0]).input_ids])
    with torch.no_grad():
        h_saved, h_loaded = model.decoder_hidden(ids), loaded.model.decoder_hidden(ids)
        logits_saved = model.lm(input_ids=ids, use_cache=False).logits
        logits_loaded = loaded.model.lm(input_ids=ids, use_cache=False).logits
        probs_saved, probs_loaded = model.head_probs(h_saved[:, -1]), loaded.model.head_probs(h_loaded[:, -1])
    assert torch.equal(logits_saved, logits_loaded)
    assert torch.equal(probs_saved, probs_loaded)
    assert not torch.equal(logits_saved, make_model(tiny_model_dir, trained=False).lm(input_ids=ids).logits)


def test_gradient_checkpointing_gives_the_same_loss_and_gradients(tiny_model_dir, tok):
    examples = [encode(tok, *row) for row in ROWS]
    results = []
    for checkpointing in (False, True):
        model = make_model(tiny_model_dir, lora_dropout=0.0, head_dropout=0.0, gradient_checkpointing=checkpointing)
        assert model.lm.get_base_model().is_gradient_checkpointing == checkpointing
        loss = objective_loss(model.train()(pack(examples)), "joint", 10.0, 3.0)
        loss.backward()
        results.append((loss.detach(), [p.grad.clone() for p in model.parameters() if p.requires_grad]))
    (loss_a, grads_a), (loss_b, grads_b) = results
    torch.testing.assert_close(loss_a, loss_b)
    for a, b in zip(grads_a, grads_b, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)
