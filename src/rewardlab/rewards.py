"""Compute the rewards of a collated batch of pairs, for each batch layout rewardlab's collators produce.

`pair_rewards` dispatches on the layout (see `rewardlab.packing`): padded (TRL's), length-grouped sub-batches, one
packed row, or micro-batches of any of these under a token budget. Every layout calls the model's own forward (once
per packed row), returns the rewards in the caller's order, and gives the loss, metrics and gradients of the padded
batch. Rewards are (S,) per sequence, or (S, N) for an ensemble of N heads (`rewardlab.ensemble`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import torch
from accelerate.utils import send_to_device

from rewardlab.attention import ATTENTION_NAME, SEGMENTS_KWARG, register_pair_attention


def unwrap_reward_model(model: torch.nn.Module) -> torch.nn.Module:
    """The `*ForSequenceClassification` inside DDP/FSDP/compile/PEFT wrappers (LoRA layers stay injected in it)."""
    while True:
        if hasattr(model, "module") and isinstance(model.module, torch.nn.Module):
            model = model.module
        elif hasattr(model, "_orig_mod"):
            model = model._orig_mod
        elif hasattr(model, "get_base_model") and callable(model.get_base_model):
            model = model.get_base_model()
        else:
            return model


def hidden_size(model: torch.nn.Module) -> int | None:
    """The model's hidden size (prices attention against the rest in `rewardlab.packing.sharing_pays`)."""
    return getattr(unwrap_reward_model(model).config.get_text_config(), "hidden_size", None)


def split_backbone_and_head(model: torch.nn.Module) -> tuple[torch.nn.Module, torch.nn.Module]:
    """The decoder stack and the score head of a causal `*ForSequenceClassification` (e.g. `.model` and `.score`)."""
    inner = unwrap_reward_model(model)
    prefix = getattr(inner, "base_model_prefix", "model")
    backbone, head = getattr(inner, prefix, None), getattr(inner, "score", None)
    if backbone is None or head is None:
        raise ValueError(f"{type(inner).__name__} has no `{prefix}` backbone and `score` head")
    return backbone, head


def _in_caller_order(values: list[torch.Tensor], order: list[torch.Tensor]) -> torch.Tensor:
    """Concatenate per-sub-batch values and put them back at their original indices."""
    values, order = torch.cat(values), torch.cat(order)
    return torch.empty_like(values).index_copy(0, order, values)


def _sub_batch_rewards(model, batch: dict[str, Any]) -> torch.Tensor:
    rewards, order = [], []
    for sub in batch["sub_batches"]:
        rewards.append(_padded_rewards(model, sub))
        order.append(sub["sequence_index"])
    return _in_caller_order(rewards, order)


def _padded_rewards(model, batch: dict[str, Any]) -> torch.Tensor:
    return model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits.squeeze(-1)


@contextlib.contextmanager
def _capture(module: torch.nn.Module, inputs: bool = False) -> Iterator[list[torch.Tensor]]:
    """Record what `module` returns (or, with `inputs`, its first argument) during the block.

    The packed layouts read the reward at several positions of one row, while `*ForSequenceClassification` returns
    one pooled value per row. Capturing the head's per-token output (or the pooler's input) lets the model still be
    called through its own forward, and so through the DDP/FSDP wrapper around it, which must see every forward.
    """
    captured: list[torch.Tensor] = []
    if inputs:
        handle = module.register_forward_pre_hook(lambda _, args: captured.append(args[0]))
    else:
        handle = module.register_forward_hook(lambda _, __, output: captured.append(output))
    try:
        yield captured
    finally:
        handle.remove()


def _packed_forward(model: torch.nn.Module, batch: dict[str, Any]) -> None:
    model(
        input_ids=batch["input_ids"],
        position_ids=batch["position_ids"],
        use_cache=False,
        **{SEGMENTS_KWARG: batch["segments"]},
    )


def _packed_rewards(model, batch: dict[str, Any]) -> torch.Tensor:
    backbone, head = split_backbone_and_head(model)
    if backbone.config._attn_implementation != ATTENTION_NAME:
        raise ValueError(f"packed sequences need attn_implementation={ATTENTION_NAME!r} (see rewardlab.attention)")
    with _capture(head) as captured:
        _packed_forward(model, batch)
    token_rewards = captured[0][0].squeeze(-1)  # the head's output at every position of the row: (n,) or (n, heads)
    return token_rewards[batch["readout_index"]]


def split_encoder_and_head(model: torch.nn.Module) -> tuple[torch.nn.Module, Any]:
    """The encoder of a BERT-style `*ForSequenceClassification` and a function from first-token states to rewards.

    These models pool the first token ([CLS]) through `encoder.pooler`, then apply `dropout` and `classifier`.
    """
    inner = unwrap_reward_model(model)
    encoder = getattr(inner, getattr(inner, "base_model_prefix", ""), None)
    pooler = getattr(encoder, "pooler", None)
    if pooler is None or not hasattr(inner, "classifier") or not hasattr(inner, "dropout"):
        raise ValueError(f"{type(inner).__name__} is not a BERT-style encoder with pooler and classifier")

    def head(first_token_states: torch.Tensor) -> torch.Tensor:
        return inner.classifier(inner.dropout(pooler(first_token_states[:, None, :]))).squeeze(-1)

    return encoder, head


