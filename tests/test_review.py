"""`curate review push / pull` against a real Argilla 2.8 server, then `publish --reviews` on what came back."""

import socket
import uuid
from pathlib import Path

import httpx
import polars as pl
import pytest
from rich.text import Text
from typer.testing import CliRunner

from curate.cli import app
from curate.review.items import discarded_items, suggested_decision
from curate.review.queue import DECISION_AGENT, PULL_SUMMARY, RESPONSES, REVIEW_STATE, REVIEWS, PullSummary
from curate.review.settings import GUIDELINES
from schemas.dataset_version import load_version
from tests.argilla_fixtures import annotator_headers
from tests.run_fixtures import synthetic_run, terminal

pytestmark = pytest.mark.slow
PASSWORD = "reviewer-pw-1"


def unique(prefix: str) -> str:
    """A fresh name, so tests can rerun against a long-lived server (ARGILLA_API_URL set)."""
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def invoke(*args):
    """Run the curate CLI."""
    return CliRunner().invoke(app, [str(a) for a in args], env={"COLUMNS": "200"})


def make_run(path: Path) -> Path:
    """A synthetic run whose discarded examples include both classes."""
    return synthetic_run(path, 30, k=3, seed=2)[0]


def owner_client(server: dict):
    """An SDK client as the owner."""
    import argilla as rg

    return rg.Argilla(api_url=server["api_url"], api_key=server["api_key"])


def annotator(server: dict, username: str):
    """Create an annotator in workspace `curation` and log them in; their bearer headers."""
    import argilla as rg

    client = owner_client(server)
    user = rg.User(username=username, password=PASSWORD, role="annotator", client=client).create()
    client.workspaces("curation").add_user(user)
    return annotator_headers(server["api_url"], username, PASSWORD)


def annotator_queue(server: dict, headers: dict, dataset_id) -> dict[str, dict]:
    """Records as the annotation UI loads them (the annotator's own search), by example id."""
    response = httpx.post(
        f"{server['api_url']}/api/v1/me/datasets/{dataset_id}/records/search",
        headers=headers,
        params={"include": ["suggestions"], "limit": 100},
        json={},
    )
    response.raise_for_status()
    return {item["record"]["external_id"]: item["record"] for item in response.json()["items"]}


def respond(server: dict, headers: dict, record: dict, decision: str, explanation: str | None, status="submitted"):
    """Answer a record through the REST API, as the UI's Submit (or Save as draft) does."""
    values = {"decision": {"value": decision}}
    if explanation is not None:
        values["explanation"] = {"value": explanation}
    response = httpx.post(
        f"{server['api_url']}/api/v1/records/{record['id']}/responses",
        headers=headers,
        json={"values": values, "status": status},
    )
    assert response.status_code == 201, response.text


