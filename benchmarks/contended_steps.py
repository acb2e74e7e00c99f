"""What a competing process does to one training step at each thread count, and the cores the process gets.

rewardlab trains the small Qwen3 of `train_throughput.py` (HH-RLHF, batch 8, `max_length` 512, fp32) with thread
adaptation off, alternating the thread count step by step between all threads and one, and prints per thread count
the median step time and the cores the process got during its steps (CPU time over wall time, all threads). Then
`rewardlab.cpu_threads.core_share`, the probe the adaptation uses, measures the cores all threads get, 10 times.
With `--contention KIND` a competing process (`train_throughput.COMPETITORS`) runs throughout.

    python benchmarks/contended_steps.py --steps 24
    python benchmarks/contended_steps.py --steps 24 --contention busy
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

from train_throughput import DEFAULT_DATA, load_model_and_tokenizer, read_pairs, run_child


def measure(steps: int, data: Path) -> dict:
    import torch
    from datasets import Dataset
    from transformers import TrainerCallback

    from rewardlab import RewardConfig, RewardTrainer
    from rewardlab.cpu_threads import core_share

    most = torch.get_num_threads()
    model, tok = load_model_and_tokenizer("qwen3-small", data)
    records = []

    class AlternateThreads(TrainerCallback):
        def on_step_begin(self, args, state, control, **kwargs):
            self.threads = most if state.global_step % 2 == 0 else 1
            torch.set_num_threads(self.threads)
            self.wall, self.cpu = time.perf_counter(), time.process_time()

        def on_step_end(self, args, state, control, **kwargs):
            wall = time.perf_counter() - self.wall
            records.append((self.threads, wall, (time.process_time() - self.cpu) / wall))

    config = RewardConfig(
        output_dir="/tmp/rewardlab-bench",
        per_device_train_batch_size=8,
        max_steps=steps,
        max_length=512,
        use_cpu=True,
        report_to=[],
        save_strategy="no",
        gradient_checkpointing=False,
        disable_tqdm=True,
        adapt_cpu_threads=False,
        seed=0,
    )
    data_set = Dataset.from_list(read_pairs(data, 8 * steps))
    trainer = RewardTrainer(model, config, train_dataset=data_set, processing_class=tok, callbacks=[AlternateThreads()])
    trainer.train()
    result = {}
    for threads in (most, 1):
        timed = [(wall, share) for n, wall, share in records[2:] if n == threads]  # the first two warm up
        label = f"{threads} thread{'s' if threads > 1 else ''}"
        result[f"{label}: median s/step"] = statistics.median(wall for wall, _ in timed)
        result[f"{label}: median cores"] = statistics.median(share for _, share in timed)
    result[f"core_share({most}) x10"] = [round(core_share(most), 2) for _ in range(10)]
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=24)
    parser.add_argument("--data", default=str(DEFAULT_DATA))
    parser.add_argument("--contention", help="a kind of train_throughput.py's --contention")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print("RESULT " + json.dumps(measure(args.steps, Path(args.data))))
        return
    child = [__file__, "--child", "--steps", str(args.steps), "--data", args.data]
    result = run_child(child, "the measured", args.contention)
    print(f"contention={args.contention} steps={args.steps}")
    for name, value in result.items():
        print(f"{name:32s} {value if isinstance(value, list) else round(value, 3)}")


if __name__ == "__main__":
    main()
