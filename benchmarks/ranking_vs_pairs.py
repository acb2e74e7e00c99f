"""RM-Bench: training on K-response rows in one pass vs the same comparisons expanded into independent pairs.

Each RM-Bench prompt has three chosen and three rejected responses: 9 comparisons. (a) `ranked`: one row per prompt,
read as it is in the file (`chosen` and `rejected` lists), the prompt and each of the 6 responses computed once, the
pairwise ranking loss averaging the prompt's 9 comparisons. (b) `pairs`: the 9 comparisons as 9 independent pair
rows, shuffled, the Bradley-Terry loss; each response is computed 3 times and the prompt 9 times. Both see the same
comparisons per optimizer step (a batch of B prompts vs 9B pairs) and the same learning rate.

    python benchmarks/ranking_vs_pairs.py throughput --model minilm --steps 6 --repeats 3
    python benchmarks/ranking_vs_pairs.py accuracy --model minilm --train_prompts 300 --eval_prompts 200

`throughput` alternates the two in child processes and prints median prompts/s (comparisons/s = 9 x prompts/s) and
peak memory. `accuracy` trains each for one epoch on the same training prompts and evaluates both on the same
held-out prompts: pairwise accuracy over their 9 comparisons (identical definition for both runs).
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import random
import resource
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from public_data import DATA_ROOT  # noqa: E402
from train_throughput import load_model_and_tokenizer, run_child  # noqa: E402

DATA = DATA_ROOT / "rm-bench"
SEPARATOR = "\n\n"  # RM-Bench prompts have no trailing newline; both variants get the same one


def rm_bench_rows() -> list[dict]:
    rows = []
    for path in sorted(DATA.glob("*_filtered.jsonl.gz")):
        with gzip.open(path, "rt", encoding="utf-8") as f:
            for line in f:
                row = json.loads(line)
                rows.append({"prompt": row["prompt"] + SEPARATOR, "chosen": row["chosen"], "rejected": row["rejected"]})
    random.Random(0).shuffle(rows)
    return rows


def expand(rows: list[dict], seed: int = 0) -> list[dict]:
    """Every (chosen i, rejected j) comparison as its own pair row, shuffled as pair training shuffles them."""
    pairs = [
        {"prompt": r["prompt"], "chosen": c, "rejected": x} for r in rows for c in r["chosen"] for x in r["rejected"]
    ]
    random.Random(seed).shuffle(pairs)
    return pairs


def split(args) -> tuple[list[dict], list[dict]]:
    rows = rm_bench_rows()
    return rows[args.eval_prompts : args.eval_prompts + args.train_prompts], rows[: args.eval_prompts]


def one_run(args) -> dict:
    import torch
    from datasets import Dataset
    from transformers import TrainerCallback

    from rewardlab import RewardConfig, RewardTrainer

    torch.set_num_threads(args.threads)
    model, tok = load_model_and_tokenizer(args.model)
    train_rows, eval_rows = split(args)
    ranked = args.variant == "ranked"
    comparisons = 9
    batch = args.batch_prompts if ranked else args.batch_prompts * comparisons
    if args.task == "throughput":
        train_rows = train_rows[: args.batch_prompts * args.steps]
    train = Dataset.from_list(train_rows if ranked else expand(train_rows))
    evaluation = None
    if args.task == "accuracy":
        evaluation = Dataset.from_list(eval_rows if ranked else expand(eval_rows))

    step_times = []

    class Clock(TrainerCallback):
        def on_step_end(self, *a, **k):
            step_times.append(time.perf_counter())

    config = RewardConfig(
        output_dir="/tmp/rewardlab-ranking-bench",
        per_device_train_batch_size=batch,
        per_device_eval_batch_size=batch,
        num_train_epochs=1,
        max_steps=args.steps if args.task == "throughput" else -1,
        max_length=args.max_length,
        learning_rate=args.learning_rate,
        bf16=False,
        use_cpu=True,
        report_to=[],
        save_strategy="no",
        logging_steps=1,
        gradient_checkpointing=False,
        disable_tqdm=True,
        seed=0,
        max_tokens_per_batch=8192,
        lr_scheduler_type="constant",
    )
    trainer = RewardTrainer(
        model, args=config, train_dataset=train, eval_dataset=evaluation, processing_class=tok, callbacks=[Clock()]
    )
    start = time.perf_counter()
    trainer.train()
    timed = step_times[1:]  # steady state: the first step pays for allocations and thread pools
    seconds = timed[-1] - step_times[0]
    out = {
        "variant": args.variant,
        "prompts_per_s": len(timed) * args.batch_prompts / seconds,
        "train_seconds": time.perf_counter() - start,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "steps": trainer.state.global_step,
    }
    if evaluation is not None:
        metrics = trainer.evaluate()
        out["eval_accuracy"] = metrics["eval_accuracy"]
        out["eval_comparisons"] = metrics["eval_num_pairs"]
        out["eval_top1_accuracy"] = metrics.get("eval_top1_accuracy")
        out["train_prompts"] = len(train_rows)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("task", choices=["throughput", "accuracy"])
    parser.add_argument("--model", default="minilm", choices=["qwen3-small", "smollm2", "minilm"])
    parser.add_argument("--steps", type=int, default=6, help="throughput: timed steps (+1 warm-up)")
    parser.add_argument("--batch_prompts", type=int, default=2, help="prompts per step (pairs: 9x as many pairs)")
    parser.add_argument("--max_length", type=int, default=512)
    parser.add_argument("--learning_rate", type=float, default=2e-5)
    parser.add_argument("--train_prompts", type=int, default=300)
    parser.add_argument("--eval_prompts", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--variant", choices=["ranked", "pairs"], help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.variant:  # child process
        print("RESULT " + json.dumps(one_run(args)), flush=True)
        return

    repeats = args.repeats if args.task == "throughput" else 1
    results = {"ranked": [], "pairs": []}
    for _ in range(repeats):
        for variant in results:
            results[variant].append(run_child([__file__, *sys.argv[1:], "--variant", variant], variant))
            print(variant, {k: round(v, 4) if isinstance(v, float) else v for k, v in results[variant][-1].items()})
    for key in ("prompts_per_s", "peak_rss_mb", "eval_accuracy", "eval_top1_accuracy"):
        if any(r.get(key) is None for runs in results.values() for r in runs):
            continue  # e.g. top-1 accuracy: pair training has no rankings to evaluate it on
        med = {v: statistics.median(r[key] for r in runs) for v, runs in results.items()}
        ratio = med["ranked"] / med["pairs"]
        print(f"{key:>20}: ranked {med['ranked']:.4g}  pairs {med['pairs']:.4g}  ratio {ratio:.2f}x")


if __name__ == "__main__":
    main()
