#!/usr/bin/env bash
# Create .venv (if missing) and install rewardlab with the given extras into it.
# torch==2.13.0 is installed first and on its own, from PyTorch's CPU index (on Linux, PyPI's torch is the
# multi-gigabyte CUDA build): with it in place, pip sees `torch>=2.4` as satisfied and never pulls the CUDA build.
# A torch that is already installed (e.g. a CUDA build you chose) is kept.
set -euo pipefail
cd "$(dirname "$0")/.."
extras="${1:-}"
if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
fi
py=.venv/bin/python
$py -m pip install -q --disable-pip-version-check --upgrade pip >/dev/null 2>&1 || true
if ! $py -c "import torch" >/dev/null 2>&1; then
    $py -m pip install -q --disable-pip-version-check --index-url https://download.pytorch.org/whl/cpu "torch==2.13.0"
fi
spec="."
[ -n "$extras" ] && spec=".[$extras]"
$py -m pip install -q --disable-pip-version-check -e "$spec"
