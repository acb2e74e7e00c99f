"""Find the parts of a reward model inside whatever wraps it: the `*ForSequenceClassification` module, its score
head and its hidden size. DDP, FSDP, DeepSpeed, `torch.compile` and PEFT each wrap the model their own way."""

from __future__ import annotations

import torch
from accelerate.utils import extract_model_from_parallel

from rewardlab.errors import RewardlabError

# Names transformers gives the final Linear of *ForSequenceClassification models (causal LMs: score, encoders:
# classifier). PEFT's SEQ_CLS task type keeps exactly these trainable and saves them with the adapter.
SCORE_HEAD_NAMES = ("score", "classifier")


def unwrap_reward_model(model: torch.nn.Module) -> torch.nn.Module:
    """The `*ForSequenceClassification` inside DDP/FSDP/DeepSpeed/compile/PEFT wrappers (LoRA layers stay injected
    in it)."""
    model = extract_model_from_parallel(model, keep_torch_compile=False)
    get_base_model = getattr(model, "get_base_model", None)  # a PeftModel
    return get_base_model() if callable(get_base_model) else model


def score_head_name(model: torch.nn.Module) -> str:
    """The attribute of `model` (a `*ForSequenceClassification`) that holds its score head."""
    for name in SCORE_HEAD_NAMES:
        if isinstance(getattr(model, name, None), torch.nn.Module):
            return name
    raise RewardlabError(
        f"{type(model).__name__} has no score head named {' or '.join(SCORE_HEAD_NAMES)}: "
        "use a *ForSequenceClassification model"
    )
