"""`train push`: upload a checkpoint (adapter, head, head config, tokenizer, model card) to a Hub model repo, after
checking its weights, its card and that no secret is in what goes up."""

from pathlib import Path

from schemas.files import file_sha256
from schemas.hub import check_online
from schemas.redact import env_secrets
from train.card import CARD, HUB_ID
from train.checkpoint import ADAPTER, ADAPTER_CONFIG, HEAD, HEAD_CONFIG, DualHeadConfig, weights_problem

TOKENIZER_FILES = ["tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "chat_template.jinja"]
TOKENIZER_EXTRA = ["tokenizer.model", "vocab.json", "merges.txt", "added_tokens.json"]
UPLOADED = [ADAPTER, ADAPTER_CONFIG, HEAD, HEAD_CONFIG, CARD, *TOKENIZER_FILES, *TOKENIZER_EXTRA]
FIX_CARD = "run `train card CHECKPOINT` to write the card (and the tokenizer) for these weights"


def uploaded_files(checkpoint: Path) -> list[Path]:
    """The files of the checkpoint that `train push` uploads (no resume state, no evaluation outputs)."""
    return [checkpoint / name for name in UPLOADED if (checkpoint / name).is_file()]


def check_pushable(checkpoint: Path) -> list[Path]:
    """The files to upload; ValueError naming the file and the fix when weights are missing or unreadable, the card is
    missing or describes other weights, the tokenizer is missing, or a secret of the environment is in a file."""
    problem = weights_problem(checkpoint)
    if problem:
        raise ValueError(f"{problem}: push a complete `train run` checkpoint folder RUN/epoch-N")
    try:
        DualHeadConfig.model_validate_json((checkpoint / HEAD_CONFIG).read_text())
    except ValueError as err:
        raise ValueError(f"{checkpoint / HEAD_CONFIG} is not a head config ({err}): train this epoch again") from None
    if not (checkpoint / CARD).is_file():
        raise ValueError(f"{checkpoint / CARD} (the model card) is missing: {FIX_CARD}")
    card = (checkpoint / CARD).read_text()
    stale = [name for name in (ADAPTER, HEAD) if file_sha256(checkpoint / name) not in card]
    if stale:
        raise ValueError(
            f"{checkpoint / CARD} does not name the sha256 of {stale[0]}: the card describes other weights; {FIX_CARD}"
        )
    if not (checkpoint / "tokenizer_config.json").is_file():
        raise ValueError(f"{checkpoint} has no tokenizer (tokenizer_config.json): {FIX_CARD}")
    files = uploaded_files(checkpoint)
    for path in files:
        if path.suffix != ".safetensors" and any(
            secret in path.read_text(errors="replace") for secret in env_secrets()
        ):
            raise ValueError(f"{path} holds the value of a secret environment variable (e.g. HF_TOKEN): remove it")
    return files


def push_checkpoint(checkpoint: Path, repo: str, private: bool = False, revision: str | None = None) -> str:
    """Upload the checkpoint's files to model repo `repo` (created if missing; on branch `revision` if given) in one
    commit; returns the URL of the uploaded tree."""
    from huggingface_hub import HfApi

    checkpoint = Path(checkpoint)
    if not HUB_ID.match(repo):
        raise ValueError(f"--repo {repo!r} is not a Hub repo id OWNER/NAME")
    check_online("train push")
    check_pushable(checkpoint)
    api = HfApi()
    api.create_repo(repo, repo_type="model", private=private, exist_ok=True)
    if revision:
        api.create_branch(repo, repo_type="model", branch=revision, exist_ok=True)
    head = DualHeadConfig.model_validate_json((checkpoint / HEAD_CONFIG).read_text())
    api.upload_folder(
        repo_id=repo,
        repo_type="model",
        folder_path=str(checkpoint),
        allow_patterns=UPLOADED,
        revision=revision,
        commit_message=f"clsgen checkpoint: {head.dataset_version}, epoch {head.epoch}",
    )
    return f"https://huggingface.co/{repo}/tree/{revision or 'main'}"
