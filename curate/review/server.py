"""Connect to Argilla from ARGILLA_API_URL / ARGILLA_API_KEY; failures become clear errors that never show the key."""

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager

import httpx

from schemas.redact import redact


class ReviewServerError(ValueError):
    """Argilla is not configured, not reachable, or refused the key; the message says how to fix it."""


START_HINT = 'start one with `scripts/argilla-server.sh start` and `eval "$(scripts/argilla-server.sh env)"`'


def connect():
    """An `argilla.Argilla` client for the server named by the environment, checked with GET /api/v1/me."""
    import argilla as rg
    from argilla._exceptions import ArgillaCredentialsError

    logging.getLogger("argilla.sdk").setLevel(logging.ERROR)  # batch-size notices are noise to a reviewer
    url, key = os.environ.get("ARGILLA_API_URL", "").strip(), os.environ.get("ARGILLA_API_KEY", "").strip()
    if not url or not key:
        raise ReviewServerError(f"set ARGILLA_API_URL and ARGILLA_API_KEY to reach an Argilla server ({START_HINT})")
    try:
        return rg.Argilla(api_url=url, api_key=key, retries=0)
    except httpx.TransportError as err:
        raise ReviewServerError(f"cannot reach Argilla at {redact(url)} ({type(err).__name__}): {START_HINT}") from None
    except ArgillaCredentialsError:
        raise ReviewServerError(
            f"Argilla at {redact(url)} rejected ARGILLA_API_KEY: use the API key of an owner or admin user"
        ) from None


@contextmanager
def server_errors(url: str) -> Iterator[None]:
    """Turn SDK and HTTP failures during a push or pull into a ReviewServerError naming the server."""
    from argilla._exceptions import ArgillaError

    try:
        yield
    except (ArgillaError, httpx.HTTPError) as err:
        raise ReviewServerError(
            f"Argilla at {redact(url)} failed: {redact(str(err))}. A 403 means the key's user is not an owner or admin"
        ) from None
