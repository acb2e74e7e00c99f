"""Compute the reward of every sequence of a collated batch, whatever its layout (`rewardlab.layout.batch`).

Every layout calls the model's own forward (once per packed row or sub-batch), so the DDP/FSDP wrapper around it
sees every forward, and returns the rewards in the batch's sequence order with the loss, metrics and gradients of
the padded batch. Rewards are (S,) per sequence, or (S, N) for an ensemble of N heads (`rewardlab.model.heads`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import torch

from rewardlab._compat import attention_implementation
from rewardlab.layout.attention import ATTENTION_NAME
from rewardlab.layout.batch import Layout, layout_of
from rewardlab.layout.varlen import VARLEN_KEY, VARLEN_KWARG, SealedPlan
from rewardlab.model.parts import split_backbone_and_head, split_encoder_and_head


def sequence_rewards(model: torch.nn.Module, batch: dict[str, Any]) -> torch.Tensor:
    """The reward of every sequence of a collated batch, (S,) or (S, N), in the batch's sequence order."""
    return _REWARDS[layout_of(batch)](model, batch)


def pair_rewards(model: torch.nn.Module, batch: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor]:
    """(rewards_chosen, rewards_rejected), (B,) or (B, N) each, of a batch of pairs (`DataCollatorForPreference`:
    all chosen sequences, then all rejected ones)."""
    rewards_chosen, rewards_rejected = sequence_rewards(model, batch).chunk(2)
    return rewards_chosen, rewards_rejected


def _padded_rewards(model: torch.nn.Module, batch: dict[str, Any]) -> torch.Tensor:
    return model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits.squeeze(-1)


def _in_caller_order(values: list[torch.Tensor], order: list[torch.Tensor]) -> torch.Tensor:
    """Concatenate per-part values and put them back at their original positions."""
    values, order = torch.cat(values), torch.cat(order)
    return torch.empty_like(values).index_copy(0, order, values)


def _sub_batch_rewards(model: torch.nn.Module, batch: dict[str, Any]) -> torch.Tensor:
    parts = batch["sub_batches"]
    return _in_caller_order([_padded_rewards(model, s) for s in parts], [s["sequence_index"] for s in parts])


def _micro_batch_rewards(model: torch.nn.Module, batch: dict[str, Any]) -> torch.Tensor:
    parts = batch["micro_batches"]
    return _in_caller_order([sequence_rewards(model, m) for m in parts], [m["sequence_index"] for m in parts])


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
        **{VARLEN_KWARG: SealedPlan(batch[VARLEN_KEY])},
    )


def _shared_prefix_rewards(model: torch.nn.Module, batch: dict[str, Any]) -> torch.Tensor:
    backbone, head = split_backbone_and_head(model)
    if attention_implementation(backbone) != ATTENTION_NAME:
        raise ValueError(f"packed sequences need attn_implementation={ATTENTION_NAME!r} (see rewardlab.layout)")
    with _capture(head) as captured:
        _packed_forward(model, batch)
    token_rewards = captured[0][0].squeeze(-1)  # the head's output at every position of the row: (n,) or (n, heads)
    return token_rewards[batch["readout_index"]]


def _packed_rewards(model: torch.nn.Module, batch: dict[str, Any]) -> torch.Tensor:
    encoder, head = split_encoder_and_head(model)
    with _capture(encoder.pooler, inputs=True) as captured:
        _packed_forward(model, batch)
    return head(captured[0][0, batch["first_index"]])  # the [CLS] states (S, hidden) through pooler and head


_REWARDS: dict[Layout, Callable[[torch.nn.Module, dict[str, Any]], torch.Tensor]] = {
    Layout.PADDED: _padded_rewards,
    Layout.SUB_BATCHES: _sub_batch_rewards,
    Layout.PACKED: _packed_rewards,
    Layout.SHARED_PREFIX: _shared_prefix_rewards,
    Layout.PACKED_CAUSAL: _shared_prefix_rewards,  # groups of one sequence: the same keys, read the same way
    Layout.MICRO_BATCHES: _micro_batch_rewards,
}
