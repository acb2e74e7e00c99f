"""Regional compilation: `torch.compile` of each transformer layer (decoder or encoder block), not of the model.

The layers of a model are identical code, so one compiled graph serves all of them (torch compiles the layer once
and reuses it with each layer's parameters), and compiling them takes seconds where the whole model takes minutes.
Packed rows change length every step, so the layers are compiled with dynamic shapes: one compilation covers every
length. Attention is left out of the graph (`packed_attention` is excluded from compilation): its varlen plan holds
Python lists of segment bounds that differ every batch and would otherwise recompile the layer every step; what
compiles is the rest of the layer, the norms, projections, rotary embedding and MLP, where the fusions are.

`compile_layers` compiles, then runs a warm-up (a forward and backward on the model's device), and if anything in
it fails puts the layers back to eager with one log line: a model torch cannot compile still trains.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import torch

from rewardlab.model.parts import unwrap_reward_model

logger = logging.getLogger(__name__)


def transformer_layers(model: torch.nn.Module) -> list[torch.nn.Module]:
    """The repeated blocks of `model` (a `*ForSequenceClassification`, wrapped or not): the longest `ModuleList` of
    the classes the model names in `_no_split_modules` (e.g. `Qwen3DecoderLayer`, `BertLayer`); [] if none."""
    inner = unwrap_reward_model(model)
    blocks = set(getattr(inner, "_no_split_modules", None) or ())
    stacks = [
        list(m)
        for m in inner.modules()
        if isinstance(m, torch.nn.ModuleList) and len(m) and all(type(c).__name__ in blocks for c in m)
    ]
    return max(stacks, key=len, default=[])


def uncompile_layers(layers: list[torch.nn.Module]) -> None:
    """Put layers compiled by `compile_layers` back to eager."""
    for layer in layers:
        layer._compiled_call_impl = None  # what `nn.Module.compile` sets; None calls the module eagerly


def compile_layers(model: torch.nn.Module, warm_up: Callable[[], None]) -> bool:
    """Compile `model`'s `transformer_layers` (dynamic shapes, torch's default backend) and call `warm_up`, which
    should run a forward and backward as training will; on any failure, back to eager with one warning. Returns
    whether the layers run compiled. Gradients left by the warm-up are cleared."""
    layers = transformer_layers(model)
    name = type(unwrap_reward_model(model)).__name__
    if not layers:
        logger.warning("compile_layers: %s has no stack of layers named in _no_split_modules; it runs eagerly", name)
        return False
    for layer in layers:
        layer.compile(dynamic=True)
    try:
        warm_up()
    except Exception as e:  # any failure to compile means: train eagerly, as without the option
        uncompile_layers(layers)
        first_line = str(e).strip().splitlines()[0] if str(e).strip() else ""
        logger.warning(
            "compile_layers: compiling %s's layers failed (%s: %s); training runs eagerly",
            name,
            type(e).__name__,
            first_line,
        )
        return False
    finally:
        model.zero_grad(set_to_none=True)
    logger.info("compile_layers: %d %s layers of %s compiled", len(layers), type(layers[0]).__name__, name)
    return True
