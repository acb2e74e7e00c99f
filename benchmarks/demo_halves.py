"""The demo's training, with held-out accuracy on each half (HH helpful-base, HH harmless-base) and a choice of
which half to train on: why the demo's mixed held-out set is hard for MiniLM. `--train_on objectives` trains both
halves as two objectives (a head each, and the prompt gate of `--gate`) and scores the mixed set with the heads
weighed by the gate, each held-out half with its own head (the objective known: an upper bound for any gate), and
the mixed set with the two heads weighed equally.

It uses the demo's own splits and config (`rewardlab.cli.demo`), so a run with `--train_on both` trains what
`rewardlab demo` with the same flags trains; it skips the demo's evaluation before training and its report.

    python benchmarks/demo_halves.py --train_on harmless --learning_rate 5e-5 --per_device_train_batch_size 8 \
        --max_length 512 --max_train_pairs 1800
    python benchmarks/demo_halves.py --max_length 128 --max_train_pairs 0 --num_train_epochs 2
    python benchmarks/demo_halves.py --train_on objectives
    python benchmarks/demo_halves.py --train_on objectives --length_grouped_tokens 0   # token-budgeted steps
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any

import numpy as np

from rewardlab.cli.demo import build_parser, demo_config, demo_splits, load_demo_files, minilm_path
from rewardlab.metrics import evaluate_pairs
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


def scored(trainer: Any, rows: list[dict], objective: str | None = None, weights: str | None = None) -> Any:
    """The trained model's `PairScores` of `rows` (with one objective's head, or weighed heads)."""
    return RewardModel.from_trainer(trainer, objective=objective, weights=weights).score_pair_rows(rows)


def against_length_rules(name: str, *parts: Any) -> dict[str, Any]:
    """Accuracy of the pairs of `parts` (`PairScores`) and, on the same pairs, the best content-blind rule (longer or
    shorter wins, on the real lengths before truncation)."""
    joined = {
        key: np.concatenate([getattr(p, key) for p in parts])
        for key in ("rewards_chosen", "rewards_rejected", "chosen_full_tokens", "rejected_full_tokens")
    }
    report = evaluate_pairs(
        joined["rewards_chosen"],
        joined["rewards_rejected"],
        rule_lengths=(joined["chosen_full_tokens"], joined["rejected_full_tokens"]),
        n_bootstrap=1000,
        fit_temperature=False,
    )
    best = report["baselines"]["best"]
    return {
        name: report["accuracy"]["value"],
        f"{name}_ci95": report["accuracy"]["ci95"],
        f"{name}_best_length_rule": [best, report["baselines"][best]],
    }


def main() -> None:
    parser = build_parser()
    parser.add_argument("--train_on", default="both", choices=["both", "helpful", "harmless", "objectives"])
    parser.add_argument("--gate", default="labels", help="with --train_on objectives: RewardConfig.gate")
    parser.add_argument("--gate_coefficient", type=float, default=1.0)
    parser.add_argument(
        "--length_grouped_tokens",
        type=int,
        help="RewardConfig.length_grouped_tokens; 0: --batch_size pairs' worth of the training pairs' mean tokens",
    )
    parser.add_argument("--compile_layers", action="store_true", help="RewardConfig.compile_layers")
    args = parser.parse_args()
    start = time.perf_counter()
    objectives = args.train_on == "objectives"
    args.one_head = not objectives
    parts = load_demo_files(objectives=objectives)  # with objectives, each row names its file's
    pool, held_out = demo_splits(parts, args.eval_pairs)
    train = one_half(pool, held_out, parts, args.eval_pairs, args.train_on)[0]
    n_helpful_eval = len(one_half(pool, held_out, parts, args.eval_pairs, "helpful")[1])
    config = demo_config(args, len(train))
    if objectives:
        config.gate, config.gate_coefficient = args.gate, args.gate_coefficient
    config.compile_layers = args.compile_layers
    trainer = RewardTrainer(model=minilm_path(), args=config, train_dataset=train)
    if args.length_grouped_tokens is not None:
        budget = args.length_grouped_tokens
        if budget == 0:
            costs = trainer.data_collator.token_costs(trainer.train_dataset.to_list())
            budget = round(args.per_device_train_batch_size * sum(costs) / len(costs))
        trainer.args.length_grouped_tokens = budget
    trainer.train()
    train_seconds = time.perf_counter() - start
    rows = [held_out[i] for i in range(len(held_out))]
    halves = {"helpful": rows[:n_helpful_eval], "harmless": rows[n_helpful_eval:]}
    if objectives:  # each half by its own head; the mixed set also by the gate and by the heads weighed equally
        scores = {half: scored(trainer, part, objective=half) for half, part in halves.items()}
        equal = scored(trainer, rows, weights="helpful=0.5,harmless=0.5")
        gated = scored(trainer, rows) if args.gate != "none" else None
    else:
        scores = {half: scored(trainer, part) for half, part in halves.items()}
    losses = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
    result = {
        "flags": sys.argv[1:],
        **against_length_rules("mixed", *scores.values()),
        **against_length_rules("helpful", scores["helpful"]),
        **against_length_rules("harmless", scores["harmless"]),
        "training_loss_first_last_logged": losses[:1] + losses[-1:],
        "train_seconds": round(train_seconds),
        "steps": trainer.state.global_step,
        "length_grouped_tokens": trainer.args.length_grouped_tokens,
    }
    if objectives:
        result.update(against_length_rules("mixed_equal_weights", equal))
        if gated is not None:
            result.update(against_length_rules("mixed_gate", gated))
            gate = np.array(gated.gate_weights)
            right = np.r_[gate[:n_helpful_eval, 0] > 0.5, gate[n_helpful_eval:, 1] > 0.5]
            result["gate_accuracy"] = float(right.mean())
    print(json.dumps(result))


if __name__ == "__main__":
    main()