def test_push_review_pull_publish(tmp_path: Path, argilla_env, monkeypatch: pytest.MonkeyPatch):
    run_dir = make_run(tmp_path / "run")
    expected = discarded_items(run_dir, 1)  # default: the minority class (positives are 1 in 3)
    assert len(expected) >= 4
    name = unique("roundtrip")
    with monkeypatch.context() as patch:
        screen = terminal(patch)
        first = invoke("review", "push", run_dir, "--dataset", name)
    assert first.exit_code == 0, first.output
    shown = Text.from_ansi(screen.getvalue()).plain
    assert "records pushed" in shown and f"{len(expected)}/{len(expected)}" in shown, shown
    assert f"{len(expected)} added" in shown.splitlines()[-1] and "Sending records" not in first.output
    again = invoke("review", "push", run_dir, "--dataset", name)
    assert again.exit_code == 0 and "0 added" in again.output, again.output

    client = owner_client(argilla_env)
    dataset = client.datasets(name=name, workspace="curation")
    records = {r.id: r for r in dataset.records(with_suggestions=True)}
    assert sorted(records) == [item.id for item in expected]
    item = expected[0]
    record = records[item.id]
    assert {name: record.fields[name] for name in ("claim", "article_abstract")} == item.fields
    assert record.fields["gold_label"] == "TRUE (1)" and "document" not in record.fields
    assert record.metadata["n_attempts"] == 3 and record.metadata["split"] == item.split
    assert record.metadata["truncated"] == "no" and record.metadata["label"] == "1"
    assert record.metadata["reasons"] == sorted({a.status for a in item.attempts})
    for attempt in item.attempts:
        assert f"**Trial {attempt.trial}: {attempt.status}**" in record.fields["attempts"]
    assert dataset.settings.guidelines == GUIDELINES.strip()

    reviewer = unique("rev")
    headers = annotator(argilla_env, reviewer)
    queue = annotator_queue(argilla_env, headers, dataset.id)
    with_near_miss = [i for i in expected if i.near_miss is not None]
    assert with_near_miss, "the fixture should leave some near misses"
    for it in expected:  # both suggestions reach the annotator pre-filled
        shown = {s["agent"] == DECISION_AGENT: s for s in queue[it.id]["suggestions"]}
        text, decision = shown.get(False), shown.get(True)
        assert (text and text["value"]) == (it.near_miss and it.near_miss.text.strip())
        wanted = suggested_decision(it)
        assert (decision and (decision["value"], decision["score"])) == (wanted and (wanted.value, wanted.score))

    keep, noise, wrong, draft = (i.id for i in expected[:4])
    respond(argilla_env, headers, queue[keep], "keep", "Reviewer: the abstract shows the primary outcome improved.")
    respond(argilla_env, headers, queue[noise], "drop_noise", None)
    respond(argilla_env, headers, queue[wrong], "wrong_gold_label", None)
    respond(argilla_env, headers, queue[draft], "keep", "not finished", status="draft")

    with monkeypatch.context() as patch:
        screen = terminal(patch)
        pulled = invoke("review", "pull", run_dir)
    assert pulled.exit_code == 0, pulled.output
    shown = Text.from_ansi(screen.getvalue()).plain
    assert "records read" in shown and f"{len(expected)}/{len(expected)}" in shown, shown
    reviews = pl.read_parquet(run_dir / REVIEWS)
    assert reviews.columns == ["example_id", "decision", "explanation", "reviewer", "time", "votes", "responses"]
    assert sorted(reviews.select("example_id", "decision").iter_rows()) == sorted(
        [(keep, "keep"), (noise, "drop_noise"), (wrong, "wrong_gold_label")]
    )
    assert set(reviews["reviewer"]) == {reviewer} and reviews["time"].null_count() == 0
    assert invoke("review", "pull", run_dir).exit_code == 0
    assert pl.read_parquet(run_dir / REVIEWS).equals(reviews)

    published = invoke(
        "publish",
        run_dir,
        "--name",
        "cf",
        "--version",
        "1.0.0",
        "--reviews",
        "--registry",
        tmp_path / "registry",
        "--cards-dir",
        tmp_path / "cards",
    )
    assert published.exit_code == 0, published.output
    data, manifest = load_version(tmp_path / "registry" / "cf" / "1.0.0")
    rows = {row["id"]: row for split in data for row in data[split].to_list()}
    assert rows[keep]["provenance"] == "human"
    assert rows[keep]["explanation"] == "Reviewer: the abstract shows the primary outcome improved."
    assert not {noise, wrong, draft} & rows.keys()
    assert manifest.review.wrong_gold_label == [wrong] and manifest.review.dropped_noise == 1


def test_all_discarded_and_label_choose_the_examples(tmp_path: Path, argilla_env):
    run_dir = make_run(tmp_path / "run")
    for args, label in ((["--all-discarded"], None), (["--label", "0"], 0)):
        name = unique(f"choose-{label}")
        result = invoke("review", "push", run_dir, *args, "--dataset", name)
        assert result.exit_code == 0, result.output
        dataset = owner_client(argilla_env).datasets(name=name, workspace="curation")
        assert sorted(r.id for r in dataset.records()) == [i.id for i in discarded_items(run_dir, label)]


