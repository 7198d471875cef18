"""Issue 9 hardening: secrets never persisted, one file-mode policy (the umask), exit 2 naming the file for bad
`--out` folders, broken checkpoints and `--limit` below 1, and a resume that skips an epoch with broken weights."""

import json
import os
import shutil
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from curate.cli import app as curate_app
from curate.demo_data import write_demo_csv
from evaluate.cli import app as evaluate_app
from schemas.files import atomic_write_bytes, atomic_write_parquet, check_output_folder
from schemas.redact import MASK, redact
from tests.train_fixtures import toy_version
from train import checkpoint as ckpt

KEY = "sk-test-0123456789abcdef"
runner = CliRunner()


@pytest.fixture()
def umask_022() -> Iterator[None]:
    """Run the test under umask 022, whatever the caller's."""
    previous = os.umask(0o022)
    yield
    os.umask(previous)


def mode(path: Path) -> int:
    return path.stat().st_mode & 0o777


# --- file modes --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("umask", "expected"), [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_atomic_writes_get_the_mode_the_umask_gives(tmp_path: Path, umask: int, expected: int) -> None:
    previous = os.umask(umask)
    try:
        atomic_write_bytes(tmp_path / "run.json", b"{}")
        atomic_write_parquet(pl.DataFrame({"a": [1]}), tmp_path / "rows.parquet")
    finally:
        os.umask(previous)
    assert (mode(tmp_path / "run.json"), mode(tmp_path / "rows.parquet")) == (expected, expected)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rows.parquet", "run.json"]


# --- secrets -----------------------------------------------------------------------------------------------------


