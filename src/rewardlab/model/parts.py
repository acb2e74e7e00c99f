"""Find the parts of a reward model inside whatever wraps it: the `*ForSequenceClassification` module, its score
head, its backbone (a causal decoder stack, or a BERT-style encoder and the head over its pooled first token). DDP,
FSDP, DeepSpeed, `torch.compile` and PEFT each wrap the model their own way."""

from __future__ import annotations

from collections.abc import Callable

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


def split_backbone_and_head(model: torch.nn.Module) -> tuple[torch.nn.Module, torch.nn.Module]:
    """The decoder stack and the score head of a causal `*ForSequenceClassification` (e.g. `.model` and `.score`)."""
    inner = unwrap_reward_model(model)
    prefix = getattr(inner, "base_model_prefix", "model")
    backbone, head = getattr(inner, prefix, None), getattr(inner, "score", None)
    if backbone is None or head is None:
        raise ValueError(f"{type(inner).__name__} has no `{prefix}` backbone and `score` head")
    return backbone, head


def split_encoder_and_head(model: torch.nn.Module) -> tuple[torch.nn.Module, Callable[[torch.Tensor], torch.Tensor]]:
    """The encoder of a BERT-style `*ForSequenceClassification` and a function from first-token states to rewards.

    These models pool the first token ([CLS]) through `encoder.pooler`, then apply `dropout` and `classifier`.
    """
    inner = unwrap_reward_model(model)
    encoder = getattr(inner, getattr(inner, "base_model_prefix", ""), None)
    pooler = getattr(encoder, "pooler", None)
    if pooler is None or not hasattr(inner, "classifier") or not hasattr(inner, "dropout"):
        raise ValueError(f"{type(inner).__name__} is not a BERT-style encoder with pooler and classifier")

    def head(first_token_states: torch.Tensor) -> torch.Tensor:  # (S, hidden) -> (S,) or (S, N)
        return inner.classifier(inner.dropout(pooler(first_token_states[:, None, :]))).squeeze(-1)

    return encoder, head
