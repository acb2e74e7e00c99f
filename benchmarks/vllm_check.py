"""rewardlab's rewards vs vLLM's pooling runner on the same token sequences (needs a GPU and vLLM).

A reward model of SmolLM2-135M's shape (random weights, built from a config, saved as rewardlab saves one) scores
`--texts` HH-RLHF texts with `rewardlab.RewardModel` and with `vllm.LLM(path, runner="pooling").classify(...)`
(raw rewards: `PoolingParams(use_activation=False)`), both in float32 on the same token ids (the texts tokenized
once, as rewardlab tokenizes them). Prints the largest difference and fails above `--tolerance`. Run by
`benchmarks/gpu_check.sh`; without vLLM it says so and exits 0.

    python benchmarks/vllm_check.py --texts 64
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import tempfile
from pathlib import Path

import numpy as np
from train_throughput import DEFAULT_DATA, load_model_and_tokenizer, read_pairs


def vllm_rewards(path: str, sequences: list[list[int]]) -> list[float]:
    from vllm import LLM, PoolingParams
    from vllm.inputs import TokensPrompt

    llm = LLM(model=path, runner="pooling", dtype="float32", enforce_eager=True, gpu_memory_utilization=0.3)
    try:
        params = PoolingParams(use_activation=False)
    except TypeError:  # vLLM releases before `use_activation` called it `activation`
        params = PoolingParams(activation=False)
    outputs = llm.classify([TokensPrompt(prompt_token_ids=ids) for ids in sequences], pooling_params=params)
    return [float(output.outputs.probs[0]) for output in outputs]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--texts", type=int, default=64)
    parser.add_argument("--tolerance", type=float, default=1e-3)
    args = parser.parse_args()
    if importlib.util.find_spec("vllm") is None:
        print("vLLM is not installed: the rewardlab vs vLLM comparison is skipped")
        return
    from rewardlab import RewardModel
    from rewardlab.data.tokenize import tokenize_text

    model, tok = load_model_and_tokenizer("smollm2-config", DEFAULT_DATA)
    path = str(Path(tempfile.mkdtemp(prefix="rewardlab-vllm-")) / "model")
    model.save_pretrained(path)
    tok.save_pretrained(path)
    scorer = RewardModel.from_pretrained(path, device="cuda")
    # Texts within max_length, so that rewardlab scores exactly the token ids vLLM is given.
    texts, sequences = [], []
    for row in read_pairs(DEFAULT_DATA, 4 * args.texts):
        ids = tokenize_text(scorer.tokenizer, row["chosen"], scorer.eos_token_id)
        if len(ids) <= (scorer.max_length or 2048) and len(texts) < args.texts:
            texts.append(row["chosen"])
            sequences.append(ids)
    ours = np.array(scorer.score_texts(texts))
    theirs = np.array(vllm_rewards(path, sequences))
    difference = np.abs(ours - theirs).max()
    correlation = np.corrcoef(ours, theirs)[0, 1]
    print(f"{len(texts)} texts: max |rewardlab - vLLM| = {difference:.2e}, correlation {correlation:.6f}")
    if difference > args.tolerance:
        sys.exit(f"rewardlab and vLLM disagree by more than {args.tolerance}")


if __name__ == "__main__":
    main()
