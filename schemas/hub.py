"""What every Hugging Face Hub upload checks first."""


def check_online(option: str = "--push-to-hub") -> None:
    """Refuse before any work when the Hub is switched off in this environment (`option` names what needs it)."""
    from huggingface_hub import constants

    if constants.HF_HUB_OFFLINE:
        raise ValueError(f"HF_HUB_OFFLINE is set: unset it (and log in with `hf auth login`) to use {option}")