def _packed_encoder_rewards(model, batch: dict[str, Any]) -> torch.Tensor:
    encoder, head = split_encoder_and_head(model)
    with _capture(encoder.pooler, inputs=True) as captured:
        _packed_forward(model, batch)
    return head(captured[0][0, batch["first_index"]])


def _micro_batch_rewards(model, batch: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor]:
    chosen, rejected, order = [], [], []
    for micro in batch["micro_batches"]:
        rewards_chosen, rewards_rejected = pair_rewards(model, micro)
        chosen.append(rewards_chosen)
        rejected.append(rewards_rejected)
        order.append(micro["example_index"])
    return _in_caller_order(chosen, order), _in_caller_order(rejected, order)


def sequence_rewards(model: torch.nn.Module, batch: dict[str, Any]) -> torch.Tensor:
    """The reward of every sequence of a collated batch, in the batch's sequence order, whatever its layout."""
    if "first_index" in batch:
        return _packed_encoder_rewards(model, batch)
    if "segments" in batch:
        return _packed_rewards(model, batch)
    if "sub_batches" in batch:
        return _sub_batch_rewards(model, batch)
    return _padded_rewards(model, batch)


def pair_rewards(model: torch.nn.Module, batch: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor]:
    """(rewards_chosen, rewards_rejected) of a batch from `DataCollatorForPreference` or the fast collator."""
    if "micro_batches" in batch:
        return _micro_batch_rewards(model, batch)
    rewards_chosen, rewards_rejected = sequence_rewards(model, batch).chunk(2)
    return rewards_chosen, rewards_rejected


def enable_shared_prompt(model: torch.nn.Module, pad_token_id: int | None) -> str | None:
    """Switch a causal model to packed pairs with the prompt computed once; return why not (model left unchanged)."""
    try:
        split_backbone_and_head(model)
    except ValueError as e:
        return f"not a causal model with a score head ({e})"
    return _enable_packed_layout(model, pad_token_id, {"share_prompt": True})


def enable_packed_sequences(model: torch.nn.Module, pad_token_id: int | None) -> str | None:
    """Switch a BERT-style encoder to packed sequences (one row, attention per sequence); return why not."""
    try:
        split_encoder_and_head(model)
    except ValueError as e:
        return str(e)
    return _enable_packed_layout(model, pad_token_id, {"pack_sequences": True})


def _uses_sliding_window(config: Any) -> bool:
    config = config.get_text_config() if hasattr(config, "get_text_config") else config
    if "sliding_attention" in (getattr(config, "layer_types", None) or ()):
        return True
    return bool(getattr(config, "sliding_window", None)) and getattr(config, "use_sliding_window", True)


def _enable_packed_layout(model: torch.nn.Module, pad_token_id: int | None, layout: dict[str, bool]) -> str | None:
    """Set the model's attention to `rewardlab.attention.pair_attention` and check the layout against padding.

    `pair_attention` is plain SDPA unless it is given packed spans. Rather than trusting a list of architectures,
    both layouts run on two small synthetic pairs and must agree: an architecture that ignores positions or the
    spans shows up as a mismatch, never as a wrong reward. On a mismatch the attention is switched back.
    """
    from rewardlab.data.collate import DataCollatorForFastPreference, DataCollatorForPreference

    inner = unwrap_reward_model(model)
    if _uses_sliding_window(inner.config):
        # A window limits attention within a sequence, which the per-pair masks do not express.
        return "sliding-window attention is not supported by the packed layouts"
    original = inner.config._attn_implementation
    vocab = inner.get_input_embeddings().weight.shape[0]
    ids = [i for i in range(min(vocab, 64)) if i != pad_token_id][:12]
    prompt = ids[:5]
    pairs = [
        {"chosen_ids": prompt + ids[5:8], "rejected_ids": prompt + ids[8:12]},
        {"chosen_ids": ids[2:4] + ids[6:7], "rejected_ids": ids[2:4] + ids[9:12]},
    ]
    pad = pad_token_id if pad_token_id is not None else 0
    device = next(inner.parameters()).device
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            reference = torch.cat(pair_rewards(model, send_to_device(DataCollatorForPreference(pad)(pairs), device)))
            inner.set_attn_implementation(register_pair_attention())
            fast_batch = DataCollatorForFastPreference(pad, **layout)(pairs)
            fast = torch.cat(pair_rewards(model, send_to_device(fast_batch, device)))
    except Exception as e:  # any failure of the custom layout means: use the plain one
        problem = f"the model failed on the packed layout ({type(e).__name__}: {e})"
    else:
        dtype = next(inner.parameters()).dtype
        tolerance = 1e-4 if dtype == torch.float32 else 5e-2 * max(1.0, reference.abs().max().item())
        diff = (reference.float() - fast.float()).abs().max().item()
        problem = (
            None if diff <= tolerance else f"packed pairs do not reproduce its rewards (they differ by {diff:.3g})"
        )
    finally:
        model.train(was_training)
    if problem and inner.config._attn_implementation != original:
        inner.set_attn_implementation(original)
    return problem
