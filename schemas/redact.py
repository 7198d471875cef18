"""Keep secrets out of every file and message: mask known secret values and credential-shaped text from outside."""

import os
import re
from urllib.parse import parse_qsl, urlsplit

MASK = "[redacted]"
SECRET_ENV = ("OPENAI_API_KEY", "ARGILLA_API_KEY", "ARGILLA_OWNER_PASSWORD", "HF_TOKEN", "HUGGING_FACE_HUB_TOKEN")
SECRET_NAME = r"api[_-]?key|access[_-]?token|token|password|secret|auth"
CREDENTIAL_SHAPES = (
    re.compile(r"(?i)(authorization['\"]?\s*[:=]\s*['\"]?(?:bearer\s+|basic\s+)?)[^\s'\",;}]+"),
    re.compile(r"(?i)(\bbearer\s+)[\w.~+/=-]+"),
    re.compile(rf"(?i)(\b(?:{SECRET_NAME})['\"]?\s*[:=]\s*['\"]?)[^\s'\",;}}&#]+"),
    re.compile(r"(://)[^/\s@]+(?=@)"),
)


def env_secrets() -> list[str]:
    """The values of the secret environment variables that are set (too short a value would mask ordinary text)."""
    return [value for name in SECRET_ENV if len(value := os.environ.get(name, "")) >= 8]


def redact(text: str) -> str:
    """`text` with the secrets of the environment and anything shaped like a credential replaced by MASK."""
    for secret in env_secrets():
        text = text.replace(secret, MASK)
    for shape in CREDENTIAL_SHAPES:
        text = shape.sub(lambda match: match.group(1) + MASK, text)
    return text


def url_credentials(url: str) -> str | None:
    """Which credentials a URL embeds (`user:password@`, or a secret-named query parameter), or None."""
    parts = urlsplit(url)
    if parts.username or parts.password:
        return "user:password@ before the host"
    named = [key for key, _ in parse_qsl(parts.query) if re.fullmatch(rf"(?i)(x-)?(key|{SECRET_NAME})", key)]
    return f"the query parameter {named[0]!r}" if named else None
