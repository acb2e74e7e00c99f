"""`rewardlab score` in one process vs data-parallel under `torchrun`, on the same rows: wall time and agreement.

The small Qwen3 of `train_throughput.py` (random weights, saved once) scores `--pairs` HH-RLHF pairs, each command run
`--repeats` times, alternating: one process with 1 thread, one process with every thread, and `torchrun --nproc_per_node
2` with 1 thread per process, each the README's command (no `--device`, default chunks). The outputs must hold the same
rows in the same order with the same rewards; the median wall times (process start and model loading included) and their
ratios are printed.

    python benchmarks/score_parallel.py --pairs 4000 --repeats 2
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from train_throughput import DEFAULT_DATA, load_model_and_tokenizer, read_pairs

HELPFUL_DATA = DEFAULT_DATA.parents[1] / "hh-rlhf-helpful-base-test" / DEFAULT_DATA.name


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pairs", type=int, default=400)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--data", nargs="+", default=[str(DEFAULT_DATA), str(HELPFUL_DATA)], help="HH-RLHF files, read in turn"
    )
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="rewardlab-score-parallel-"))
    model, tok = load_model_and_tokenizer("qwen3-small", Path(args.data[0]))
    model.save_pretrained(work / "model")
    tok.save_pretrained(work / "model")
    rows = [row for path in args.data for row in read_pairs(Path(path), args.pairs)][: args.pairs]
    with gzip.open(work / "rows.jsonl.gz", "wt", encoding="utf-8") as f:
        f.writelines(json.dumps(r) + "\n" for r in rows)

    threads = os.cpu_count() or 1
    score = ["-m", "rewardlab", "score", "--model", str(work / "model"), "--dataset", str(work / "rows.jsonl.gz")]
    runs = {
        "1 process, 1 thread": ([], 1),
        f"1 process, {threads} threads": ([], threads),
        "torchrun, 2 processes x 1 thread": (["-m", "torch.distributed.run", "--nproc_per_node", "2"], 1),
    }
    times: dict[str, list[float]] = {name: [] for name in runs}
    outputs = {}
    for repeat in range(args.repeats):
        for k, (name, (launcher, omp)) in enumerate(runs.items()):
            out = work / f"out-{k}-{repeat}.jsonl"
            if "torchrun" in name:
                launcher = [*launcher, "--master_port", str(free_port())]
            env = {**os.environ, "OMP_NUM_THREADS": str(omp), "CUDA_VISIBLE_DEVICES": ""}
            start = time.perf_counter()
            command = [sys.executable, *launcher, *score, "--output", str(out)]
            done = subprocess.run(command, env=env, capture_output=True)
            times[name].append(time.perf_counter() - start)
            if done.returncode != 0:
                sys.exit(done.stderr.decode()[-3000:])
            outputs[name] = [json.loads(line) for line in out.read_text().splitlines()]

    reference = outputs["1 process, 1 thread"]
    base = statistics.median(times["1 process, 1 thread"])
    print(f"{len(rows)} pairs, small Qwen3, {args.repeats} repeats, {threads} cores")
    print(f"{'':36s} {'median s':>9s} {'pairs/s':>8s} {'speed-up':>9s}  max |reward diff|")
    for name, values in times.items():
        seconds = statistics.median(values)
        assert [r["chosen"] for r in outputs[name]] == [r["chosen"] for r in reference], name
        diff = np.abs(
            np.array([r["reward_chosen"] for r in outputs[name]]) - [r["reward_chosen"] for r in reference]
        ).max()
        print(f"{name:36s} {seconds:9.2f} {len(rows) / seconds:8.2f} {base / seconds:8.2f}x  {diff:.1e}")


if __name__ == "__main__":
    main()
