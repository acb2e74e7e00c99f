"""Attention over a packed row of pairs: the linear layers see one long row, attention runs pair by pair.

Packing every pair of a batch into one row gives the projections and MLPs a single large matrix product (efficient
on CPUs and GPUs alike) and no padding at all. A dense mask over the packed row would make attention quadratic in the
row's total length on backends that cannot skip masked blocks (CPU SDPA, eager), so this attention function instead
runs SDPA on each pair's own span with that pair's prompt-sharing mask. It is registered with transformers'
`AttentionInterface`; without packing information it is exactly transformers' SDPA attention, so every other call
(the padded layout, plain evaluation) is unchanged. No existing kernel does this on CPU: flash-attention's varlen
needs CUDA and cannot express "the rejected response sees the prompt but not the chosen response".
"""

from __future__ import annotations

from typing import Any

import torch
from transformers import AttentionInterface
from transformers.integrations.sdpa_attention import sdpa_attention_forward
from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

ATTENTION_NAME = "rewardlab_pairs"
SEGMENTS_KWARG = "rewardlab_segments"


def pair_attention(
    module: torch.nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    **kwargs: Any,
) -> tuple[torch.Tensor, None]:
    """SDPA per packed pair; `rewardlab_segments` is a list of (start, end, bool mask of shape (1, 1, n, n))."""
    segments = kwargs.pop(SEGMENTS_KWARG, None)
    if segments is None:
        return sdpa_attention_forward(module, query, key, value, attention_mask, **kwargs)
    outputs = []
    for start, end, mask in segments:
        out, _ = sdpa_attention_forward(
            module, query[:, :, start:end], key[:, :, start:end], value[:, :, start:end], mask, **kwargs
        )
        outputs.append(out)
    return torch.cat(outputs, dim=1), None


def pair_mask(*args: Any, attention_mask: torch.Tensor | None = None, **kwargs: Any) -> torch.Tensor | None:
    """The row mask transformers builds before the layers: SDPA's, except that without a padding mask there is none.

    rewardlab calls a model without `attention_mask` only with unpadded sequences: a single one (plain causal
    attention, which SDPA does without a mask) or a packed row, whose per-pair masks travel in `rewardlab_segments`.
    For a packed row transformers would detect the restarting `position_ids` and build a dense (row x row) mask that
    `pair_attention` never reads: about a quarter of the time of a scoring call. Sliding-window models, whose mask
    is needed even unpadded, are kept off the packed layouts by `rewardlab.layout.probe`.
    """
    if attention_mask is None:
        return None
    return sdpa_mask(*args, attention_mask=attention_mask, **kwargs)


def register_pair_attention() -> str:
    """Make `ATTENTION_NAME` a valid `attn_implementation` (its masks are SDPA's); idempotent."""
    AttentionInterface.register(ATTENTION_NAME, pair_attention)
    AttentionMaskInterface.register(ATTENTION_NAME, pair_mask)
    return ATTENTION_NAME
