"""Generation engines named by URI: `hf:PATH`, `vllm:PATH_OR_ID`, `openai:BASE_URL#MODEL`, `ray:PATH_OR_ID`."""

from pathlib import Path

from curate.engines.base import Constraint, Engine, EngineError, GenerationRequest, GenerationResult, trial_seed
from schemas.config import RayConfig
from schemas.default_model import DEFAULT_MODEL_ID, resolve_model_path
from schemas.redact import redact, url_credentials
from schemas.truncation import TokenCounter

__all__ = [
    "Constraint",
    "Engine",
    "EngineError",
    "GenerationRequest",
    "GenerationResult",
    "open_counter",
    "open_engine",
    "trial_seed",
]

ACCEPTED_FORMS = (
    "hf:PATH (hf:default = SmolLM2-135M-Instruct), vllm:PATH_OR_ID (vllm:default likewise), "
    "openai:BASE_URL#MODEL (e.g. openai:http://127.0.0.1:8000/v1#teacher), "
    "ray:PATH_OR_ID (vLLM replicas on a Ray cluster)"
)


def model_location(spec: str) -> tuple[str, str]:
    """(path or hub id, model id) for a model spec; a path that does not exist is an EngineError naming it."""
    if not spec:
        raise EngineError("no model given: use hf:PATH, hf:default or vllm:PATH_OR_ID")
    location = resolve_model_path(spec)
    model_id = DEFAULT_MODEL_ID if location != spec else spec
    path = Path(location).expanduser()
    if path.exists():
        return str(path), model_id
    if location.startswith(("/", ".", "~")) or location.count("/") != 1:
        raise EngineError(
            f"model path {location!r} does not exist: pass an existing model folder, a hub id, or 'default'"
        )
    return location, model_id


def check_no_credentials(base_url: str) -> None:
    """Refuse a server URL that embeds credentials: the URI is written to run.json, the journal and the card."""
    found = url_credentials(base_url)
    if found:
        raise EngineError(
            f"the engine URL {redact(base_url)} carries credentials ({found}), which would be saved with the run:"
            " remove them from the URI and set OPENAI_API_KEY instead"
        )


def engine_kind(uri: str) -> tuple[str, str]:
    """(scheme, rest) of a well-formed engine URI; anything else is an EngineError listing the accepted forms."""
    scheme, _, rest = uri.partition(":")
    base_url, _, model = rest.partition("#")
    if scheme in ("hf", "vllm", "ray") and rest:
        return scheme, rest
    if scheme == "openai" and base_url.startswith(("http://", "https://")) and model:
        check_no_credentials(base_url)
        return scheme, rest
    raise EngineError(f"cannot parse the engine URI {redact(uri)!r}: use one of {ACCEPTED_FORMS}")


def open_engine(
    uri: str,
    *,
    batch_size: int = 16,
    concurrency: int = 32,
    tokenizer: str | None = None,
    log_path: Path | None = None,
    ray: RayConfig | None = None,
) -> Engine:
    """Create the engine a URI names; `tokenizer` overrides the model's (openai: enables exact token counts).

    `log_path`: a file for vLLM's logs and output instead of the terminal (the other engines print none).
    `ray`: where the ray engine places its replicas (default: one CPU replica on RAY_ADDRESS or a local cluster)."""
    scheme, rest = engine_kind(uri)
    if scheme == "hf":
        from curate.engines.hf import HFEngine

        path, model_id = model_location(rest)
        return HFEngine(path, uri=uri, model_id=model_id, batch_size=batch_size, tokenizer=tokenizer)
    if scheme == "vllm":
        from curate.engines.vllm import VLLMEngine

        path, model_id = model_location(rest)
        return VLLMEngine(path, uri=uri, model_id=model_id, tokenizer=tokenizer, log_path=log_path)
    if scheme == "ray":
        from curate.engines.ray import RayEngine

        path, model_id = model_location(rest)
        return RayEngine(path, uri=uri, model_id=model_id, settings=ray or RayConfig(), tokenizer=tokenizer)
    from curate.engines.openai import OpenAIEngine

    base_url, _, model = rest.partition("#")
    return OpenAIEngine(base_url, model, uri=uri, concurrency=concurrency, tokenizer=tokenizer)


def open_counter(uri: str, tokenizer: str | None = None) -> TokenCounter:
    """The token counter the engine of `uri` would use, from a tokenizer alone: no weights, no server, no vLLM."""
    from curate.engines.tokens import CharEstimateCounter, load_counter

    scheme, rest = engine_kind(uri)
    if scheme == "openai" and not tokenizer:
        return CharEstimateCounter()
    return load_counter(tokenizer or model_location(rest)[0])
