"""The start-up check that a model computes the padding-free layouts exactly: both layouts must agree.

Rather than trusting a list of architectures, the padded and the packed layout run on two small synthetic pairs
and must give the same rewards: an architecture that ignores positions or the packed spans shows up as a mismatch,
never as a wrong reward.
"""

from __future__ import annotations

from typing import Any

import torch
from accelerate.utils import send_to_device

from rewardlab._compat import attention_implementation
from rewardlab.layout.attention import register_packed_attention
from rewardlab.layout.batch import Layout
from rewardlab.layout.collate import lay_out
from rewardlab.layout.forward import sequence_rewards
from rewardlab.model.parts import unwrap_reward_model


def uses_sliding_window(config: Any) -> bool:
    """Whether a model's attention is limited to a window: the packed layouts' per-group masks do not express it."""
    config = config.get_text_config() if hasattr(config, "get_text_config") else config
    if "sliding_attention" in (getattr(config, "layer_types", None) or ()):
        return True
    return bool(getattr(config, "sliding_window", None)) and getattr(config, "use_sliding_window", True)


def probe_pairs(model: torch.nn.Module, pad_token_id: int | None) -> tuple[list[list[int]], list[list[int]]]:
    """Two small synthetic pairs as (chosen, rejected) sequences, one with a 5-token prompt and one with a 2-token
    prompt, and their groups: ids below 64 of `model`'s vocabulary, never `pad_token_id`."""
    vocab = model.get_input_embeddings().weight.shape[0]
    ids = [i for i in range(min(vocab, 64)) if i != pad_token_id][:12]
    prompt = ids[:5]
    sequences = [prompt + ids[5:8], ids[2:4] + ids[6:7], prompt + ids[8:12], ids[2:4] + ids[9:12]]
    return sequences, [[0, 2], [1, 3]]


def probe_packed_layout(model: torch.nn.Module, pad_token_id: int | None, layout: Layout) -> str | None:
    """Switch the model's attention to `rewardlab.layout.attention.packed_attention` and check that `layout`
    (`SHARED_PREFIX` or `PACKED`) reproduces the padded rewards; None if it does, else why not, with the model's
    attention switched back. bf16/fp16 models are compared within their rounding.

    `packed_attention` is the model's own attention unless given a varlen plan, so switching changes nothing else.
    """
    inner = unwrap_reward_model(model)
    if uses_sliding_window(inner.config):
        return "sliding-window attention is not supported by the packed layouts"
    original = attention_implementation(inner)
    sequences, groups = probe_pairs(inner, pad_token_id)
    pad = pad_token_id if pad_token_id is not None else 0
    device = next(inner.parameters()).device
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            padded = lay_out(sequences, Layout.PADDED, pad)
            reference = sequence_rewards(model, send_to_device(padded, device))
            inner.set_attn_implementation(register_packed_attention(inner))
            packed = lay_out(sequences, layout, pad, groups=groups)
            fast = sequence_rewards(model, send_to_device(packed, device))
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
    if problem and attention_implementation(inner) != original:
        inner.set_attn_implementation(original)
    return problem
