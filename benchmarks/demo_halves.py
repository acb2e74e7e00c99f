"""The demo's training, with held-out accuracy on each half (HH helpful-base, HH harmless-base) and a choice of
which half to train on: why the demo's mixed held-out set is hard for MiniLM. `--train_on objectives` trains both
halves as two objectives (a head each) and scores each held-out half with its own head (the objective known: an
upper bound for any gate) and the mixed set with the two heads weighed equally.

It uses the demo's own splits and config (`rewardlab.cli.demo`), so a run with `--train_on both` trains what
`rewardlab demo` with the same flags trains; it skips the demo's evaluation before training and its report.

    python benchmarks/demo_halves.py --train_on harmless --learning_rate 5e-5 --batch_size 8 --max_length 512 \
        --max_train_pairs 1800
    python benchmarks/demo_halves.py --max_length 128 --max_train_pairs 0 --epochs 2
    python benchmarks/demo_halves.py --train_on objectives
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any

import numpy as np

from rewardlab.cli.demo import build_parser, demo_config, demo_splits, load_demo_files, minilm_path
from rewardlab.score.reward_model import RewardModel
from rewardlab.train.trainer import RewardTrainer


def one_half(train: Any, held_out: Any, parts: list[Any], eval_pairs: int, half: str) -> tuple[Any, Any]:
    """The demo's training pool and held-out pairs restricted to one file, "helpful" or "harmless" ("both": all).

    `demo_splits` concatenates the files in order, the helpful file's pairs first in both splits."""
    if half in ("both", "objectives"):
        return train, held_out
    n_eval = (eval_pairs + 1) // 2  # the first file takes the odd pair
    n_train = len(parts[0]) - n_eval
    if half == "helpful":
        return train.select(range(n_train)), held_out.select(range(n_eval))
    return train.select(range(n_train, len(train))), held_out.select(range(n_eval, len(held_out)))


def correct(trainer: Any, rows: list[dict], objective: str | None = None, weights: str | None = None) -> np.ndarray:
    """Whether the trained model ranks each pair right (with one objective's head, or weighed heads)."""
    scores = RewardModel.from_trainer(trainer, objective=objective, weights=weights).score_pair_rows(rows)
    return np.asarray(scores.rewards_chosen) > np.asarray(scores.rewards_rejected)


def main() -> None:
    parser = build_parser()
    parser.add_argument("--train_on", default="both", choices=["both", "helpful", "harmless", "objectives"])
    args = parser.parse_args()
    start = time.perf_counter()
    parts = load_demo_files()
    pool, held_out = demo_splits(parts, args.eval_pairs)
    train = one_half(pool, held_out, parts, args.eval_pairs, args.train_on)[0]
    n_helpful_eval = len(one_half(pool, held_out, parts, args.eval_pairs, "helpful")[1])
    objectives = args.train_on == "objectives"
    if objectives:
        n_helpful_train = len(one_half(pool, held_out, parts, args.eval_pairs, "helpful")[0])
        names = ["helpful"] * n_helpful_train + ["harmless"] * (len(train) - n_helpful_train)
        train = train.add_column("objective", names)
    config = demo_config(args, len(train))
    if objectives:
        config.objectives = ["helpful", "harmless"]
    trainer = RewardTrainer(model=minilm_path(), args=config, train_dataset=train)
    trainer.train()
    train_seconds = time.perf_counter() - start
    rows = [held_out[i] for i in range(len(held_out))]
    if objectives:  # each half by its own head; the mixed set also by the heads weighed equally
        right = np.concatenate(
            [correct(trainer, rows[:n_helpful_eval], "helpful"), correct(trainer, rows[n_helpful_eval:], "harmless")]
        )
        equal = correct(trainer, rows, weights="helpful=0.5,harmless=0.5")
    else:
        right = correct(trainer, rows)
    losses = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
    result = {
        "flags": sys.argv[1:],
        "accuracy": float(right.mean()),
        "helpful": float(right[:n_helpful_eval].mean()),
        "harmless": float(right[n_helpful_eval:].mean()),
        "training_loss_first_last_logged": losses[:1] + losses[-1:],
        "train_seconds": round(train_seconds),
    }
    if objectives:
        result["accuracy_equal_weights"] = float(equal.mean())
    print(json.dumps(result))


if __name__ == "__main__":
    main()