def free_port() -> int:
    """A port nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.parametrize("command", ["push", "pull"])
def test_unreachable_server_or_bad_key_is_a_clear_error_and_writes_nothing(
    tmp_path: Path,
    argilla_server,
    monkeypatch: pytest.MonkeyPatch,
    command: str,
):
    run_dir = make_run(tmp_path / "run")
    before = sorted(p.name for p in run_dir.iterdir())
    cases = [
        (argilla_server["api_url"], "owner.not-the-key-42", "rejected ARGILLA_API_KEY"),
        (f"http://127.0.0.1:{free_port()}", argilla_server["api_key"], "cannot reach Argilla"),
    ]
    for url, key, message in cases:
        monkeypatch.setenv("ARGILLA_API_URL", url)
        monkeypatch.setenv("ARGILLA_API_KEY", key)
        result = invoke("review", command, run_dir)
        assert result.exit_code == 2, result.output
        assert message in result.output.replace("\n", "")
        assert key not in result.output
    monkeypatch.delenv("ARGILLA_API_KEY")
    missing = invoke("review", command, run_dir)
    assert missing.exit_code == 2 and "ARGILLA_API_KEY" in missing.output
    assert sorted(p.name for p in run_dir.iterdir()) == before


def test_the_api_key_is_never_written_or_printed(tmp_path: Path, argilla_env, capfd):
    run_dir = make_run(tmp_path / "run")
    outputs = [
        invoke("review", "push", run_dir, "--dataset", unique("secret")).output,
        invoke("review", "pull", run_dir).output,
    ]
    captured = capfd.readouterr()
    key = argilla_env["api_key"]
    assert (run_dir / REVIEW_STATE).is_file() and (run_dir / REVIEWS).is_file()
    assert not [p for p in run_dir.iterdir() if key.encode() in p.read_bytes()]
    assert key not in "".join(outputs) + captured.out + captured.err


def test_an_annotator_key_is_refused_with_a_clear_error(tmp_path: Path, argilla_server, monkeypatch):
    run_dir = make_run(tmp_path / "run")
    headers = annotator(argilla_server, unique("ann"))
    me = httpx.get(f"{argilla_server['api_url']}/api/v1/me", headers=headers).json()
    monkeypatch.setenv("ARGILLA_API_URL", argilla_server["api_url"])
    monkeypatch.setenv("ARGILLA_API_KEY", me["api_key"])
    result = invoke("review", "push", run_dir, "--dataset", unique("annotator"))
    assert result.exit_code == 2, result.output
    assert "not an owner or admin" in result.output.replace("\n", "") and me["api_key"] not in result.output
    assert not (run_dir / REVIEW_STATE).exists()


def pushed_queue(server: dict, run_dir: Path, *args) -> tuple[str, object]:
    """Push the run to a fresh queue; its name and SDK dataset."""
    name = unique("queue")
    result = invoke("review", "push", run_dir, "--dataset", name, *args)
    assert result.exit_code == 0, result.output
    return name, owner_client(server).datasets(name=name, workspace="curation")


def test_two_annotators_majority_decides_ties_are_listed_and_agreement_is_shown(tmp_path: Path, argilla_env):
    run_dir = make_run(tmp_path / "run")
    _, dataset = pushed_queue(argilla_env, run_dir, "--annotators", "2")
    assert dataset.settings.distribution.min_submitted == 2
    ann, bob = unique("ann"), unique("bob")
    heads = {who: annotator(argilla_env, who) for who in (ann, bob)}
    queue = annotator_queue(argilla_env, heads[ann], dataset.id)
    agreed, tied, dropped, alone = sorted(queue)[:4]
    respond(argilla_env, heads[ann], queue[agreed], "keep", "Ann's reading of the abstract.")
    respond(argilla_env, heads[bob], queue[agreed], "keep", "Bob's later reading of the abstract.")
    respond(argilla_env, heads[ann], queue[tied], "keep", "Ann keeps it.")
    respond(argilla_env, heads[bob], queue[tied], "drop_noise", None)
    for who in (ann, bob):
        respond(argilla_env, heads[who], queue[dropped], "drop_noise", None)
    respond(argilla_env, heads[ann], queue[alone], "wrong_gold_label", None)

    pulled = invoke("review", "pull", run_dir)
    assert pulled.exit_code == 0, pulled.output
    out = pulled.output.replace("\n", " ")
    assert "7 submitted responses from 2 reviewers; 3 decisions" in out
    assert "2 of 3 records with 2+ responses unanimous (67%)" in out and f"{ann}/{bob} 0.40 over 3" in out
    assert f"1 ties left out (settle them in Argilla): {tied}" in out
    responses = pl.read_parquet(run_dir / RESPONSES)
    assert responses.height == 7 and set(responses["reviewer"]) == {ann, bob}
    decided = pl.read_parquet(run_dir / REVIEWS)
    assert decided.select("example_id", "decision", "explanation", "votes", "responses").rows() == [
        (agreed, "keep", "Bob's later reading of the abstract.", 2, 2),
        (dropped, "drop_noise", None, 2, 2),
        (alone, "wrong_gold_label", None, 1, 1),
    ]
    summary = PullSummary.model_validate_json((run_dir / PULL_SUMMARY).read_text())
    assert summary.ties == [tied] and summary.agreement.pairs[0].kappa == pytest.approx(0.4)
    assert summary.decided == {"drop_noise": 1, "keep": 1, "wrong_gold_label": 1}


def test_keep_without_explanation_is_refused_at_pull_and_nothing_is_written(tmp_path: Path, argilla_env):
    run_dir = make_run(tmp_path / "run")
    _, dataset = pushed_queue(argilla_env, run_dir)
    reviewer = unique("rev")
    headers = annotator(argilla_env, reviewer)
    queue = annotator_queue(argilla_env, headers, dataset.id)
    first, second, third = sorted(queue)[:3]
    respond(argilla_env, headers, queue[first], "keep", "A written explanation.")
    respond(argilla_env, headers, queue[second], "keep", None)
    respond(argilla_env, headers, queue[third], "keep", "   ")
    before = sorted(p.name for p in run_dir.iterdir())
    pulled = invoke("review", "pull", run_dir)
    assert pulled.exit_code == 2, pulled.output
    message = pulled.output.replace("\n", "")
    assert f"2 `keep` responses have no explanation: {second} ({reviewer}), {third} ({reviewer})" in message
    assert "nothing was written" in message and sorted(p.name for p in run_dir.iterdir()) == before


def test_a_queue_edited_into_an_unknown_schema_is_refused_and_nothing_is_written(tmp_path: Path, argilla_env):
    import argilla as rg

    run_dir = make_run(tmp_path / "run")
    client = owner_client(argilla_env)
    name = unique("edited")
    settings = rg.Settings(
        fields=[rg.TextField(name="document", client=client)],
        questions=[
            rg.LabelQuestion(name="decision", labels=["keep", "drop", "maybe"], client=client),
            rg.TextQuestion(name="explanation", client=client),
        ],
    )
    rg.Dataset(name=name, workspace="curation", settings=settings, client=client).create()
    before = sorted(p.name for p in run_dir.iterdir())
    for command in ("push", "pull"):
        result = invoke("review", command, run_dir, "--dataset", name)
        assert result.exit_code == 2, result.output
        message = result.output.replace("\n", "")
        assert f"curation/{name} is not a curate review queue" in message and "'maybe'" in message
    assert sorted(p.name for p in run_dir.iterdir()) == before


def test_the_server_script_keeps_its_state_private_and_secrets_off_command_lines(tmp_path: Path):
    """Every file of STATE_DIR is 600 (folders 700), the log holds no key, no process got key or password as argv."""
    import os
    import subprocess

    from tests.argilla_fixtures import REPO, SCRIPT, read_env

    real = Path(os.environ.get("ARGILLA_SERVER_VENV", REPO / ".venv-argilla-server")) / "bin" / "python"
    venv, argv_log, state = tmp_path / "venv", tmp_path / "argv.log", tmp_path / "state"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "python").write_text(f'#!/bin/sh\nprintf "%s\\n" "$*" >>{argv_log}\nexec {real} "$@"\n')
    (venv / "bin" / "python").chmod(0o755)
    env = {**os.environ, "ARGILLA_SERVER_VENV": str(venv)}
    try:
        started = subprocess.run(["bash", SCRIPT, "start", state], env=env, cwd=REPO, capture_output=True, text=True)
        assert started.returncode == 0, started.stderr
        secrets = read_env(state)["ARGILLA_API_KEY"], read_env(state)["ARGILLA_OWNER_PASSWORD"]
    finally:
        subprocess.run(["bash", SCRIPT, "stop", state], env=env, cwd=REPO, capture_output=True)
    modes = {str(p.relative_to(state)): p.stat().st_mode & 0o777 for p in [state, *state.rglob("*")]}
    assert modes["."] == 0o700 and {"home/argilla.db", "stack.log", "env"} <= modes.keys()
    assert {name: mode for name, mode in modes.items() if mode not in (0o600, 0o700)} == {}
    for secret in secrets:
        assert secret not in (state / "stack.log").read_text() and secret not in argv_log.read_text()