def test_redact_masks_headers_keys_url_credentials_and_the_environments_secrets(monkeypatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    text = f"echo {KEY}; Authorization: Bearer abc.def; https://bob:pw@host/v1?api_key=zz&x=1; max_tokens: 512"
    assert redact(text) == (
        f"echo {MASK}; Authorization: Bearer {MASK}; https://{MASK}@host/v1?api_key={MASK}&x=1; max_tokens: 512"
    )


class EchoingServer(BaseHTTPRequestHandler):
    """An OpenAI-compatible server that lists one model and refuses every completion, echoing the caller's
    Authorization header and bare key in its error body (as some proxies do)."""

    def do_GET(self) -> None:
        self.reply(200, {"object": "list", "data": [{"id": "m", "object": "model", "created": 0, "owned_by": "t"}]})

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        auth = self.headers["Authorization"]
        self.reply(400, {"error": {"message": f"refused: Authorization: {auth} (key {auth.split()[-1]})"}})

    def reply(self, status: int, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        """Quiet."""


@pytest.fixture()
def echoing_url() -> Iterator[str]:
    """The base URL of an EchoingServer on 127.0.0.1."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), EchoingServer)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()
    thread.join()


def test_a_server_echoing_the_key_leaves_it_out_of_the_error_result(echoing_url: str, monkeypatch) -> None:
    from curate.engines import GenerationRequest, open_engine

    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    with open_engine(f"openai:{echoing_url}#m") as engine:
        request = GenerationRequest(key="k", messages=[{"role": "user", "content": "q"}], seed=1)
        result = next(engine.generate([request]))
    assert result.finish_reason == "error" and "BadRequestError" in result.error and "refused" in result.error
    assert KEY not in result.error and MASK in result.error


def test_generate_against_a_server_echoing_the_key_persists_and_prints_no_key(
    echoing_url: str, tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    out = tmp_path / "run"
    args = ["--input", write_demo_csv(tmp_path / "train.csv", 3), "--engine", f"openai:{echoing_url}#m", "--k", "1"]
    result = runner.invoke(curate_app, ["generate", "--out", out, *map(str, args)])
    assert result.exit_code == 1, result.output
    journaled = [p for p in out.rglob("*") if p.is_file() and b"refused: Authorization" in p.read_bytes()]
    assert journaled, "the server's error is journaled"
    assert [p.name for p in out.rglob("*") if p.is_file() and KEY.encode() in p.read_bytes()] == []
    assert KEY not in result.output


# --- --out and --limit -------------------------------------------------------------------------------------------


def test_an_out_that_is_a_file_or_unwritable_is_named(tmp_path: Path, monkeypatch) -> None:
    file = tmp_path / "taken"
    file.write_text("x")
    with pytest.raises(ValueError, match=f"--out {file}: {file} is a file"):
        check_output_folder(file)
    with pytest.raises(ValueError, match=f"{file} is a file, not a folder"):
        check_output_folder(file / "sub")
    locked = tmp_path / "locked"
    locked.mkdir()
    monkeypatch.setattr(os, "access", lambda path, flags: Path(path) != locked)  # root ignores chmod 500
    with pytest.raises(ValueError, match=f"cannot write into {locked}"):
        check_output_folder(locked / "new")


@pytest.mark.parametrize("limit", ["0", "-1"])
@pytest.mark.parametrize(
    "command",
    [
        ["run", "--checkpoint", "ckpt", "--dataset", "ds"],
        ["judge", "predictions.parquet", "--engine", "hf:default"],
        ["baseline", "--method", "label", "--out", "o", "--engine", "hf:default"],
    ],
)
def test_evaluate_limit_below_one_exits_2(command: list[str], limit: str) -> None:
    result = runner.invoke(evaluate_app, [*command, "--limit", limit])
    assert result.exit_code == 2 and "--limit" in result.output, result.output


# --- checkpoints -------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def two_epochs(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(dataset version, run folder) of a tiny two-epoch run written under umask 022."""
    root = tmp_path_factory.mktemp("hardening")
    version = toy_version(root / "registry")
    previous = os.umask(0o022)
    try:
        run = train_two_epochs(version, tiny_model_dir, root / "run")
    finally:
        os.umask(previous)
    return version, run


def train_two_epochs(version: Path, model_dir: Path, out: Path) -> Path:
    """Train (or resume) the fixture's run."""
    from train.config import TrainConfig
    from train.loop import train_run

    cfg = TrainConfig(epochs=2, batch_size=4, head_hidden=16, max_input_tokens=128, warmup_ratio=0.0)
    return train_run(cfg, version, str(model_dir), out)


def test_checkpoint_files_follow_the_umask(two_epochs) -> None:
    files = [p for p in (two_epochs[1] / "epoch-2").rglob("*") if p.is_file()]
    assert {ckpt.ADAPTER, ckpt.HEAD} <= {p.name for p in files}
    assert {p.name: mode(p) for p in files if mode(p) != 0o644} == {}


def test_resume_skips_a_last_epoch_whose_head_is_corrupt(two_epochs, tiny_model_dir, tmp_path, capfd) -> None:
    version, run = two_epochs
    copy = shutil.copytree(run, tmp_path / "run")
    (copy / "epoch-2" / ckpt.HEAD).write_bytes(b"not safetensors")
    train_two_epochs(version, tiny_model_dir, copy)
    assert f"{copy / 'epoch-2' / ckpt.HEAD} is not a readable safetensors file" in capfd.readouterr().err
    assert ckpt.weights_problem(copy / "epoch-2") is None
    rows = [json.loads(line) for line in (copy / "metrics.jsonl").read_text().splitlines()]
    assert [row["epoch"] for row in rows if row["split"] == "train"] == [1, 2]


@pytest.mark.parametrize(
    ("broken", "message"),
    [
        (lambda epoch: (epoch / ckpt.HEAD).write_bytes(b"\x00" * 3), "is not a readable safetensors file"),
        (lambda epoch: (epoch / ckpt.ADAPTER).unlink(), "is missing"),
        (lambda epoch: (epoch / ckpt.ADAPTER).write_bytes(b"{}"), "is not a readable safetensors file"),
    ],
)
def test_evaluate_names_a_broken_checkpoint_file_before_loading_a_model(
    two_epochs, tmp_path, monkeypatch, broken, message
) -> None:
    version, run = two_epochs
    epoch = shutil.copytree(run / "epoch-1", tmp_path / "epoch-1")
    broken(epoch)
    monkeypatch.setattr(ckpt, "load_base", lambda *a, **k: pytest.fail("a model was loaded"))
    args = ["run", "--checkpoint", str(epoch), "--dataset", str(version), "--split", "validation"]
    result = runner.invoke(evaluate_app, args)
    assert result.exit_code == 2, result.output
    output = " ".join(result.output.split())
    assert message in output and str(epoch) in output and "Traceback" not in output


def test_evaluate_run_names_an_out_that_is_a_file(two_epochs, tmp_path, monkeypatch) -> None:
    version, run = two_epochs
    out = tmp_path / "taken"
    out.write_text("x")
    monkeypatch.setattr(ckpt, "load_base", lambda *a, **k: pytest.fail("a model was loaded"))
    args = ["run", "--checkpoint", str(run / "epoch-1"), "--dataset", str(version), "--split", "validation"]
    result = runner.invoke(evaluate_app, [*args, "--out", str(out)])
    assert result.exit_code == 2 and f"{out} is a file, not a folder" in " ".join(result.output.split())


def test_generate_and_train_name_an_out_that_is_a_file(tmp_path: Path) -> None:
    from train.cli import app as train_app

    taken = tmp_path / "taken"
    taken.write_text("x")
    demo = write_demo_csv(tmp_path / "demo.csv")
    generate = runner.invoke(curate_app, ["generate", "--input", str(demo), "--out", str(taken), "--dry-run"])
    version = toy_version(tmp_path / "registry")
    train = runner.invoke(train_app, ["run", "--dataset", str(version), "--model", "x", "--out", str(taken)])
    for result in (generate, train):
        assert result.exit_code == 2 and f"{taken} is a file, not a folder" in " ".join(result.output.split())
    assert taken.read_text() == "x"


def test_an_unreachable_argilla_url_with_credentials_is_named_without_them(monkeypatch) -> None:
    import socket

    from curate.review.server import ReviewServerError, connect

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("ARGILLA_API_URL", f"http://owner:pass-0123456789@127.0.0.1:{port}")
    monkeypatch.setenv("ARGILLA_API_KEY", "owner.key-0123456789")
    with pytest.raises(ReviewServerError, match="cannot reach Argilla") as err:
        connect()
    assert "pass-0123456789" not in str(err.value) and f"127.0.0.1:{port}" in str(err.value)
