#!/usr/bin/env bash
# Install everything the tests need, check style, then run the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh test
# DeepSpeed, for its ZeRO tests on CPU, ships only a source package whose build imports torch: build it against the
# installed CPU torch (build isolation would fetch a CUDA torch). Elsewhere those tests skip and say why.
.venv/bin/python -m pip install -q --disable-pip-version-check --no-build-isolation "deepspeed==0.19.8" \
    || echo "scripts/test.sh: could not install deepspeed; its tests will skip"
# The report test opens report.html in headless Chromium (Debian's chromium + chromium-driver). Install them when
# this machine can (root with apt); elsewhere that one test skips and says why.
if ! command -v chromedriver >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    apt-get install -y -q chromium chromium-driver >/dev/null 2>&1 \
        || { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q chromium chromium-driver >/dev/null 2>&1; } \
        || echo "scripts/test.sh: could not install chromium; the browser test will skip"
fi
.venv/bin/ruff check .
.venv/bin/ruff format --check .
exec .venv/bin/python -m pytest -n 2 --dist loadfile "$@"
