"""Is an ensemble's disagreement larger on the pairs it gets wrong? Real model, real data.

Trains all-MiniLM-L6-v2 (the demo's settings: max_length 256, batch 16, lr 1e-4, one epoch) with `--heads` score heads
and bootstrap resampling, then scores held-out real sets. A pair's uncertainty is the std across heads of
`r_chosen - r_rejected`; the script prints its mean on pairs ranked right and wrong, the difference with a 95%
bootstrap interval, the AUROC of the uncertainty as a detector of wrong pairs (0.5: no relation), and, as a
reference, the AUROC of the plain confidence `-|mean margin|`, which needs no ensemble.

    python benchmarks/ensemble_uncertainty.py --heads 5 --train hh --max_train_pairs 1600
    python benchmarks/ensemble_uncertainty.py --heads 5 --train ultrafeedback
    python benchmarks/ensemble_uncertainty.py --heads 5 --train rmb --max_train_pairs 4000

Training sets: `hh` the demo's bundled HH-RLHF pairs; `ultrafeedback` the 1,000 UltraFeedback training pairs; `rmb`
RMB-pairwise helpfulness (8,456 pairs, many LLMs' answers judged by an LLM), the one set here MiniLM learns well
(held-out accuracy ~0.7): its first 1,000 pairs after a fixed shuffle are held out.

Separately trained models (a deep ensemble, `rewardlab.RewardEnsemble`) are measured by
`deep_ensemble_uncertainty.py`, on the same RMB split.
"""

from __future__ import annotations

import argparse
import gzip
import json
import random
from pathlib import Path

import numpy as np
from public_data import DATA_ROOT


def read_jsonl(path: Path) -> list[dict]:
    with gzip.open(path, "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def rmb_rows(goal: str) -> list[dict]:
    """RMB pairwise rows as standard pairs with an explicit prompt, in a fixed shuffled order. The conversation is
    written out as `role: content` lines, since MiniLM has no chat template."""
    rows = read_jsonl(DATA_ROOT / f"rmb-pairwise/{goal}.jsonl.gz")
    random.Random(0).shuffle(rows)
    out = []
    for r in rows:
        prompt = "".join(f"{m['role']}: {m['content']}\n" for m in r["conversation_input"]) + "assistant: "
        out.append({"prompt": prompt, "chosen": r["chosen"]["answer"], "rejected": r["reject"]["answer"]})
    return [r for r in out if r["chosen"] != r["rejected"]]


def ultrafeedback_rows(split: str) -> list[dict]:
    rows = read_jsonl(DATA_ROOT / f"ultrafeedback-binarized-subset/{split}_clean.jsonl.gz")
    return [{"prompt": r["prompt"], "chosen": r["chosen"], "rejected": r["rejected"]} for r in rows]


def report(name: str, std: np.ndarray, wrong: np.ndarray, margin: np.ndarray) -> dict:
    from rewardlab.metrics.intervals import uncertainty_gap
    from rewardlab.metrics.uncertainty import auroc, uncertainty_metrics

    keep = np.isfinite(std)
    std, wrong, margin = std[keep], wrong[keep], margin[keep]
    out = {
        "set": name,
        "pairs": int(len(std)),
        "accuracy": round(float(1 - wrong.mean()), 3),
        **uncertainty_metrics(std, wrong),
        "difference": uncertainty_gap(std, wrong, n_bootstrap=2000),
        "confidence_auroc": auroc(-np.abs(margin), wrong),
    }
    print(json.dumps(out), flush=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--heads", type=int, default=5)
    parser.add_argument("--train", choices=["hh", "ultrafeedback", "rmb"], default="hh")
    parser.add_argument("--max_train_pairs", type=int, default=0, help="0: the whole training set")
    parser.add_argument("--epochs", type=float, default=1.0)
    parser.add_argument("--max_length", type=int, default=256)
    parser.add_argument("--eval_pairs", type=int, default=800, help="pairs of each evaluation set (at most)")
    parser.add_argument("--output_dir", default="/tmp/rewardlab-ensemble")
    args = parser.parse_args()

    from datasets import Dataset

    from rewardlab.cli.demo import build_parser, demo_config, demo_splits, load_demo_files, minilm_path
    from rewardlab.score.reward_model import RewardModel
    from rewardlab.train.trainer import RewardTrainer

    demo_args = build_parser().parse_args(
        [
            "--output_dir",
            args.output_dir,
            "--max_train_pairs",
            str(args.max_train_pairs if args.train == "hh" else 0),
            "--num_train_epochs",
            str(args.epochs),
            "--max_length",
            str(args.max_length),
        ]
    )
    hh_train, hh_held_out = demo_splits(load_demo_files(), demo_args.eval_pairs)
    rmb_help = rmb_rows("helpfulness")
    rmb_held_out = rmb_help[:1000]
    if args.train == "hh":
        train = hh_train
    else:
        rows = ultrafeedback_rows("train") if args.train == "ultrafeedback" else rmb_help[1000:]
        train = Dataset.from_list(rows[: args.max_train_pairs or None])
    sets = {
        "RMB helpfulness held-out": rmb_held_out,
        "RMB harmlessness": rmb_rows("harmlessness"),
        "UltraFeedback eval": ultrafeedback_rows("eval"),
        "HH-RLHF held-out (demo split)": [dict(r) for r in hh_held_out],
    }
    sets = {name: rows[: args.eval_pairs] for name, rows in sets.items()}

    config = demo_config(demo_args, len(train))
    config.ensemble_heads, config.ensemble_bootstrap = args.heads, True
    trainer = RewardTrainer(model=minilm_path(), args=config, train_dataset=train)
    trainer.train()
    trainer.save_model(args.output_dir)
    scorer = RewardModel.from_pretrained(args.output_dir, device="cpu")
    for name, eval_rows in sets.items():
        scores = scorer.score_pair_rows(eval_rows)
        margin = np.array(scores.rewards_chosen) - np.array(scores.rewards_rejected)
        report(name, np.array(scores.std_margin), margin <= 0, margin)


if __name__ == "__main__":
    main()
