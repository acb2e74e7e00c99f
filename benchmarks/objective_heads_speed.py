"""Time per training step of a multi-objective reward model against one head, on the same model, data and steps.

Three variants, each in its own subprocess, alternated `--repeats` times: one head; two heads (each pair trained on
its objective's head); two heads and the prompt gate (the default of a run with objectives: each example's prompt is
added to the batch for the gate). The data are HH-RLHF harmless pairs, alternately named "helpful" and "harmless"
(the names only route pairs to heads: this measures cost, not accuracy). The medians and the ratios to one head are
printed.

    python benchmarks/objective_heads_speed.py --model qwen3-small --steps 20 --batch_size 8 --repeats 3
    python benchmarks/objective_heads_speed.py --model minilm --steps 20 --batch_size 16 --max_length 256 \
        --repeats 2 --gate_prompt_tokens 64

A causal model trains in the shared-prefix layout, where the gate reads the prompt's last token inside each pair's
row; an encoder (MiniLM) reads the prompt bidirectionally, so there the gate needs a forward of the prompt alone.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from train_throughput import DEFAULT_DATA, load_model_and_tokenizer, read_pairs, run_child  # noqa: E402

VARIANTS = ("one head", "two heads", "two heads + gate")
CAPPED = "two heads + gate, capped prompt"  # with --gate_prompt_tokens (encoders)


def widen_head(model, objectives: list[str]) -> None:
    """Give a `num_labels=1` model a fresh head per objective, named in its config, as loading it by name would."""
    import torch

    from rewardlab.model.heads import objective_labels
    from rewardlab.model.parts import score_head_name

    name = score_head_name(model)
    old = getattr(model, name)
    torch.manual_seed(0)
    setattr(model, name, torch.nn.Linear(old.in_features, len(objectives), bias=old.bias is not None))
    model.config.update(objective_labels(objectives))
    model.num_labels = model.config.num_labels = len(objectives)


def one_run(args) -> dict:
    import torch
    from datasets import Dataset
    from transformers import TrainerCallback

    from rewardlab import RewardConfig, RewardTrainer

    torch.set_num_threads(args.threads)
    model, tok = load_model_and_tokenizer(args.model, Path(args.data))
    pairs = read_pairs(Path(args.data), args.batch_size * args.steps)
    objectives = None
    if args.variant != "one head":
        objectives = ["helpful", "harmless"]
        widen_head(model, objectives)
        pairs = [dict(p, objective=objectives[i % 2]) for i, p in enumerate(pairs)]
    step_times = []

    class Clock(TrainerCallback):
        def on_step_end(self, *a, **k):
            step_times.append(time.perf_counter())

    config = RewardConfig(
        output_dir="/tmp/rewardlab-bench",
        per_device_train_batch_size=args.batch_size,
        max_steps=args.steps,
        max_length=args.max_length,
        learning_rate=1e-5,
        use_cpu=True,
        report_to=[],
        save_strategy="no",
        logging_steps=1,
        gradient_checkpointing=False,
        disable_tqdm=True,
        dataloader_pin_memory=False,
        seed=0,
        objectives=objectives,
        gate="labels" if args.variant in ("two heads + gate", CAPPED) else "none",
        gate_prompt_tokens=args.gate_prompt_tokens if args.variant == CAPPED else None,
    )
    trainer = RewardTrainer(
        model, args=config, train_dataset=Dataset.from_list(pairs), processing_class=tok, callbacks=[Clock()]
    )
    trainer.train()
    steps = [b - a for a, b in zip(step_times, step_times[1:], strict=False)]  # the first step warms up
    return {"variant": args.variant, "step_s": statistics.median(steps), "layout": str(trainer.data_collator.layout)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="qwen3-small", choices=["qwen3-small", "minilm", "smollm2"])
    parser.add_argument("--data", default=str(DEFAULT_DATA))
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--batch_size", type=int, default=8)
    parser.add_argument("--max_length", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--gate_prompt_tokens", type=int, help="also time an encoder's gate reading this many tokens")
    parser.add_argument("--variant", choices=(*VARIANTS, CAPPED), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.variant:  # child process
        print("RESULT " + json.dumps(one_run(args)), flush=True)
        return
    results = {variant: [] for variant in (*VARIANTS, *([CAPPED] if args.gate_prompt_tokens else []))}
    for _ in range(args.repeats):
        for variant in results:
            results[variant].append(run_child([__file__, "--variant", variant, *sys.argv[1:]], variant))
            print(variant, results[variant][-1], flush=True)
    base = statistics.median(r["step_s"] for r in results["one head"])
    print(f"\nmodel={args.model} batch={args.batch_size} steps={args.steps} repeats={args.repeats}")
    for variant, runs in results.items():
        median = statistics.median(r["step_s"] for r in runs)
        print(f"{variant:18} {median:7.3f} s/step  {median / base:5.3f}x one head  ({runs[0]['layout']})")


if __name__ == "__main__":
    main()
