"""Attention of one packed training batch, forward + backward: the varlen formulations side by side.

A batch of HH-RLHF pairs (batch 8, max_length 512) is laid out as rewardlab trains it (`SHARED_PREFIX`), and random
queries, keys and values of one layer (the small Qwen3's heads: 4 query, 2 key/value heads of 64) go through:

- `segment_sdpa`: rewardlab's CPU kernel, SDPA once per varlen segment (square segments `is_causal`, the others
  with their bottom-right causal mask);
- `segment_lower_right`: the same with `torch.nn.attention.bias.causal_lower_right` for the non-square segments;
- `group_mask`: the formulation before the varlen kernels, one SDPA per pair with a dense (group x group) mask;
- `row_mask`: one SDPA over the whole row with a dense (row x row) mask (what a generic packed mask costs).

Medians of `--repeats` timings, with `--contention KIND` as in `train_throughput.py`.

`--sweep` measures instead what sets the CPU kernel's rules: SDPA on 3-d (heads, tokens, dim) against 4-d (1, heads,
tokens, dim) inputs for one causal segment of 2,048 tokens, and, for groups of two responses (60 and 50 tokens) to
prompts of 128 to 2,048 tokens, one dense masked call per group against SDPA per segment.

    python benchmarks/attention_kernels.py --repeats 30
    python benchmarks/attention_kernels.py --repeats 30 --contention training
    python benchmarks/attention_kernels.py --sweep --repeats 7
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from functools import partial
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.nn.attention.bias import causal_lower_right

sys.path.insert(0, str(Path(__file__).parent))
from train_throughput import DEFAULT_DATA, benchmark_tokenizer, competing, read_pairs  # noqa: E402

from rewardlab.layout import DataCollatorForPreference, Layout, lay_out  # noqa: E402
from rewardlab.layout.varlen import VARLEN_KEY, causal_mask, segment_attention  # noqa: E402


def batch_of_pairs(data: Path, n: int, max_length: int) -> dict:
    tok = benchmark_tokenizer(data)
    examples = []
    for pair in read_pairs(data, n):
        ids = [tok(pair[k])["input_ids"][-max_length:] + [tok.eos_token_id] for k in ("chosen", "rejected")]
        examples.append({"chosen_ids": ids[0], "rejected_ids": ids[1]})
    return DataCollatorForPreference(tok.pad_token_id or 0, layout=Layout.SHARED_PREFIX)(examples)


def segment_lower_right(query, key, value, plan):
    index = plan["kv_index"]
    key, value = (key, value) if index is None else (key.index_select(0, index), value.index_select(0, index))
    heads = query.shape[1]
    key, value = (t.repeat_interleave(heads // t.shape[1], dim=1) for t in (key, value))
    q_all, k_all, v_all = query.transpose(0, 1), key.transpose(0, 1), value.transpose(0, 1)
    outputs = []
    for q_start, q_end, k_start, k_end in plan["segments"]:
        q, k, v = q_all[:, q_start:q_end], k_all[:, k_start:k_end], v_all[:, k_start:k_end]
        if q_end - q_start == k_end - k_start:
            outputs.append(F.scaled_dot_product_attention(q, k, v, is_causal=True))
        else:
            bias = causal_lower_right(q_end - q_start, k_end - k_start)
            outputs.append(F.scaled_dot_product_attention(q, k, v, attn_mask=bias))
    return torch.cat(outputs, dim=1).transpose(0, 1)


def dense_mask(plan, n: int) -> torch.Tensor:
    """The (n, n) attention the plan allows, as one boolean mask over the row."""
    index = plan["kv_index"].tolist() if plan["kv_index"] is not None else list(range(n))
    mask = torch.zeros(n, n, dtype=torch.bool)
    for q_start, q_end, k_start, k_end in plan["segments"]:
        mask[q_start:q_end, index[k_start:k_end]] = causal_mask(q_end - q_start, k_end - k_start)
    return mask


def group_spans(plan) -> list[tuple[int, int]]:
    """The row span of every pair (a first segment starts a group: its keys start at its own queries)."""
    index = plan["kv_index"].tolist()
    starts = [q_start for q_start, _, k_start, _ in plan["segments"] if index[k_start] == q_start]
    return list(zip(starts, [*starts[1:], plan["segments"][-1][1]], strict=True))


def timed(kernels: dict, repeats: int) -> dict[str, float]:
    """Median seconds of forward + backward of each kernel, interleaved so that drifts hit all alike."""
    seconds: dict[str, list[float]] = {name: [] for name in kernels}
    for _ in range(repeats):
        for name, kernel in kernels.items():
            start = time.perf_counter()
            kernel().square().sum().backward()
            seconds[name].append(time.perf_counter() - start)
    return {name: statistics.median(times) for name, times in seconds.items()}


def sweep(repeats: int) -> None:
    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(1, 4, 2048, 64, generator=g, requires_grad=True) for _ in range(3))
    fused = timed(
        {
            "3-d": lambda: F.scaled_dot_product_attention(q[0], k[0], v[0], is_causal=True),
            "4-d": lambda: F.scaled_dot_product_attention(q, k, v, is_causal=True),
        },
        repeats,
    )
    print(f"one causal segment of 2048 tokens: 3-d inputs {fused['3-d'] * 1e3:.1f} ms, 4-d {fused['4-d'] * 1e3:.1f} ms")
    for prompt in (128, 256, 512, 1024, 2048):
        sequences = [[*range(1, prompt + 1), *[5000 + p] * answer] for p in range(4) for answer in (60, 50)]
        plan = lay_out(sequences, Layout.SHARED_PREFIX, 0, groups=[[2 * i, 2 * i + 1] for i in range(4)])[VARLEN_KEY]
        n = int(plan["cu_seq_q"][-1])
        q = torch.randn(n, 4, 64, generator=g, requires_grad=True)
        k, v = (torch.randn(n, 2, 64, generator=g, requires_grad=True) for _ in range(2))
        calls = {first: first + 2 for first in range(0, len(plan["segments"]), 2)}  # every group as one call
        result = timed(
            {
                "group": partial(segment_attention, q, k, v, {**plan, "group_calls": calls, "group_masks": {}}),
                "segments": partial(segment_attention, q, k, v, {**plan, "group_calls": {}}),
            },
            repeats,
        )
        print(
            f"prompt {prompt:5}, group of {n // 4} tokens: one call per group {result['group'] * 1e3:7.1f} ms, "
            f"per segment {result['segments'] * 1e3:7.1f} ms ({result['group'] / result['segments']:.2f}x); "
            f"the kernel's rule: {'one call' if plan['group_calls'] else 'per segment'}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=str(DEFAULT_DATA))
    parser.add_argument("--pairs", type=int, default=8)
    parser.add_argument("--max_length", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--contention", choices=["busy", "matmul", "training", "tests"])
    parser.add_argument("--sweep", action="store_true", help="the measurements behind the CPU kernel's rules")
    args = parser.parse_args()
    if args.sweep:
        sweep(args.repeats)
        return

    batch = batch_of_pairs(Path(args.data), args.pairs, args.max_length)
    plan, n = batch[VARLEN_KEY], batch["input_ids"].shape[1]
    mask = dense_mask(plan, n)
    spans = group_spans(plan)
    group_masks = [mask[s:e, s:e] for s, e in spans]
    g = torch.Generator().manual_seed(0)
    q = torch.randn(n, 4, 64, generator=g, requires_grad=True)
    k = torch.randn(n, 2, 64, generator=g, requires_grad=True)
    v = torch.randn(n, 2, 64, generator=g, requires_grad=True)

    def heads_first(t):
        return t.repeat_interleave(4 // t.shape[1], dim=1).transpose(0, 1)

    def group_mask_attention():
        qh, kh, vh = heads_first(q), heads_first(k), heads_first(v)
        outs = [
            F.scaled_dot_product_attention(qh[:, s:e], kh[:, s:e], vh[:, s:e], attn_mask=m)
            for (s, e), m in zip(spans, group_masks, strict=True)
        ]
        return torch.cat(outs, dim=1).transpose(0, 1)

    def row_mask_attention():
        return F.scaled_dot_product_attention(heads_first(q), heads_first(k), heads_first(v), attn_mask=mask)

    kernels = {
        "segment_sdpa": lambda: segment_attention(q, k, v, plan),
        "segment_lower_right": lambda: segment_lower_right(q, k, v, plan),
        "group_mask": group_mask_attention,
        "row_mask": lambda: row_mask_attention().transpose(0, 1),
    }
    reference = kernels["segment_sdpa"]()
    for name, kernel in kernels.items():
        torch.testing.assert_close(kernel(), reference, atol=1e-5, rtol=0, msg=name)
    seconds: dict[str, list[float]] = {name: [] for name in kernels}
    with competing(args.contention):
        for _ in range(args.repeats):
            for name, kernel in kernels.items():  # interleaved, so that drifts of the machine hit all alike
                start = time.perf_counter()
                kernel().square().sum().backward()
                seconds[name].append(time.perf_counter() - start)
    calls = len(plan["segments"])
    print(
        f"{args.pairs} pairs, row of {n} tokens, {calls} varlen segments, {len(spans)} groups; "
        f"threads={torch.get_num_threads()} contention={args.contention}; forward + backward, median of {args.repeats}"
    )
    base = statistics.median(seconds["segment_sdpa"])
    for name, times in seconds.items():
        median = statistics.median(times)
        print(f"{name:22}{median * 1e3:9.2f} ms  {median / base:5.2f}x segment_sdpa")


if __name__ == "__main__":
    main()
