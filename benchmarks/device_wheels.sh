#!/usr/bin/env bash
# Fetch, on a machine with pip access, the wheels the lent GPU machine lacks for the GPU benchmarks
# (its image has torch, accelerate, peft, tokenizers, safetensors, pyarrow, pandas; not trl, datasets,
# math-verify, liger-kernel, and transformers 5.17 instead of 5.23). They go to .whl/, which git must
# ignore (`echo /.whl/ >> .git/info/exclude`); the device call carries .whl and installs them with
#   python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
#   export PYTHONPATH=/tmp/site:$PWD/src
# Pure-Python wheels only (py3-none-any), about 15 MB together: well under the 64 MiB a call may carry.
# If the device's pyarrow is older than 24 (datasets 5.2 needs >= 24), add pyarrow==26.0.1 for
# manylinux x86-64 / cp312 (about 45 MB) and leave liger-kernel out to stay under the limit.
set -euo pipefail
cd "$(dirname "$0")/.."
grep -qx '/.whl/' .git/info/exclude 2>/dev/null || echo /.whl/ >> .git/info/exclude
python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
  -d .whl \
  trl==1.16.0 transformers==5.23.0 datasets==5.2.0 dill==0.4.1 multiprocess==0.70.19 \
  math-verify==0.9.0 latex2sympy2_extended==1.11.0 antlr4-python3-runtime==4.13.2 liger-kernel==0.8.5
ls -la .whl
