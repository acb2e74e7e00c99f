"""Variable-length attention over a packed row: every segment's queries attend to its own keys, with no mask.

A packed row holds groups `[prefix | tail_1 | ... | tail_K]` (shared-prefix groups) or whole sequences (packed
encoders). Its attention is a list of segments, each a contiguous run of queries and the keys they see:

- the first sequence of a group: queries `prefix + tail_1` over the same keys, causal;
- every later sequence i: queries `tail_i` over keys `prefix + tail_i`, causal with the diagonal aligned to the
  bottom right (the last query sees every key), so no query ever sees another sequence's tail;
- a sequence of its own (a group of one, or an encoder's sequence): queries over its own keys, causal or not.

The segments' queries tile the row in order, so the queries need no gathering; the keys and values of a segment are
gathered from the row with `kv_index`, computed once per batch by the collator (`varlen_plan`). That is the
interface of FlashAttention's varlen kernel (`cu_seq_q`, `cu_seq_k`, `max_q`, `max_k`). The kernels here compute it:

- `reference_attention`: plain torch with an explicit mask per segment; the definition the others are tested against.
- `segment_attention`: PyTorch's SDPA once per segment (any device and dtype): square segments run with
  `is_causal`, the others with their (queries x keys) causal mask. A short group whose segments cost little more as
  one dense (group x group) masked call runs as that one call (`GROUP_CALL_MAX_COST`, `GROUP_CALL_MAX_TOKENS`): on
  CPU, fewer SDPA calls win for short groups, the backward above all (see BENCHMARKS.md). Written by hand because
  no kernel in torch takes varlen segments on CPU (`varlen_attn` is CUDA-only, FlexAttention has no CPU backward in
  torch 2.13).
- `flash_varlen_attention`: `torch.nn.attention.varlen.varlen_attn` (FlashAttention varlen, CUDA, fp16/bf16): one
  call for the whole row per layer.

Every kernel takes token-major tensors, query (L, Hq, D) and key/value (L, Hkv, D) with Hq a multiple of Hkv
(grouped-query attention), and returns (L, Hq, D).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn.functional as F

from rewardlab._compat import varlen_attn_takes_enable_gqa

# Where a varlen plan travels in a batch, and the keyword under which the model's forward passes it to attention.
VARLEN_KEY = "varlen"
VARLEN_KWARG = "rewardlab_varlen"

Span = tuple[int, int]


class SealedPlan:
    """A varlen plan handed to the model's forward as one opaque object. Compiled layers (`rewardlab.layout.compile`)
    pass it through to attention untouched; as a dict, torch.compile would guard on its lists of segment bounds and
    recompile the layers for every batch."""

    __slots__ = ("plan",)

    def __init__(self, plan: dict[str, Any]):
        self.plan = plan


# A group of segments runs as one dense masked SDPA call on CPU when that computes at most this many times the
# query-key pairs its segments need (HH-RLHF pairs: about 1.25; RM-Bench's short prompts and long answers: about 2),
# and when the group is at most GROUP_CALL_MAX_TOKENS long: past that, SDPA's fused kernel per segment, which skips
# the masked half of a causal square, beats saving calls (measured in BENCHMARKS.md).
GROUP_CALL_MAX_COST = 1.5
GROUP_CALL_MAX_TOKENS = 320


def varlen_plan(
    query_spans: Sequence[Span],
    key_spans: Sequence[Sequence[Span]],
    causal: bool,
    groups: Sequence[Span] = (),
) -> dict[str, Any]:
    """The varlen description of a packed row, from each segment's query span and key spans (row positions).

    `query_spans` must tile the row in order. Returns `cu_seq_q`, `cu_seq_k` (int32, (segments + 1,)), `kv_index`
    (int64, every segment's key positions in order; None when every segment's keys are its own queries), `max_q`,
    `max_k`, `causal`, `segments`: per segment (q_start, q_end, k_start, k_end) as Python ints, the offsets into the
    queries and into the gathered keys, `key_spans`: per segment its keys as row spans, and `group_calls`: those of
    `groups` (ranges `(first, last + 1)` of segments that together cover a contiguous span, e.g. a shared-prefix
    group) cheaper as one call on CPU (`GROUP_CALL_MAX_COST`, `GROUP_CALL_MAX_TOKENS`), by their first segment: the
    range's end. Their masks are built by the kernel that uses them, on its device: a GPU on FlashAttention never
    needs them.
    """
    cu_q, cu_k, kv_index, segments = [0], [0], [], []
    identity = True
    for (q_start, q_end), spans in zip(query_spans, key_spans, strict=True):
        if q_start != cu_q[-1]:
            raise ValueError(f"query spans must tile the row in order: {q_start} follows {cu_q[-1]}")
        keys = [p for start, end in spans for p in range(start, end)]
        identity = identity and keys == list(range(q_start, q_end))
        segments.append((q_start, q_end, cu_k[-1], cu_k[-1] + len(keys)))
        kv_index += keys
        cu_q.append(q_end)
        cu_k.append(cu_k[-1] + len(keys))
    lengths_q = [end - start for start, end in query_spans]
    return {
        "cu_seq_q": torch.tensor(cu_q, dtype=torch.int32),
        "cu_seq_k": torch.tensor(cu_k, dtype=torch.int32),
        "kv_index": None if identity else torch.tensor(kv_index, dtype=torch.long),
        "max_q": max(lengths_q, default=0),
        "max_k": max((k_end - k_start for _, _, k_start, k_end in segments), default=0),
        "causal": causal,
        "segments": segments,
        "key_spans": [list(spans) for spans in key_spans],
        "group_calls": _group_calls(query_spans, key_spans, groups),
    }


def _group_calls(
    query_spans: Sequence[Span], key_spans: Sequence[Sequence[Span]], groups: Sequence[Span]
) -> dict[int, int]:
    calls = {}
    for first, last in groups:
        length = query_spans[last - 1][1] - query_spans[first][0]
        pairs = [
            (query_spans[i][1] - query_spans[i][0]) * sum(e - s for s, e in key_spans[i]) for i in range(first, last)
        ]
        needed = sum(pairs)
        if last - first >= 2 and length <= GROUP_CALL_MAX_TOKENS and length**2 <= GROUP_CALL_MAX_COST * needed:
            calls[first] = last
    return calls


def group_mask(plan: dict[str, Any], first: int, last: int, device: torch.device) -> torch.Tensor:
    """The (n, n) bool mask of the group call of segments `first` to `last - 1`: each segment's queries over its
    keys."""
    start, end = plan["segments"][first][0], plan["segments"][last - 1][1]
    mask = torch.zeros(end - start, end - start, dtype=torch.bool, device=device)
    for (q_start, q_end, _, _), spans in zip(plan["segments"][first:last], plan["key_spans"][first:last], strict=True):
        keys = torch.cat([torch.arange(s - start, e - start, device=device) for s, e in spans])
        allowed = causal_mask(q_end - q_start, len(keys), device)
        mask[q_start - start : q_end - start, keys] = allowed if plan["causal"] else True
    return mask


def group_segments(
    offset: int, prefix_length: int, tail_starts: Sequence[int], length: int
) -> list[tuple[Span, list[Span]]]:
    """The (query span, key spans) of one shared-prefix group placed at `offset` in the row (see the module doc)."""
    ends = [*tail_starts[1:], length]
    segments = [((offset, offset + ends[0]), [(offset, offset + ends[0])])]
    prefix = [(offset, offset + prefix_length)] if prefix_length else []
    for start, end in zip(tail_starts[1:], ends[1:], strict=True):
        own = (offset + start, offset + end)
        segments.append((own, [*prefix, own]))
    return segments


def _gathered(key: torch.Tensor, value: torch.Tensor, plan: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor]:
    index = plan["kv_index"]
    if index is None:
        return key, value
    return key.index_select(0, index), value.index_select(0, index)


def _repeat_heads(tensor: torch.Tensor, heads: int) -> torch.Tensor:
    """(L, Hkv, D) -> (L, heads, D), each key/value head serving heads / Hkv query heads (grouped-query attention)."""
    return tensor if tensor.shape[1] == heads else tensor.repeat_interleave(heads // tensor.shape[1], dim=1)


def causal_mask(queries: int, keys: int, device: torch.device | None = None) -> torch.Tensor:
    """(queries, keys) bool mask, True where a query may attend: causal, diagonal aligned to the bottom right."""
    return torch.ones(queries, keys, dtype=torch.bool, device=device).tril_(keys - queries)


def reference_attention(
    query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, plan: dict[str, Any], scale: float | None = None
) -> torch.Tensor:
    """The definition: softmax(q k^T * scale + mask) v per segment, in float32, with an explicit mask."""
    key, value = _gathered(key, value, plan)
    heads = query.shape[1]
    key, value = _repeat_heads(key, heads), _repeat_heads(value, heads)
    scale = query.shape[-1] ** -0.5 if scale is None else scale
    outputs = []
    for q_start, q_end, k_start, k_end in plan["segments"]:
        q = query[q_start:q_end].transpose(0, 1).float()  # (H, Lq, D)
        k, v = key[k_start:k_end].transpose(0, 1).float(), value[k_start:k_end].transpose(0, 1).float()
        scores = q @ k.transpose(1, 2) * scale
        if plan["causal"]:
            allowed = causal_mask(q_end - q_start, k_end - k_start, query.device)
            scores = scores.masked_fill(~allowed, float("-inf"))
        outputs.append((scores.softmax(-1) @ v).transpose(0, 1).to(query.dtype))
    return torch.cat(outputs)


def segment_attention(
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    plan: dict[str, Any],
    scale: float | None = None,
    dropout: float = 0.0,
) -> torch.Tensor:
    """SDPA once per segment, mask-free where the segment is square, or once per group where cheaper (see the
    module doc). Keys and values are sliced from the row, copied only for segments whose keys are not contiguous."""
    heads = query.shape[1]
    key, value = _repeat_heads(key, heads), _repeat_heads(value, heads)
    # (1, H, L, D): SDPA's fused CPU kernel takes 4-d inputs only; 3-d ones fall back to the unfused computation,
    # about 3x slower and holding every (query x key) score for the backward.
    q_all, k_all, v_all = (t.transpose(0, 1)[None] for t in (query, key, value))
    segments, calls = plan["segments"], plan["group_calls"]
    masks = plan.setdefault("group_masks", {})  # built once per batch, on first use, for every layer
    outputs = []
    options = {"dropout_p": dropout, "scale": scale}
    i = 0
    while i < len(segments):
        if i in calls:  # a group as one call
            last = calls[i]
            if i not in masks:
                masks[i] = group_mask(plan, i, last, query.device)
            start, end = segments[i][0], segments[last - 1][1]
            q, k, v = (t[:, :, start:end] for t in (q_all, k_all, v_all))
            outputs.append(F.scaled_dot_product_attention(q, k, v, attn_mask=masks[i], **options))
            i = last
            continue
        (q_start, q_end, _, _), spans = segments[i], plan["key_spans"][i]
        i += 1
        q = q_all[:, :, q_start:q_end]
        k, v = (
            torch.cat([t[:, :, s:e] for s, e in spans], dim=2) if len(spans) > 1 else t[:, :, spans[0][0] : spans[0][1]]
            for t in (k_all, v_all)
        )
        square = q_end - q_start == k.shape[2]
        mask = None if square or not plan["causal"] else causal_mask(q_end - q_start, k.shape[2], q.device)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=plan["causal"] and square, **options)
        outputs.append(out)
    return torch.cat(outputs, dim=2)[0].transpose(0, 1)


def flash_varlen_attention(
    query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, plan: dict[str, Any], scale: float | None = None
) -> torch.Tensor:
    """FlashAttention varlen (`torch.nn.attention.varlen.varlen_attn`, CUDA, fp16/bf16): one call for the row."""
    from torch.nn.attention.varlen import varlen_attn

    key, value = _gathered(key, value, plan)
    grouped = {}
    if query.shape[1] != key.shape[1]:
        if varlen_attn_takes_enable_gqa():
            grouped["enable_gqa"] = True
        else:
            key, value = _repeat_heads(key, query.shape[1]), _repeat_heads(value, query.shape[1])
    return varlen_attn(
        query,
        key,
        value,
        plan["cu_seq_q"],
        plan["cu_seq_k"],
        plan["max_q"],
        plan["max_k"],
        scale=scale,
        window_size=(-1, 0) if plan["causal"] else (-1, -1),
        **grouped,
    )


FLASH_VARLEN = "flash_varlen"
SEGMENT_SDPA = "segment_sdpa"
KERNELS: dict[str, Callable[..., torch.Tensor]] = {
    FLASH_VARLEN: flash_varlen_attention,
    SEGMENT_SDPA: segment_attention,
}


@functools.cache
def flash_varlen_available() -> bool:
    """Whether this torch has the CUDA varlen kernel and a CUDA device to run it on."""
    try:
        from torch.nn.attention.varlen import varlen_attn  # noqa: F401
    except ImportError:
        return False
    return torch.cuda.is_available()


def choose_kernel(device: torch.device, dtype: torch.dtype, dropout: float = 0.0) -> tuple[str, str]:
    """The kernel for attention on `device` in `dtype`, and why: FlashAttention varlen on CUDA in fp16/bf16 without
    attention dropout (it has none), else SDPA per segment."""
    if device.type != "cuda":
        return SEGMENT_SDPA, f"SDPA per segment on {device.type} (FlashAttention varlen needs CUDA)"
    if dtype not in (torch.float16, torch.bfloat16):
        return SEGMENT_SDPA, f"SDPA per segment (FlashAttention varlen needs fp16/bf16, the model is {dtype})"
    if dropout > 0:
        return SEGMENT_SDPA, "SDPA per segment (FlashAttention varlen has no attention dropout)"
    if not flash_varlen_available():
        return SEGMENT_SDPA, "SDPA per segment (no CUDA device, or this torch has no torch.nn.attention.varlen)"
    return FLASH_VARLEN, f"FlashAttention varlen (torch.nn.attention.varlen) on CUDA in {dtype}"
