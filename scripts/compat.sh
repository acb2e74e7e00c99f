#!/usr/bin/env bash
# Run the test suite against one set of versions, in a venv of its own, to fill the compatibility table in
# docs/compatibility.md:
#
#   bash scripts/compat.sh TORCH TRANSFORMERS [PYTEST ARGS...]
#   bash scripts/compat.sh 2.13.0 5.18.0 -m "not slow"     # the fast part, at the floor
#   bash scripts/compat.sh 2.14.1 5.25.0                    # the whole suite, at the newest
#
# The venv is .venv-compat/torch-TORCH-transformers-TRANSFORMERS (kept between runs). torch is installed first and
# alone, as scripts/install.sh does, then transformers at the given version, then rewardlab with its test extras
# (which keep both pins). Without PYTEST ARGS the whole suite runs. The last line says the versions and the result.
set -uo pipefail
cd "$(dirname "$0")/.."
if [ $# -lt 2 ]; then
    echo "usage: bash scripts/compat.sh TORCH_VERSION TRANSFORMERS_VERSION [PYTEST ARGS...]" >&2
    exit 2
fi
torch_version=$1 transformers_version=$2
shift 2
venv=".venv-compat/torch-$torch_version-transformers-$transformers_version"
[ -x "$venv/bin/python" ] || python3 -m venv "$venv" || exit 1
py="$venv/bin/python"
pip=("$py" -m pip install -q --disable-pip-version-check)
"${pip[@]}" "torch==$torch_version" || exit 1
"${pip[@]}" "transformers==$transformers_version" -e ".[test]" "torch==$torch_version" || exit 1
versions=$("$py" -c "import sys, torch, transformers; print(f'python {sys.version.split()[0]}, torch {torch.__version__}, transformers {transformers.__version__}')")
"$py" -m pytest -q -n 2 --dist loadfile -p no:cacheprovider "$@" tests
status=$?
echo "compat: $versions: $([ $status = 0 ] && echo passed || echo "FAILED (pytest exit $status)")"
exit $status
