"""Speed turned into accuracy: held-out accuracy against training time, rewardlab vs TRL 1.16, same model and data.

Each library trains all-MiniLM-L6-v2 for one epoch over the same HH-RLHF pairs (the demo's training pool, the first
`--train_pairs` after a fixed shuffle) with the same settings, in its own process, one after the other. Every
`--interval` seconds of training, and at the end, the model as it is is scored on the demo's held-out pairs (400, or
the 200 of one file with `--half`) by one scorer for both (rewardlab's `RewardModel` in padded batches: the same
tokenization, truncation and attention whichever library trained it); the training clock stops while it scores.
TRL drops pairs longer than `max_length` (its policy), rewardlab cuts their prompts: each trains on what its own
policy keeps. Both start from the same random score head. Prints a table, writes the curves to `--plot`.

    python benchmarks/time_to_accuracy.py --train_pairs 1600 --interval 60
    python benchmarks/time_to_accuracy.py --train_pairs 1600 --interval 120 --batch_size 16 --learning_rate 1e-4 \
        --max_length 256                                  # the demo's recipe
    python benchmarks/time_to_accuracy.py --half harmless --train_pairs 1800 --interval 120   # a recipe that learns
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time


def one_run(library: str, train_pairs: int, interval: float, settings: dict) -> list[tuple[float, float]]:
    """Train with `library`, scoring the held-out pairs every `interval` training seconds: (seconds, accuracy)."""
    import numpy as np
    from datasets import Dataset
    from transformers import AutoModelForSequenceClassification, AutoTokenizer, TrainerCallback, set_seed

    from rewardlab.cli.demo import demo_splits, load_demo_files, minilm_path
    from rewardlab.score.reward_model import RewardModel

    if library == "trl":
        from trl import RewardConfig, RewardTrainer
    else:
        from rewardlab import RewardConfig, RewardTrainer
    from demo_halves import one_half

    parts = load_demo_files()
    train, held_out = one_half(*demo_splits(parts, 400), parts, 400, settings["half"])
    rows = train.shuffle(seed=0).select(range(train_pairs)).to_list()
    train = Dataset.from_list([r for r in rows if r["chosen"] != r["rejected"]])
    held_out_rows = held_out.to_list()
    path = minilm_path()
    tok = AutoTokenizer.from_pretrained(path)
    tok.eos_token = "[SEP]"  # MiniLM ends every text with [SEP]: nothing is appended
    set_seed(42)  # the same random score head for both libraries
    model = AutoModelForSequenceClassification.from_pretrained(path, num_labels=1)
    curve: list[tuple[float, float]] = []

    def accuracy(model) -> float:
        was_training = model.training
        scorer = RewardModel(
            model,
            tok,
            max_length=settings["max_length"],
            eos_token="[SEP]",
            padding_free=False,
            adapt_cpu_threads=False,
        )
        scores = scorer.score_pair_rows(held_out_rows)
        model.train(was_training)
        return float(np.mean(np.array(scores.rewards_chosen) > np.array(scores.rewards_rejected)))

    class EvaluateEveryInterval(TrainerCallback):
        """Scores the model every `interval` seconds of training; time spent scoring is not training time."""

        def __init__(self):
            self.trained, self.since = 0.0, 0.0

        def on_train_begin(self, args, state, control, **kwargs):
            self.since = time.perf_counter()

        def on_step_end(self, args, state, control, model=None, **kwargs):
            now = time.perf_counter()
            self.trained += now - self.since
            if self.trained >= interval * len(curve):  # curve[0] is the untrained model, at 0 s
                curve.append((self.trained, accuracy(model)))
            self.since = time.perf_counter()

        def on_train_end(self, args, state, control, model=None, **kwargs):
            self.trained += time.perf_counter() - self.since
            curve.append((self.trained, accuracy(model)))

    config = RewardConfig(
        output_dir=f"/tmp/rewardlab-time-to-accuracy/{library}",
        per_device_train_batch_size=settings["batch_size"],
        learning_rate=settings["learning_rate"],
        max_length=settings["max_length"],
        num_train_epochs=1,
        lr_scheduler_type="linear",
        warmup_steps=0.05,
        gradient_checkpointing=False,
        bf16=False,
        use_cpu=True,
        report_to=[],
        save_strategy="no",
        logging_steps=10,
        disable_tqdm=True,
        dataloader_pin_memory=False,
        seed=42,
    )
    trainer = RewardTrainer(
        model, args=config, train_dataset=train, processing_class=tok, callbacks=[EvaluateEveryInterval()]
    )
    curve.append((0.0, accuracy(trainer.model)))
    trainer.train()
    return curve


def plot(curves: dict[str, list[tuple[float, float]]], path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for library, curve in curves.items():
        ax.plot([t / 60 for t, _ in curve], [a for _, a in curve], marker="o", label=library)
    ax.set_xlabel("training time (min, 2 CPU cores)")
    ax.set_ylabel("held-out accuracy (HH-RLHF pairs)")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train_pairs", type=int, default=1600)
    parser.add_argument("--interval", type=float, default=60.0, help="training seconds between evaluations")
    parser.add_argument("--plot", default="benchmarks/time_to_accuracy.png")
    parser.add_argument("--batch_size", type=int, default=8)
    parser.add_argument("--learning_rate", type=float, default=5e-5)
    parser.add_argument("--max_length", type=int, default=512, help="training and scoring")
    parser.add_argument(
        "--half",
        default="both",
        choices=["both", "helpful", "harmless"],
        help="train on the pool of one HH-RLHF file only and score its held-out half (200 pairs)",
    )
    parser.add_argument("--library", choices=["trl", "rewardlab"], help=argparse.SUPPRESS)  # one run, in a child
    args = parser.parse_args()
    if args.library:
        settings = {k: getattr(args, k) for k in ("batch_size", "learning_rate", "max_length", "half")}
        print(json.dumps(one_run(args.library, args.train_pairs, args.interval, settings)))
        return
    curves = {}
    for library in ("rewardlab", "trl"):
        command = [sys.executable, __file__, *sys.argv[1:], "--library", library]
        proc = subprocess.run(command, capture_output=True, text=True)
        if proc.returncode != 0:
            raise RuntimeError(proc.stderr[-3000:])
        curves[library] = json.loads(proc.stdout.strip().splitlines()[-1])
        print(library, json.dumps(curves[library]), flush=True)
    plot(curves, args.plot)
    trl_final_seconds, trl_final = curves["trl"][-1]
    reached = next((t for t, a in curves["rewardlab"] if t > 0 and a >= trl_final), None)
    print(f"\nTRL after one epoch: accuracy {trl_final:.3f} in {trl_final_seconds / 60:.1f} min of training")
    if reached is None:
        print("rewardlab did not reach it within its epoch")
    else:
        print(f"rewardlab reached it after {reached / 60:.1f} min: {reached / trl_final_seconds:.2f} of TRL's time")
    print("\n| library | training min | held-out accuracy |\n|---|---|---|")
    for library, curve in curves.items():
        for t, a in curve:
            print(f"| {library} | {t / 60:.1f} | {a:.3f} |")
    print(f"\nplot: {args.plot}")


if __name__ == "__main__":
    main()
