"""A tiny random Llama with a BPE tokenizer trained on the spot: fast, offline, real transformers code."""

from pathlib import Path

SPECIALS = ["<|begin_of_text|>", "<|eot_id|>", "<|start_header_id|>", "<|end_header_id|>", "<|finetune_right_pad_id|>"]
CHAT_TEMPLATE = (
    "{{ bos_token }}{% for m in messages %}<|start_header_id|>{{ m['role'] }}<|end_header_id|>\n\n"
    "{{ m['content'] }}<|eot_id|>{% endfor %}"
    "{% if add_generation_prompt %}<|start_header_id|>assistant<|end_header_id|>\n\n{% endif %}"
)
CORPUS = [
    "Claim: the drug improves survival. Abstract: the trial showed a significant improvement in survival.",
    "Reasoning: the abstract reports positive results.\n\nClassification: TRUE",
    "Reasoning: the results were not significant.\n\nClassification: FALSE",
    "The patient was discharged home in stable condition with follow up in two weeks.",
    "Explain your reasoning, then answer TRUE or FALSE. 0:alive 1:death",
] * 20


def build_tiny_model(out: Path, vocab_size: int = 512, seed: int = 0) -> Path:
    """Write a 2-layer random Llama and its tokenizer (with a chat template) to `out`."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIALS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    bpe.train_from_iterator(CORPUS, trainer)
    tok = PreTrainedTokenizerFast(
        tokenizer_object=bpe,
        bos_token="<|begin_of_text|>",
        eos_token="<|eot_id|>",
        pad_token="<|finetune_right_pad_id|>",
        chat_template=CHAT_TEMPLATE,
    )
    cfg = LlamaConfig(
        vocab_size=len(tok),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=2048,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
        tie_word_embeddings=False,
    )
    torch.manual_seed(seed)
    model = LlamaForCausalLM(cfg)
    model.save_pretrained(out)
    tok.save_pretrained(out)
    return out


TEACHER_ANSWERS = (
    "The abstract reports a significant improvement in the primary outcome.\n\nClassification: TRUE",
    "The abstract reports no significant difference in the primary outcome.\n\nClassification: FALSE",
)


def train_tiny_teacher(model_dir: Path, out: Path, documents: list[str], steps: int = 60, hinted: bool = False) -> Path:
    """Fine-tune the tiny model so that, for any clinifact teacher prompt, it answers TRUE or FALSE about evenly;
    `hinted`: and a rationalization prompt (the gold label given) with the hinted label."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from schemas import load_task

    task = load_task("clinifact")
    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    torch.manual_seed(0)
    pairs = []
    for document in documents:
        prompt = tok.apply_chat_template(task.teacher_messages(document), add_generation_prompt=True)["input_ids"]
        targets = [
            tok(answer, add_special_tokens=False)["input_ids"] + [tok.eos_token_id] for answer in TEACHER_ANSWERS
        ]
        examples = [(prompt, t) for t in targets]
        if hinted:
            for label, target in zip((1, 0), targets, strict=True):
                messages = task.rationalize_messages(document, label)
                examples.append((tok.apply_chat_template(messages, add_generation_prompt=True)["input_ids"], target))
        pairs.append([(torch.tensor([p + t]), torch.tensor([[-100] * len(p) + t])) for p, t in examples])
    model.train()
    for step in range(steps):
        loss = sum(model(input_ids=ids, labels=labels).loss for ids, labels in pairs[step % len(pairs)])
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    model.save_pretrained(out)
    tok.save_pretrained(out)
    return out
