"""`train run` through typer's CliRunner: a run with overrides, and exit code 2 on bad input with nothing written."""

import json

import pytest
from safetensors.torch import load_file
from typer.testing import CliRunner

from schemas.dataset_version import load_version
from tests.train_fixtures import TOY_TASK, synthetic_rows, toy_version, write_version
from train.cli import app
from train.config import build_train_config

FAST = ["head_hidden=16", "batch_size=4", "pack_tokens=256"]


def invoke(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


def test_run_writes_vllm_loadable_adapter_head_and_metrics(tiny_model_dir, tmp_path):
    version = toy_version(tmp_path / "registry")
    config = tmp_path / "train.yaml"
    config.write_text("epochs: 3\nlearning_rate: 1.0e-3\nobjective: cls-only\n")
    out = tmp_path / "run"
    result = invoke(
        "run", "--dataset", version, "--model", tiny_model_dir, "--out", out, "--config", config, "epochs=1", *FAST
    )
    assert result.exit_code == 0, result.output
    setup = "train run: 1 process(es) (NO) on cpu, accelerate mixed precision no; base weights float32, trainable"
    assert f"{setup} weights float32, no autocast" in result.output
    events = list((out / "tracking").rglob("events.out.tfevents.*"))
    assert events, "TensorBoard logs into the run folder by default"
    rows = [json.loads(line) for line in result.output.splitlines() if line.startswith("{")]
    assert [(row["epoch"], row["split"]) for row in rows] == [(1, "train"), (1, "validation")], "one JSON row a line"
    record = json.loads((out / "train.json").read_text())
    assert record["config"]["epochs"] == 1 and record["config"]["objective"] == "cls-only"
    assert record["config"]["learning_rate"] == 1e-3 and record["dataset_version"] == "toy@1.0.0"
    epoch = out / "epoch-1"
    adapter = json.loads((epoch / "adapter_config.json").read_text())
    assert adapter["base_model_name_or_path"] == str(tiny_model_dir) and adapter["r"] == 8
    assert adapter["target_modules"] and set(adapter["target_modules"]) == {"q_proj", "k_proj", "v_proj", "o_proj"}
    keys = load_file(epoch / "adapter_model.safetensors").keys()
    assert keys and all(".lora_A.weight" in k or ".lora_B.weight" in k for k in keys)
    assert set(load_file(epoch / "cls_head.safetensors")) == {
        "net.1.weight",
        "net.1.bias",
        "net.4.weight",
        "net.4.bias",
    }
    head = json.loads((epoch / "dual_head.json").read_text())
    assert head["epoch"] == 1 and head["objective"] == "cls-only" and head["task_spec"]["name"] == TOY_TASK.name
    assert [json.loads(line)["split"] for line in (out / "metrics.jsonl").read_text().splitlines()] == [
        "train",
        "validation",
    ]
    assert not list(out.glob(".epoch-*"))


def bad_versions(tmp_path):
    missing = write_version(
        tmp_path / "registry", "noexp", "1.0.0", {"train": synthetic_rows(4, 1)}, TOY_TASK, drop=("explanation",)
    )
    modified = toy_version(tmp_path / "registry", version="2.0.0")
    manifest = json.loads((modified / "manifest.json").read_text())
    manifest["splits"]["train"]["sha256"] = "0" * 64
    (modified / "manifest.json").write_text(json.dumps(manifest))
    return missing, modified


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("missing_explanation", "lacks the column(s) ['explanation']"),
        ("hash_mismatch", "does not match the manifest"),
        ("unknown_model", "cannot load a tokenizer from --model"),
        ("bad_override", "is not key=value"),
        ("unknown_key", "no_such_field"),
        ("not_a_version", "is not a published dataset version"),
        ("dataset_folder", "registry/toy holds versions 2.0.0, 3.0.0: pass one, e.g. --dataset"),
    ],
)
def test_bad_input_exits_2_and_writes_nothing(tiny_model_dir, tmp_path, case, message):
    missing, modified = bad_versions(tmp_path)
    good = toy_version(tmp_path / "registry", version="3.0.0")
    dataset, model, extra = good, tiny_model_dir, []
    if case == "missing_explanation":
        dataset = missing
    elif case == "hash_mismatch":
        dataset = modified
    elif case == "unknown_model":
        model = tmp_path / "no-such-model"
    elif case == "bad_override":
        extra = ["epochs"]
    elif case == "unknown_key":
        extra = ["no_such_field=1"]
    elif case == "not_a_version":
        dataset = tmp_path
    elif case == "dataset_folder":
        dataset = tmp_path / "registry" / "toy"
    out = tmp_path / "run"
    result = invoke("run", "--dataset", dataset, "--model", model, "--out", out, *extra)
    assert result.exit_code == 2, result.output
    assert message in " ".join(result.output.split())
    assert not out.exists()


