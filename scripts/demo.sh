#!/usr/bin/env bash
# The main job: install, then train a reward model on the bundled HH-RLHF data and print its held-out accuracy.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh demo,peft
exec .venv/bin/rewardlab demo "$@"
