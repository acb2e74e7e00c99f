"""The demo's recipe, chosen by measurement: held-out accuracy and wall time of `rewardlab demo` settings.

Each setting runs `rewardlab demo` in its own process, one after another (the machine's cores to itself), on the
demo's fixed 400 held-out HH-RLHF pairs; the script prints each run's accuracy before and after training and its
wall time (training, both evaluations, the report), as the demo reports them.

    python benchmarks/demo_sweep.py                       # the settings below
    python benchmarks/demo_sweep.py --only 2 3            # some of them
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys

# name: the demo's flags (training pairs, batch, max_length, learning rates).
SETTINGS = {
    "defaults before the sweep": "",
    "lr 5e-5, batch 8, 512 tokens": "--learning_rate 5e-5 --per_device_train_batch_size 8 --max_length 512",
    "lr 5e-5, batch 8, 512 tokens, head 1e-3": "--learning_rate 5e-5 --per_device_train_batch_size 8 --max_length 512 "
    "--head_learning_rate 1e-3",
    "lr 5e-5, batch 8, 256 tokens, head 1e-3, 2400 pairs": "--learning_rate 5e-5 --per_device_train_batch_size 8 "
    "--head_learning_rate 1e-3 --max_train_pairs 2400",
    "defaults, every training pair (4,266), one epoch": "--max_train_pairs 0",
}


def run(flags: list[str], output_dir: str) -> dict:
    command = [sys.executable, "-m", "rewardlab", "demo", "--output_dir", output_dir, *flags]
    proc = subprocess.run(command, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr[-3000:])
    after = re.search(r"After training : accuracy (\d\.\d+)", proc.stdout)
    before = re.search(r"Before training: accuracy (\d\.\d+)", proc.stdout)
    wall = re.search(r"Wall time: (.+)", proc.stdout)
    return {
        "before": float(before.group(1)),
        "after": float(after.group(1)),
        "demo wall time": wall.group(1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", type=int, nargs="*", help="positions in SETTINGS to run (default: all)")
    parser.add_argument("--output_dir", default="/tmp/rewardlab-demo-sweep")
    args = parser.parse_args()
    chosen = [(i, name) for i, name in enumerate(SETTINGS) if not args.only or i in args.only]
    print("| setting | flags | accuracy before | accuracy after | demo wall time |")
    print("|---|---|---|---|---|")
    for i, name in chosen:
        flags = SETTINGS[name].split()
        result = run(flags, f"{args.output_dir}/{i}")
        shown = SETTINGS[name] or "(none)"
        print(f"| {name} | `{shown}` | {result['before']:.3f} | {result['after']:.3f} | {result['demo wall time']} |")


if __name__ == "__main__":
    main()
