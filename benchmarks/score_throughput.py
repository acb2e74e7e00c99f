"""Scoring throughput of `RewardModel` vs `pipeline("text-classification", function_to_apply="none")`.

Same saved model, same texts (the chosen and rejected dialogues of HH-RLHF harmless pairs, each ending in the eos
token, kept whole under `--max_length`), one process, alternating `--repeats` times; prints items/s of each, the
ratio, and the largest difference between the two sets of scores (they must agree: same model, same tokens).

    python benchmarks/score_throughput.py --model qwen3-small --pairs 200
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from train_throughput import DEFAULT_DATA, load_model_and_tokenizer, read_pairs  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="qwen3-small", choices=["qwen3-small", "smollm2", "minilm"])
    parser.add_argument("--data", default=str(DEFAULT_DATA))
    parser.add_argument("--pairs", type=int, default=200)
    parser.add_argument("--max_length", type=int, default=512)
    parser.add_argument("--pipeline_batch_size", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    args = parser.parse_args()

    import numpy as np
    import torch
    from transformers import pipeline

    from rewardlab import RewardModel

    torch.set_num_threads(args.threads)
    model, tok = load_model_and_tokenizer(args.model)
    directory = tempfile.mkdtemp(prefix="rewardlab-score-bench-")
    model.save_pretrained(directory)
    tok.save_pretrained(directory)
    scorer = RewardModel.from_pretrained(directory, device="cpu")
    piped = pipeline("text-classification", model=directory, function_to_apply="none", device="cpu")

    def as_scored(text: str) -> str:
        """The text whose plain tokenization is what rewardlab scores: eos appended unless the tokenizer's own
        post-processing already ends with it (BERT's [SEP])."""
        ids = tok(text)["input_ids"]
        return text if tok.eos_token is None or ids[-1] == tok.eos_token_id else text + tok.eos_token

    texts = []
    for pair in read_pairs(Path(args.data), 4 * args.pairs):
        for text in (pair["chosen"], pair["rejected"]):
            if len(tok(as_scored(text))["input_ids"]) <= args.max_length:
                texts.append(text)
        if len(texts) >= 2 * args.pairs:
            break
    tokens = sum(len(tok(as_scored(t))["input_ids"]) for t in texts)
    print(
        f"model={args.model} texts={len(texts)} tokens={tokens} threads={args.threads} "
        f"pipeline_batch_size={args.pipeline_batch_size} rewardlab layout={scorer.layout}"
    )

    def run_rewardlab():
        return scorer.score_texts(texts)

    def run_pipeline():
        out = piped([as_scored(t) for t in texts], batch_size=args.pipeline_batch_size)
        return [r["score"] for r in out]

    run_rewardlab(), run_pipeline()  # warm-up (thread pools, allocator)
    times = {"pipeline": [], "rewardlab": []}
    scores = {}
    for _ in range(args.repeats):
        for name, fn in (("pipeline", run_pipeline), ("rewardlab", run_rewardlab)):
            start = time.perf_counter()
            scores[name] = fn()
            times[name].append(time.perf_counter() - start)
    diff = float(np.max(np.abs(np.array(scores["rewardlab"]) - np.array(scores["pipeline"]))))
    print(f"{'':12}{'items/s':>10}{'tokens/s':>12}")
    rate = {}
    for name in ("pipeline", "rewardlab"):
        seconds = statistics.median(times[name])
        rate[name] = len(texts) / seconds
        print(f"{name:12}{rate[name]:10.1f}{tokens / seconds:12.0f}")
    print(f"{'ratio':12}{rate['rewardlab'] / rate['pipeline']:9.2f}x")
    print(f"max |rewardlab - pipeline| score difference: {diff:.2e}")


if __name__ == "__main__":
    main()
