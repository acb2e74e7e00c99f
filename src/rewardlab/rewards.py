"""Compute the rewards of a collated batch of pairs, for each batch layout rewardlab's collators produce.

`pair_rewards` dispatches on the layout: the padded TRL layout goes through the model's own forward; the fast
layouts (see `rewardlab.packing`) run each sub-batch separately and return the rewards in the caller's order, so the
loss, metrics and gradients are those of the padded batch.
"""

from __future__ import annotations

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


def _sequence_rewards(model, batch: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor]:
    num_pairs = int(batch["num_pairs"])
    rewards, order = [], []
    for sub in batch["sub_batches"]:
        logits = model(input_ids=sub["input_ids"], attention_mask=sub["attention_mask"]).logits
        rewards.append(logits.squeeze(-1))
        order.append(sub["sequence_index"])
    out = _in_caller_order(rewards, order)
    return out[:num_pairs], out[num_pairs:]


def _packed_rewards(model, batch: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor]:
    backbone, head = split_backbone_and_head(model)
    if backbone.config._attn_implementation != ATTENTION_NAME:
        raise ValueError(f"packed pairs need attn_implementation={ATTENTION_NAME!r} (see rewardlab.attention)")
    chosen, rejected, order = [], [], []
    for sub in batch["sub_batches"]:
        hidden = backbone(
            input_ids=sub["input_ids"],
            position_ids=sub["position_ids"],
            use_cache=False,
            **{SEGMENTS_KWARG: sub["segments"]},
        ).last_hidden_state[0]
        # The head is linear and per token, so applying it to the read-out positions only equals reading its output.
        chosen.append(head(hidden[sub["chosen_index"]]).squeeze(-1))
        rejected.append(head(hidden[sub["rejected_index"]]).squeeze(-1))
        order.append(sub["pair_index"])
    return _in_caller_order(chosen, order), _in_caller_order(rejected, order)


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


def _packed_sequence_rewards(model, batch: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor]:
    encoder, head = split_encoder_and_head(model)
    num_pairs = int(batch["num_pairs"])
    rewards, order = [], []
    for sub in batch["sub_batches"]:
        hidden = encoder(
            input_ids=sub["input_ids"], position_ids=sub["position_ids"], **{SEGMENTS_KWARG: sub["segments"]}
        ).last_hidden_state[0]
        rewards.append(head(hidden[sub["first_index"]]))
        order.append(sub["sequence_index"])
    out = _in_caller_order(rewards, order)
    return out[:num_pairs], out[num_pairs:]


def pair_rewards(model: torch.nn.Module, batch: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor]:
    """(rewards_chosen, rewards_rejected) of a batch from `DataCollatorForPreference` or the fast collator."""
    if "sub_batches" not in batch:
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
        rewards_chosen, rewards_rejected = logits.squeeze(-1).chunk(2)
        return rewards_chosen, rewards_rejected
    first = batch["sub_batches"][0] if batch["sub_batches"] else {}
    if "first_index" in first:
        return _packed_sequence_rewards(model, batch)
    if "segments" in first:
        return _packed_rewards(model, batch)
    return _sequence_rewards(model, batch)


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


def _enable_packed_layout(model: torch.nn.Module, pad_token_id: int | None, layout: dict[str, bool]) -> str | None:
    """Set the model's attention to `rewardlab.attention.pair_attention` and check the layout against padding.

    `pair_attention` is plain SDPA unless it is given packed spans. Rather than trusting a list of architectures,
    both layouts run on two small synthetic pairs and must agree: an architecture that ignores positions or the
    spans shows up as a mismatch, never as a wrong reward. On a mismatch the attention is switched back.
    """
    from rewardlab.data.collate import DataCollatorForFastPreference, DataCollatorForPreference

    inner = unwrap_reward_model(model)
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
