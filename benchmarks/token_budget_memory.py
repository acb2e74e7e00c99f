"""Peak memory of training with and without `max_tokens_per_batch`, on the shortest and on the longest pairs.

Without a budget, peak memory follows the longest batch; with one, it follows the budget. Each configuration trains
`--steps` steps in its own subprocess on batches made of the `--batch_size x --steps` shortest or longest pairs of
HH-RLHF harmless (after truncation to `--max_length`), and reports the growth of the process's maximum RSS over its
RSS just before training (the model, optimizer state and data are loaded by then), and seconds per step.

    python benchmarks/token_budget_memory.py --model smollm2 --budget 1024
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from train_throughput import DEFAULT_DATA, load_model_and_tokenizer, read_pairs, run_child  # noqa: E402


def one_run(args) -> dict:
    import torch
    from datasets import Dataset
    from transformers import TrainerCallback

    from rewardlab import RewardConfig, RewardTrainer

    torch.set_num_threads(args.threads)
    model, tok = load_model_and_tokenizer(args.model)
    n = args.batch_size * args.steps
    config = RewardConfig(
        output_dir="/tmp/rewardlab-bench",
        per_device_train_batch_size=args.batch_size,
        max_steps=args.steps,
        max_length=args.max_length,
        max_tokens_per_batch=args.run_budget or None,
        learning_rate=1e-5,
        use_cpu=True,
        report_to=[],
        save_strategy="no",
        logging_steps=1,
        gradient_checkpointing=False,
        disable_tqdm=True,
        seed=0,
    )
    pool = RewardTrainer(
        model, args=config, train_dataset=Dataset.from_list(read_pairs(Path(args.data), 400)), processing_class=tok
    ).train_dataset
    length = [len(c) + len(r) for c, r in zip(pool["chosen_ids"], pool["rejected_ids"], strict=True)]
    order = sorted(range(len(pool)), key=lambda i: length[i], reverse=args.data_end == "longest")
    data = pool.select(order[:n]).shuffle(seed=0)
    step_times = []

    class Clock(TrainerCallback):
        def on_step_end(self, *a, **k):
            step_times.append(time.perf_counter())

    trainer = RewardTrainer(model, args=config, train_dataset=data, processing_class=tok, callbacks=[Clock()])
    trainer.create_optimizer_and_scheduler(args.steps)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    start = time.perf_counter()
    trainer.train()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    times = [b - a for a, b in zip([start, *step_times], step_times, strict=False)]
    return {
        "peak_growth_mb": peak - before,
        "peak_rss_mb": peak,
        "seconds_per_step": statistics.median(times),
        "tokens_per_pair": sum(len(c) + len(r) for c, r in zip(data["chosen_ids"], data["rejected_ids"], strict=True))
        / n,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="smollm2", choices=["qwen3-small", "smollm2", "minilm"])
    parser.add_argument("--data", default=str(DEFAULT_DATA))
    parser.add_argument("--budget", type=int, default=1024, help="max_tokens_per_batch of the budgeted runs")
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--batch_size", type=int, default=4)
    parser.add_argument("--max_length", type=int, default=1024)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--run_budget", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--data_end", choices=["shortest", "longest"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.data_end:  # child process
        print("RESULT " + json.dumps(one_run(args)), flush=True)
        return

    print(f"model={args.model} batch={args.batch_size} max_length={args.max_length} steps={args.steps}")
    print(f"{'pairs':10}{'max_tokens_per_batch':>22}{'tokens/pair':>13}{'peak growth MB':>16}{'s/step':>9}")
    for data_end in ("shortest", "longest"):
        for budget in (0, args.budget):
            r = run_child([__file__, *sys.argv[1:], "--run_budget", str(budget), "--data_end", data_end], data_end)
            print(
                f"{data_end:10}{budget or 'none':>22}{r['tokens_per_pair']:13.0f}{r['peak_growth_mb']:16.0f}"
                f"{r['seconds_per_step']:9.2f}",
                flush=True,
            )


if __name__ == "__main__":
    main()
