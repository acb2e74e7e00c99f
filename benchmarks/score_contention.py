"""`RewardModel` scoring on a shared CPU: torch's thread count fixed vs adapted (`adapt_cpu_threads`).

The small Qwen3 of `train_throughput.py` (random weights, saved once) scores `--pairs` HH-RLHF pairs in a child
process, after a warm-up call, with `adapt_cpu_threads` off and on, alternating, `--repeats` times; with
`--contention KIND` a competing process (`train_throughput.COMPETITORS`) runs during each child. Prints the median
pairs/s of each and their ratio.

    python benchmarks/score_contention.py --pairs 200 --repeats 3 --contention busy
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

from train_throughput import DEFAULT_DATA, load_model_and_tokenizer, read_pairs, run_child


def child(model: str, pairs: int, adapt: bool) -> None:
    from rewardlab import RewardModel

    scorer = RewardModel.from_pretrained(model, device="cpu", adapt_cpu_threads=adapt)
    rows = read_pairs(DEFAULT_DATA, pairs)
    scorer.score_pair_rows(rows[:16])
    start = time.perf_counter()
    scorer.score_pair_rows(rows)
    print("RESULT " + json.dumps({"pairs_per_s": len(rows) / (time.perf_counter() - start)}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pairs", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--contention", help="a kind of train_throughput.py's --contention")
    parser.add_argument("--child", nargs=2, metavar=("MODEL", "ADAPT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child[0], args.pairs, args.child[1] == "on")
        return
    model = str(Path(tempfile.mkdtemp(prefix="rewardlab-score-contention-")) / "model")
    network, tok = load_model_and_tokenizer("qwen3-small", DEFAULT_DATA)
    network.save_pretrained(model)
    tok.save_pretrained(model)
    results: dict[str, list[float]] = {"off": [], "on": []}
    for _ in range(args.repeats):
        for adapt in results:
            command = [__file__, "--pairs", str(args.pairs), "--child", model, adapt]
            results[adapt].append(run_child(command, f"adapt_cpu_threads {adapt}", args.contention)["pairs_per_s"])
    print(f"{args.pairs} pairs, small Qwen3, contention={args.contention}, {args.repeats} repeats")
    for adapt, values in results.items():
        each = [round(v, 1) for v in values]
        print(f"adapt_cpu_threads {adapt:3s}  pairs/s {statistics.median(values):7.2f}  ({each})")
    print(f"ratio on/off: {statistics.median(results['on']) / statistics.median(results['off']):.2f}x")


if __name__ == "__main__":
    main()