def test_a_dataset_folder_lists_its_versions_newest_last(tmp_path):
    for version in ("1.10.0", "1.9.0", "1.2.0", "2.0.0-staging"):
        (tmp_path / "cf" / version).mkdir(parents=True)
        (tmp_path / "cf" / version / "manifest.json").write_text("{}")
    (tmp_path / "cf" / "3.0.0").mkdir()  # no manifest: not published
    with pytest.raises(ValueError, match=r"holds versions 1\.2\.0, 1\.9\.0, 1\.10\.0: pass one, e\.g\. --dataset"):
        load_version(tmp_path / "cf")
    with pytest.raises(ValueError, match="is not a published dataset version"):
        load_version(tmp_path / "cf" / "3.0.0")


def test_model_default_is_the_embedded_smollm2_folder(smollm2_dir, tmp_path, monkeypatch):
    seen = {}
    monkeypatch.setattr("train.loop.train_run", lambda cfg, dataset, model, out, resume_from: seen.update(model=model))
    result = invoke("run", "--dataset", tmp_path, "--model", "default", "--out", tmp_path / "run")
    assert result.exit_code == 0, result.output
    assert seen["model"] == str(smollm2_dir) and (smollm2_dir / "config.json").is_file()


def test_overrides_go_over_the_file_and_key_null_sets_null(tmp_path):
    config = tmp_path / "train.yaml"
    config.write_text("epochs: 3\nmax_input_tokens: 100\n")
    cfg = build_train_config(config, ["epochs=1", "max_input_tokens=null", "lora_target_modules=[q_proj]"])
    assert (cfg.epochs, cfg.max_input_tokens, cfg.lora_target_modules) == (1, None, ["q_proj"])
    assert build_train_config(config, []).max_input_tokens == 100
    config.write_text("epochs: zero\n")
    with pytest.raises(ValueError, match=r"invalid train config in .*train\.yaml(.|\n)*epochs"):
        build_train_config(config, [])


def test_existing_run_with_another_config_is_refused_and_more_epochs_continue_it(tiny_model_dir, tmp_path):
    version = toy_version(tmp_path / "registry")
    out = tmp_path / "run"
    run = ["run", "--dataset", version, "--model", tiny_model_dir, "--out", out, *FAST]
    assert invoke(*run, "epochs=1").exit_code == 0
    before = sorted(p.name for p in out.iterdir())
    result = invoke(*run, "epochs=1", "learning_rate=3e-4")
    assert result.exit_code == 2 and "another config" in result.output
    assert sorted(p.name for p in out.iterdir()) == before

    more = invoke(*run, "epochs=2")
    assert more.exit_code == 0, more.output
    assert json.loads((out / "train.json").read_text())["config"]["epochs"] == 2
    steps = [json.loads(line) for line in (out / "steps.jsonl").read_text().splitlines()]
    assert [(s["epoch"], s["step"]) for s in steps] == [(1, 1), (1, 2), (2, 3), (2, 4)]
    assert steps[2]["lr"] > 0.0, "the continued epoch decays over the new length, not from the finished run's 0"
    fewer = invoke(*run, "epochs=1")
    assert fewer.exit_code == 2 and "ask for more epochs than 2" in " ".join(fewer.output.split())


def test_a_dev_split_with_one_class_is_refused_unless_allowed(tiny_model_dir, tmp_path):
    positives = [row for row in synthetic_rows(6, 2) if row["label"] == 1]
    splits = {"train": synthetic_rows(8, 1), "validation": positives}
    version = write_version(tmp_path / "registry", "onecls", "1.0.0", splits, TOY_TASK)
    out = tmp_path / "run"
    refused = invoke("run", "--dataset", version, "--model", tiny_model_dir, "--out", out, "epochs=1", *FAST)
    assert refused.exit_code == 2, refused.output
    message = " ".join(refused.output.split())
    assert "validation has no negative examples (FALSE), so dev AUROC is undefined" in message
    assert "allow_one_class_dev=true" in message and not out.exists()
    allowed = invoke(
        "run",
        "--dataset",
        version,
        "--model",
        tiny_model_dir,
        "--out",
        out,
        "epochs=1",
        "allow_one_class_dev=true",
        *FAST,
    )
    assert allowed.exit_code == 0, allowed.output
    dev = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()][-1]
    assert dev["split"] == "validation" and dev["auroc"] is None
