"""What a saved run says about itself: `rewardlab_run.json` and a model card (README.md) next to the weights.

The data-policy counts (rows validated, skipped, truncated, dropped) are written here so that no loss of data is
visible only in a scrolled-away log line.
"""

from __future__ import annotations

import importlib.resources
import json
import os
import time
from collections.abc import Sequence
from typing import Any

from rewardlab.files import RUN_RECORD_FILE

# The Hub tags of a rewardlab reward model (the trainer adds them to the model's config as well). TRL's two tags are
# included so that Hub filters written for TRL reward models find these models too.
MODEL_TAGS = ("rewardlab", "reward-model", "trl", "reward-trainer")

# The settings a reader of the card needs to reproduce or judge the run.
_RECORDED_ARGS = (
    "max_length",
    "overlength_policy",
    "skip_invalid_rows",
    "center_rewards_coefficient",
    "learning_rate",
    "head_learning_rate",
    "num_train_epochs",
    "max_steps",
    "per_device_train_batch_size",
    "length_grouped_tokens",
    "gradient_accumulation_steps",
    "seed",
    "ranking_loss",
    "objectives",
    "gate",
    "gate_coefficient",
    "gate_learning_rate",
    "gate_prompt_tokens",
    "ranking_margin_scale",
    "ensemble_heads",
    "ensemble_bootstrap",
    "length_debias",
    "length_decorrelation_coefficient",
    "length_decorrelation_scope",
    "length_head_coefficient",
    "head_orthogonality_coefficient",
)


def build_run_record(trainer: Any) -> dict[str, Any]:
    from rewardlab._version import __version__

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


def model_card(record: dict[str, Any], dataset_name: str | None = None, tags: Sequence[str] = ()) -> str:
    """The model card (README.md) of a run record, from `templates/model_card.md`, with the Hub metadata that makes
    the model show up as a reward model (`library_name`, `pipeline_tag`, the trainer's tags and any `tags` given)
    and, when given, the dataset it was trained on."""
    from huggingface_hub import ModelCard, ModelCardData

    template = importlib.resources.files("rewardlab") / "templates" / "model_card.md"
    metadata = ModelCardData(
        library_name="transformers",
        pipeline_tag="text-classification",
        tags=list(dict.fromkeys([*MODEL_TAGS, *tags])),
        datasets=[dataset_name] if dataset_name else None,
    )
    card = ModelCard.from_template(
        metadata,
        template_str=template.read_text(encoding="utf-8"),
        record=record,
        settings=json.dumps(record["args"], indent=2, default=str),
    )
    return str(card)


def write_run_record(
    trainer: Any, output_dir: str, dataset_name: str | None = None, tags: Sequence[str] = ()
) -> dict[str, Any]:
    """Write `rewardlab_run.json` and the model card `README.md` of the run so far into `output_dir`."""
    record = build_run_record(trainer)
    os.makedirs(output_dir, exist_ok=True)
    with open(os.path.join(output_dir, RUN_RECORD_FILE), "w", encoding="utf-8") as f:
        json.dump(record, f, indent=2, default=str)
    with open(os.path.join(output_dir, "README.md"), "w", encoding="utf-8") as f:
        f.write(model_card(record, dataset_name, tags))
    return record
