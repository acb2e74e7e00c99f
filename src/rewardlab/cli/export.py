"""`rewardlab export`: a multi-objective reward model written as an ordinary `num_labels=1` checkpoint, its heads
folded into one by an objective or fixed weights (`rewardlab.model.export`)."""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Sequence

from rewardlab.cli.parser import ArgumentParser
from rewardlab.errors import RewardlabError
from rewardlab.files import RUN_RECORD_FILE, read_run_record, saving
from rewardlab.model.export import fold_objective_heads
from rewardlab.model.heads import objective_names
from rewardlab.model.load import load_trained_model
from rewardlab.score.objectives import objective_weights


def build_parser() -> argparse.ArgumentParser:
    p = ArgumentParser(
        prog="rewardlab export",
        description="Write a multi-objective reward model as an ordinary num_labels=1 checkpoint (for TRL's "
        "reward_funcs, vLLM's pooling runner, a text-classification pipeline): one objective's head, or the heads "
        "weighed into one by fixed weights (a prompt gate depends on the prompt, which one logit cannot carry). A "
        "LoRA adapter is merged into its base model.",
        deprecated={"--output": "--output_dir"},
    )
    p.add_argument("--model", required=True, help="the multi-objective reward model (a directory: full or LoRA)")
    p.add_argument("--output_dir", required=True, help="directory to write the num_labels=1 model to")
    choice = p.add_mutually_exclusive_group(required=True)
    choice.add_argument("--objective", help="export this objective's head")
    choice.add_argument("--weights", help="export the heads weighed, e.g. helpful=0.7,harmless=0.3 (others: 0)")
    p.add_argument("--base_model", default=None, help="Base model of a LoRA adapter, if not the one it names.")
    return p


def main(argv: Sequence[str]) -> int:
    args = build_parser().parse_args(list(argv))
    if not os.path.isdir(args.model):
        raise RewardlabError(f"no such model directory: {args.model}")
    if os.path.abspath(args.output_dir) == os.path.abspath(args.model):
        raise RewardlabError("--output_dir is the model's own directory: write the export somewhere else")
    model, tokenizer = load_trained_model(args.model, base_model=args.base_model)
    weights = objective_weights(objective_names(model), args.objective, args.weights)
    if hasattr(model, "merge_and_unload"):  # a LoRA adapter: its base model with the adapter merged in
        model = model.merge_and_unload()
    objectives = fold_objective_heads(model, weights.tolist())
    with saving(args.output_dir):
        model.save_pretrained(args.output_dir)
        tokenizer.save_pretrained(args.output_dir)
        record = read_run_record(args.model) or {}
        record["exported_from"] = {
            "model": args.model,
            "weights": dict(zip(objectives, weights.tolist(), strict=True)),
        }
        for key in ("objectives", "gate", "gate_coefficient", "gate_learning_rate", "gate_prompt_tokens"):
            record.get("args", {}).pop(key, None)  # the exported model has one head and no gate
        with open(os.path.join(args.output_dir, RUN_RECORD_FILE), "w", encoding="utf-8") as f:
            json.dump(record, f, indent=2, default=str)
    chosen = ", ".join(f"{name} {w:g}" for name, w in zip(objectives, weights.tolist(), strict=True) if w)
    print(f"exported {args.model} ({chosen}) as a num_labels=1 reward model to {args.output_dir}")
    return 0
