"""Choose the batch layout for a model: the one rule that training, evaluation and scoring share.

The fastest exact layout the model supports, tried in order: `SHARED_PREFIX` (causal models: the prompt computed
once; `PACKED_CAUSAL`, packed without sharing, when `share_prompt=False`), `PACKED` (BERT-style encoders: sequences
packed into one row), `SUB_BATCHES` (any architecture, one
process), `PADDED` (TRL's layout). Each padding-free candidate must pass the start-up check
(`rewardlab.layout.probe`). One log line says which layout was chosen and why the faster ones were not.
"""

from __future__ import annotations

import logging

import torch

from rewardlab.layout.batch import Layout
from rewardlab.layout.probe import probe_packed_layout
from rewardlab.layout.varlen import choose_kernel
from rewardlab.model.parts import split_backbone_and_head, split_encoder_and_head, unwrap_reward_model

logger = logging.getLogger(__name__)


def choose_layout(
    model: torch.nn.Module,
    pad_token_id: int | None,
    *,
    padding_free: bool = True,
    share_prompt: bool | None = None,
    processes: int = 1,
    compute: tuple[torch.device, torch.dtype] | None = None,
) -> Layout:
    """The layout `model` computes batches in; switches the model's attention for the packed layouts.

    `padding_free=False`: `PADDED`. `share_prompt`: None tries `SHARED_PREFIX` and falls back quietly (an encoder
    has no prompt to share); True warns when it cannot be used; False packs a causal model's sequences without
    sharing (`PACKED_CAUSAL`, to measure what sharing adds). `processes > 1`: no `SUB_BATCHES`, whose several
    forward calls before one backward DDP/FSDP wrappers do not allow. `compute`: the device and dtype
    attention will run in, for the log line (default: the model's parameters'; a trainer about to move the model to
    a GPU under bf16 autocast passes those).
    """
    name = type(unwrap_reward_model(model)).__name__
    if not padding_free:
        return _chosen(name, Layout.PADDED, "padding_free is off")
    reasons = []
    warn = False
    if share_prompt is not False:
        problem = _shared_prefix_problem(model, pad_token_id)
        if problem is None:
            why = f"a causal model that passed the start-up check; attention: {_kernel(model, compute)}"
            return _chosen(name, Layout.SHARED_PREFIX, why)
        reasons.append(f"share_prompt is off: {problem}")
        # Expected for encoders (nothing to share), so only a causal model that fails the check warns.
        warn = bool(share_prompt) or not problem.startswith("not a causal model")
    elif _is_causal(model):
        problem = probe_packed_layout(model, pad_token_id, Layout.PACKED_CAUSAL)
        if problem is None:
            why = f"share_prompt is off, so every sequence is packed on its own; attention: {_kernel(model, compute)}"
            return _chosen(name, Layout.PACKED_CAUSAL, why)
        reasons.append(f"cannot pack causal sequences: {problem}")
        warn = True
    problem = _packed_problem(model, pad_token_id)
    if problem is None:
        why = "; ".join(reasons) or "an encoder that passed the start-up check"
        return _chosen(name, Layout.PACKED, f"{why}; attention: {_kernel(model, compute)}", warn)
    reasons.append(f"cannot pack sequences: {problem}")
    if processes > 1:
        reasons.append("sub-batches need one process")
        return _chosen(name, Layout.PADDED, "; ".join(reasons), warn=True)
    return _chosen(name, Layout.SUB_BATCHES, "; ".join(reasons), warn)


def _kernel(model: torch.nn.Module, compute: tuple[torch.device, torch.dtype] | None) -> str:
    """Which varlen kernel the packed rows' attention runs on (`rewardlab.layout.varlen.choose_kernel`), and why;
    calls without a varlen plan keep the model's own attention implementation."""
    if compute is None:
        parameter = next(unwrap_reward_model(model).parameters())
        compute = parameter.device, parameter.dtype
    _, why = choose_kernel(*compute)
    return why


def _is_causal(model: torch.nn.Module) -> bool:
    try:
        split_backbone_and_head(model)
    except ValueError:
        return False
    return True


def _shared_prefix_problem(model: torch.nn.Module, pad_token_id: int | None) -> str | None:
    try:
        split_backbone_and_head(model)
    except ValueError as e:
        return f"not a causal model with a score head ({e})"
    return probe_packed_layout(model, pad_token_id, Layout.SHARED_PREFIX)


def _packed_problem(model: torch.nn.Module, pad_token_id: int | None) -> str | None:
    try:
        split_encoder_and_head(model)
    except ValueError as e:
        return str(e)
    return probe_packed_layout(model, pad_token_id, Layout.PACKED)


def _chosen(model_name: str, layout: Layout, why: str, warn: bool = False) -> Layout:
    (logger.warning if warn else logger.info)("%s computes batches in the %s layout: %s", model_name, layout, why)
    return layout
