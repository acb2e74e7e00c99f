"""Is an ensemble's disagreement larger on the pairs it gets wrong? Real model, real data.

Trains the demo's reward model (all-MiniLM-L6-v2 on the bundled HH-RLHF pairs, same settings as `rewardlab demo`)
with `--heads` score heads and bootstrap resampling, then scores held-out real sets. A pair's uncertainty is the std
across heads of `r_chosen - r_rejected`; the script prints its mean on pairs ranked right and wrong, the difference
with a 95% bootstrap interval, and the AUROC of the uncertainty as a detector of wrong pairs (0.5: no relation).

    python benchmarks/ensemble_uncertainty.py --heads 5 --max_train_pairs 1600
    python benchmarks/ensemble_uncertainty.py --heads 5 --train ultrafeedback --epochs 2

`--train ultrafeedback` trains on the 1,000 UltraFeedback training pairs instead (GPT-4-judged, easier for a small
encoder to learn than HH-RLHF) with the demo's other settings and `--max_length`.
"""

from __future__ import annotations

import argparse
import gzip
import json
from pathlib import Path

import numpy as np

SHARED = Path(__file__).resolve().parents[2] / "shared/data"


def read_jsonl(path: Path, n: int) -> list[dict]:
    with gzip.open(path, "rt", encoding="utf-8") as f:
        return [json.loads(line) for _, line in zip(range(n), f, strict=False)]


def report(name: str, std: np.ndarray, wrong: np.ndarray, seed: int = 0) -> dict:
    from rewardlab.ensemble import uncertainty_metrics

    keep = np.isfinite(std)
    std, wrong = std[keep], wrong[keep]
    metrics = uncertainty_metrics(std, wrong)
    rng = np.random.default_rng(seed)
    diffs = []
    for _ in range(2000):
        i = rng.integers(len(std), size=len(std))
        s, w = std[i], wrong[i]
        if w.any() and (~w).any():
            diffs.append(s[w].mean() - s[~w].mean())
    low, high = np.percentile(diffs, [2.5, 97.5])
    out = {"set": name, "pairs": int(len(std)), "accuracy": float(1 - wrong.mean()), **metrics,
           "diff_ci95": [float(low), float(high)]}  # fmt: skip
    print(json.dumps(out), flush=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--heads", type=int, default=5)
    parser.add_argument("--max_train_pairs", type=int, default=1600)
    parser.add_argument("--output_dir", default="/tmp/rewardlab-ensemble")
    parser.add_argument("--uf_pairs", type=int, default=500)
    parser.add_argument("--train", choices=["hh", "ultrafeedback"], default="hh")
    parser.add_argument("--epochs", type=float, default=1.0)
    parser.add_argument("--max_length", type=int, default=256)
    args = parser.parse_args()

    from rewardlab.demo import build_parser, demo_config, demo_splits, load_demo_files, minilm_path
    from rewardlab.scoring import RewardModel
    from rewardlab.trainer import RewardTrainer

    cap = str(args.max_train_pairs if args.train == "hh" else 0)
    demo_args = build_parser().parse_args(["--output_dir", args.output_dir, "--max_train_pairs", cap, "--epochs",
                                           str(args.epochs), "--max_length", str(args.max_length)])  # fmt: skip
    train, held_out = demo_splits(load_demo_files(), demo_args.eval_pairs)
    if args.train == "ultrafeedback":
        from datasets import Dataset

        train = Dataset.from_list([
            {"prompt": r["prompt"], "chosen": r["chosen"], "rejected": r["rejected"]}
            for r in read_jsonl(SHARED / "ultrafeedback-binarized-subset/train_clean.jsonl.gz", 10**6)
        ])  # fmt: skip
        held_out = None
    config = demo_config(demo_args, len(train))
    config.ensemble_heads, config.ensemble_bootstrap = args.heads, True
    trainer = RewardTrainer(model=minilm_path(), args=config, train_dataset=train, eval_dataset=held_out)
    trainer.train()
    if held_out is not None:
        metrics = trainer.evaluate()
        print("trainer eval:", json.dumps({k: v for k, v in metrics.items() if "ensemble" in k or "accuracy" in k}))
    trainer.save_model(args.output_dir)
    _, held_out = demo_splits(load_demo_files(), demo_args.eval_pairs)

    scorer = RewardModel.from_pretrained(args.output_dir, device="cpu")
    sets = {
        "HH-RLHF held-out (demo split)": [dict(r) for r in held_out],
        "UltraFeedback eval": [
            {"prompt": r["prompt"], "chosen": r["chosen"], "rejected": r["rejected"]}
            for r in read_jsonl(SHARED / "ultrafeedback-binarized-subset/eval_clean.jsonl.gz", args.uf_pairs)
        ],
    }
    for name, rows in sets.items():
        scores = scorer.score_pair_rows(rows)
        rc, rr = np.array(scores.rewards_chosen), np.array(scores.rewards_rejected)
        report(name, np.array(scores.std_margin), rc <= rr)


if __name__ == "__main__":
    main()
