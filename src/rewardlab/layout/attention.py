"""The attention function of the packed layouts, registered with transformers' `AttentionInterface`.

Packing every sequence of a batch into one row gives the projections and MLPs a single large matrix product and no
padding at all. Attention over that row runs as variable-length segments (`rewardlab.layout.varlen`): each
sequence's queries see only its own keys (a shared-prefix group's later sequences: the prefix and themselves), with
no mask over the row. A call without a varlen plan (the padded layout, an unpacked forward) goes to the attention
implementation the model had before the fast path took over, so a user's `attn_implementation` (e.g.
`flash_attention_2`) still runs everything the fast path does not.
"""

from __future__ import annotations

from typing import Any

import torch
from transformers import AttentionInterface
from transformers.integrations.sdpa_attention import sdpa_attention_forward
from transformers.masking_utils import AttentionMaskInterface, sdpa_mask
from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS

from rewardlab._compat import attention_implementation
from rewardlab.layout.varlen import KERNELS, VARLEN_KWARG, choose_kernel

ATTENTION_NAME = "rewardlab_pairs"
# The model's own attention implementation before the switch, kept on its modules (see `register_packed_attention`):
# not on its config, which would carry it into the saved config.json.
BASE_ATTENTION_KEY = "_rewardlab_base_attention"


def _base_attention(module: torch.nn.Module) -> Any:
    base = getattr(module, BASE_ATTENTION_KEY, None)
    if base in ALL_ATTENTION_FUNCTIONS and base != ATTENTION_NAME:
        return ALL_ATTENTION_FUNCTIONS[base]
    return sdpa_attention_forward  # for eager (model-specific, not registered): equal up to rounding, and faster


def packed_attention(
    module: torch.nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    **kwargs: Any,
) -> tuple[torch.Tensor, None]:
    """Attention of one packed row (query (1, Hq, L, D), key/value (1, Hkv, L, D)) by its varlen plan, returned as
    (1, L, Hq, D); without a plan, the model's own attention."""
    plan = kwargs.pop(VARLEN_KWARG, None)
    if plan is None:
        return _base_attention(module)(module, query, key, value, attention_mask, **kwargs)
    plan = plan.plan  # a `SealedPlan`
    if torch.is_autocast_enabled(query.device.type):
        # Under mixed precision SDPA computes in the autocast dtype, whatever its inputs (rotary embeddings leave
        # query and key in float32). The varlen kernels are not autocast ops: give them what SDPA would compute on,
        # which is also what lets FlashAttention varlen run under bf16/fp16 autocast.
        dtype = torch.get_autocast_dtype(query.device.type)
        query, key, value = (t.to(dtype) for t in (query, key, value))
    dropout = kwargs.get("dropout", 0.0) if module.training else 0.0
    kernel, _ = choose_kernel(query.device, query.dtype, dropout)
    q, k, v = (t[0].transpose(0, 1) for t in (query, key, value))  # token-major (L, H, D)
    options = {"dropout": dropout} if dropout else {}
    return KERNELS[kernel](q, k, v, plan, scale=kwargs.get("scaling"), **options)[None], None


def packed_mask(*args: Any, attention_mask: torch.Tensor | None = None, **kwargs: Any) -> torch.Tensor | None:
    """The row mask transformers builds before the layers: SDPA's, except that without a padding mask there is none.

    rewardlab calls a model without `attention_mask` only with unpadded sequences: a single one (plain causal
    attention, which SDPA does without a mask) or a packed row, whose attention the varlen plan describes. For a
    packed row transformers would detect the restarting `position_ids` and build a dense (row x row) mask that
    `packed_attention` never reads. Sliding-window models, whose mask is needed even unpadded, are kept off the
    packed layouts by `rewardlab.layout.probe`.
    """
    if attention_mask is None:
        return None
    return sdpa_mask(*args, attention_mask=attention_mask, **kwargs)


def register_packed_attention(model: torch.nn.Module | None = None) -> str:
    """Make `ATTENTION_NAME` a valid `attn_implementation` (its masks are SDPA's), idempotently; given the `model`
    about to switch to it, remember its current implementation for the calls the fast path does not take over."""
    # Compiled layers (`rewardlab.layout.compile`) run attention eagerly: its varlen plan changes every batch.
    AttentionInterface.register(ATTENTION_NAME, torch.compiler.disable(packed_attention))
    AttentionMaskInterface.register(ATTENTION_NAME, packed_mask)
    current = None if model is None else attention_implementation(model)
    if current not in (None, ATTENTION_NAME):
        for module in model.modules():
            setattr(module, BASE_ATTENTION_KEY, current)
    return ATTENTION_NAME
