"""What a saved run says about itself: `rewardlab_run.json` and a model card (README.md) next to the weights.

The data-policy counts (rows validated, skipped, truncated, dropped) are written here so that no loss of data is
visible only in a scrolled-away log line.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

from rewardlab.files import RUN_RECORD_FILE

# The settings a reader of the card needs to reproduce or judge the run.
_RECORDED_ARGS = (
    "max_length",
    "overlength_policy",
    "skip_invalid_rows",
    "center_rewards_coefficient",
    "learning_rate",
    "num_train_epochs",
    "max_steps",
    "per_device_train_batch_size",
    "gradient_accumulation_steps",
    "seed",
    "ranking_loss",
    "ranking_margin_scale",
    "ensemble_heads",
    "ensemble_bootstrap",
)


def build_run_record(trainer: Any) -> dict[str, Any]:
    from rewardlab import __version__

    args = trainer.args
    history = trainer.state.log_history
    final_eval = {}
    for entry in history:
        if any(k.startswith("eval_") for k in entry):
            final_eval.update(entry)
    final_train = next((e for e in reversed(history) if "loss" in e and "accuracy" in e), {})
    return {
        "rewardlab_version": __version__,
        "saved_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "base_model": trainer.base_model_id,
        "peft": trainer.model.__class__.__name__.startswith("Peft"),
        "global_step": trainer.state.global_step,
        "epoch": trainer.state.epoch,
        "data": {name: stats.to_dict() for name, stats in trainer.data_stats.items()},
        "args": {k: getattr(args, k) for k in _RECORDED_ARGS},
        "final_train_metrics": final_train,
        "final_eval_metrics": final_eval,
        # Mean and std of every reward (chosen and rejected) at the last evaluation: `RewardModel.normalize` and the
        # RL reward function's `normalize=True` use them to put rewards on a unit scale.
        "reward_normalization": getattr(trainer, "reward_statistics", None),
        # Every logged step, so that `rewardlab eval` can draw the training curves from the saved model alone.
        "log_history": history,
    }


def _model_card(record: dict[str, Any]) -> str:
    lines = [
        "---",
        "library_name: transformers",
        "pipeline_tag: text-classification",
        "tags: [rewardlab, reward-model]",
        "---",
        "",
        "# Reward model",
        "",
        f"Bradley-Terry reward model trained with rewardlab {record['rewardlab_version']} from "
        f"`{record['base_model']}`{' (LoRA adapter + score head)' if record['peft'] else ''}.",
        "It outputs one scalar per sequence (`num_labels=1`); higher is better. Load it with "
        '`AutoModelForSequenceClassification` or `pipeline("text-classification", function_to_apply="none")`.',
        "",
        "## Data",
        "",
        "| dataset | rows in | pairs used | invalid rows skipped | prompts truncated | responses cut | dropped |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, d in record["data"].items():
        skipped = sum(d.get("invalid_skipped", {}).values())
        lines.append(
            f"| {name} | {d.get('rows_in')} | {d.get('pairs_out')} | {skipped} | {d.get('prompt_truncated')} | "
            f"{d.get('response_truncated')} | {d.get('dropped_overlength')} |"
        )
    args = record["args"]
    lines += [
        "",
        f"Over-length policy: `{args['overlength_policy']}` at `max_length={args['max_length']}`.",
        "",
        "## Final metrics",
        "",
    ]
    for title, metrics in (("training", record["final_train_metrics"]), ("evaluation", record["final_eval_metrics"])):
        if metrics:
            shown = ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in metrics.items())
            lines.append(f"- {title}: {shown}")
    lines += ["", "## Settings", "", "```json", json.dumps(args, indent=2, default=str), "```", ""]
    return "\n".join(lines)


def write_run_record(trainer: Any, output_dir: str) -> dict[str, Any]:
    record = build_run_record(trainer)
    os.makedirs(output_dir, exist_ok=True)
    with open(os.path.join(output_dir, RUN_RECORD_FILE), "w", encoding="utf-8") as f:
        json.dump(record, f, indent=2, default=str)
    with open(os.path.join(output_dir, "README.md"), "w", encoding="utf-8") as f:
        f.write(_model_card(record))
    return record
