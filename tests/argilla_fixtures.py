"""A real Argilla 2.8 server on 127.0.0.1 for the review tests (argilla-server + noida-db, no Docker).

Reuses a running server when ARGILLA_API_URL and ARGILLA_API_KEY are set (`.ci/run` starts one with
`scripts/argilla-server.sh`); otherwise starts one in a temporary folder with the same script and stops it by PID.
"""

import os
import subprocess
from pathlib import Path

import httpx
import pytest

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "scripts" / "argilla-server.sh"


def read_env(state: Path) -> dict[str, str]:
    """KEY=VALUE lines of the script's state file."""
    return dict(line.split("=", 1) for line in (state / "env").read_text().splitlines() if "=" in line)


@pytest.fixture(scope="session")
def argilla_server(tmp_path_factory: pytest.TempPathFactory):
    """{"api_url", "api_key"} of an owner on a live server; a missing server venv is a failure with the fix."""
    if os.environ.get("ARGILLA_API_URL") and os.environ.get("ARGILLA_API_KEY"):
        yield {"api_url": os.environ["ARGILLA_API_URL"], "api_key": os.environ["ARGILLA_API_KEY"]}
        return
    venv = Path(os.environ.get("ARGILLA_SERVER_VENV", REPO / ".venv-argilla-server"))
    if not (venv / "bin" / "python").exists():
        pytest.fail(
            f"{venv} is missing: python3 -m venv {venv} && {venv}/bin/pip install -r requirements-argilla-server.txt"
            " (or set ARGILLA_API_URL / ARGILLA_API_KEY to a running Argilla 2.8 server)"
        )
    state = tmp_path_factory.mktemp("argilla")
    env = {**os.environ, "ARGILLA_SERVER_VENV": str(venv)}
    started = subprocess.run(
        ["bash", str(SCRIPT), "start", str(state)], env=env, cwd=REPO, capture_output=True, text=True
    )
    try:
        if started.returncode:
            log = (state / "stack.log").read_text()[-3000:] if (state / "stack.log").exists() else ""
            pytest.fail(f"Argilla server did not start:\n{started.stdout}{started.stderr}\n{log}")
        values = read_env(state)
        yield {"api_url": values["ARGILLA_API_URL"], "api_key": values["ARGILLA_API_KEY"]}
    finally:
        subprocess.run(["bash", str(SCRIPT), "stop", str(state)], env=env, cwd=REPO, capture_output=True)


@pytest.fixture()
def argilla_env(argilla_server, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The server's URL and owner key in ARGILLA_API_URL / ARGILLA_API_KEY, as a user would set them."""
    monkeypatch.setenv("ARGILLA_API_URL", argilla_server["api_url"])
    monkeypatch.setenv("ARGILLA_API_KEY", argilla_server["api_key"])
    return argilla_server


def annotator_headers(api_url: str, username: str, password: str) -> dict[str, str]:
    """Log in as an annotator through /api/v1/token, as the UI does; the bearer header for its requests."""
    login = httpx.post(f"{api_url}/api/v1/token", data={"username": username, "password": password})
    login.raise_for_status()
    return {"Authorization": f"Bearer {login.json()['access_token']}"}
