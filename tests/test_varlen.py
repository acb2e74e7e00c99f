"""The varlen attention of packed rows: one reference defines it, every kernel is checked against it, and the packed
layouts stay on for bf16 models and keep a user's attention implementation for everything else."""

import logging

import pytest
import torch
import torch.nn.functional as F
from tiny import make_model, make_tokenizer
from transformers import AttentionInterface
from transformers.integrations.sdpa_attention import sdpa_attention_forward

from rewardlab.layout import Layout, attention, varlen
from rewardlab.layout.choose import choose_layout
from rewardlab.layout.collate import lay_out
from rewardlab.layout.forward import sequence_rewards
from rewardlab.layout.plan import shared_prefix_group
from rewardlab.layout.varlen import (
    FLASH_VARLEN,
    SEGMENT_SDPA,
    choose_kernel,
    flash_varlen_attention,
    flash_varlen_available,
    group_segments,
    reference_attention,
    segment_attention,
    varlen_plan,
)
from rewardlab.model.load import set_pad_token

CUDA = pytest.mark.skipif(
    not flash_varlen_available(), reason="FlashAttention varlen needs a CUDA GPU and torch.nn.attention.varlen"
)


def groups_plan(sequences_per_group, group_calls=False):
    """A packed row of shared-prefix groups (lists of id lists) and its varlen plan (with `group_calls`, told the
    groups' spans, so that those cheap enough run as one masked call)."""
    segments, offset, groups, spans = [], 0, [], []
    for sequences in sequences_per_group:
        group = shared_prefix_group(sequences, pad_token_id=None)
        own = group_segments(offset, group.prefix_length, group.tail_starts, len(group))
        spans.append((len(segments), len(segments) + len(own)))
        segments += own
        groups.append((offset, group))
        offset += len(group)
    queries, keys = zip(*segments, strict=True)
    spans = spans if group_calls else ()
    return varlen_plan(queries, keys, causal=True, groups=spans), offset, groups


ROW = [
    [[1, 2, 3, 4], [1, 2, 5, 6, 7]],  # a pair sharing two tokens
    [[9, 8, 7, 6, 5], [9, 8, 7, 1], [9, 8, 7, 2, 2, 2], [9, 8, 7, 3, 3], [9, 8, 7, 4]],  # a ranking, K = 5
    [[4, 4, 4]],  # a sequence of its own
    [[5, 1], [6, 2, 2]],  # a pair sharing nothing
]


def qkv(n, heads=4, kv_heads=2, dim=8, dtype=torch.float32, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(n, h, dim, generator=g, dtype=dtype) for h in (heads, kv_heads, kv_heads)]


def test_the_reference_is_each_sequence_attending_as_if_alone():
    plan, n, groups = groups_plan(ROW)
    q, k, v = qkv(n)
    out = reference_attention(q, k, v, plan)
    for offset, group in groups:
        ends = [*group.tail_starts[1:], len(group)]
        for start, end in zip(group.tail_starts, ends, strict=True):
            positions = [*range(offset, offset + group.prefix_length), *range(offset + start, offset + end)]
            if start == group.tail_starts[0]:
                positions = list(range(offset, offset + end))
            alone = F.scaled_dot_product_attention(
                *(t[positions].transpose(0, 1) for t in (q, k.repeat_interleave(2, 1), v.repeat_interleave(2, 1))),
                is_causal=True,
            ).transpose(0, 1)
            mine = out[offset + start : offset + end] if start != group.tail_starts[0] else out[offset : offset + end]
            torch.testing.assert_close(mine, alone[-len(mine) :], atol=1e-6, rtol=0)


@pytest.mark.parametrize(("causal", "group_calls"), [(True, False), (True, True), (False, False)])
def test_segment_sdpa_equals_the_reference_with_gradients(causal, group_calls, monkeypatch):
    monkeypatch.setattr(varlen, "GROUP_CALL_MAX_COST", 10.0)  # every group of two or more segments: one call
    plan, n, _ = groups_plan(ROW, group_calls)
    assert len(plan["group_calls"]) == (3 if group_calls else 0)
    if not causal:  # packed encoder sequences: every sequence over its own tokens, both ways
        spans = [(s, e) for s, e in zip(plan["cu_seq_q"][:-1].tolist(), plan["cu_seq_q"][1:].tolist(), strict=True)]
        plan = varlen_plan(spans, [[span] for span in spans], causal=False)
    tensors = [t.requires_grad_() for t in qkv(n)]
    expected = reference_attention(*tensors, plan, scale=0.3)
    expected_grads = torch.autograd.grad(expected.square().sum(), tensors)
    got = segment_attention(*tensors, plan, scale=0.3)
    grads = torch.autograd.grad(got.square().sum(), tensors)
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=0)
    for a, b in zip(grads, expected_grads, strict=True):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=0)


def test_a_group_runs_as_one_call_only_where_that_costs_little_more():
    # A long shared prompt and short answers: the dense group computes 1.3x the pairs its segments need.
    long_prompt, _, _ = groups_plan([[[1] * 20 + [2, 3], [1] * 20 + [4, 5, 6]]], group_calls=True)
    assert len(long_prompt["group_calls"]) == 1
    # RM-Bench-like, a short prompt and long answers: about 2x; the segments run apart.
    short_prompt, _, _ = groups_plan([[[1, 1] + [2] * 40, [1, 1] + [3] * 40]], group_calls=True)
    assert short_prompt["group_calls"] == {}
    # A long group runs apart whatever its cost: the fused kernel per segment skips the masked half.
    longer = varlen.GROUP_CALL_MAX_TOKENS
    very_long, _, _ = groups_plan([[[1] * longer + [2, 3], [1] * longer + [4, 5, 6]]], group_calls=True)
    assert very_long["group_calls"] == {}


def test_a_plan_says_where_each_segment_reads_its_keys():
    plan, n, _ = groups_plan([[[1, 2, 3, 4], [1, 2, 5, 6, 7]]])
    assert n == 7 and plan["cu_seq_q"].tolist() == [0, 4, 7] and plan["cu_seq_k"].tolist() == [0, 4, 9]
    assert plan["kv_index"].tolist() == [0, 1, 2, 3, 0, 1, 4, 5, 6]  # the rejected response: prompt, then itself
    assert (plan["max_q"], plan["max_k"]) == (4, 5)
    alone = varlen_plan([(0, 3), (3, 5)], [[(0, 3)], [(3, 5)]], causal=False)
    assert alone["kv_index"] is None  # every segment reads its own tokens: nothing to gather
    with pytest.raises(ValueError, match="tile the row"):
        varlen_plan([(0, 3), (4, 5)], [[(0, 3)], [(4, 5)]], causal=True)


def test_kernel_choice_and_its_reasons():
    assert choose_kernel(torch.device("cpu"), torch.float32)[0] == SEGMENT_SDPA
    assert choose_kernel(torch.device("cpu"), torch.bfloat16)[0] == SEGMENT_SDPA
    kernel, why = choose_kernel(torch.device("cuda"), torch.float32)
    assert kernel == SEGMENT_SDPA and "fp16/bf16" in why
    assert choose_kernel(torch.device("cuda"), torch.bfloat16, dropout=0.1)[0] == SEGMENT_SDPA


@CUDA
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_flash_varlen_equals_the_reference_on_cuda(dtype):
    assert choose_kernel(torch.device("cuda"), dtype)[0] == FLASH_VARLEN
    plan, n, _ = groups_plan(ROW)
    plan = {k: v.cuda() if isinstance(v, torch.Tensor) else v for k, v in plan.items()}
    tensors = [t.cuda().requires_grad_() for t in qkv(n, dim=64, dtype=dtype)]
    expected = reference_attention(*tensors, plan)
    expected_grads = torch.autograd.grad(expected.float().square().sum(), tensors)
    got = flash_varlen_attention(*tensors, plan)
    grads = torch.autograd.grad(got.float().square().sum(), tensors)
    torch.testing.assert_close(got.float(), expected.float(), atol=2e-2, rtol=2e-2)
    for a, b in zip(grads, expected_grads, strict=True):
        # Half-precision rounding is relative to the gradient's scale (up to ~30 here): on an H200 a gradient that
        # is exactly 0 (a query with one key) came out as 0.066 once in bf16, one bf16 step at magnitude 8-16.
        torch.testing.assert_close(a.float(), b.float(), atol=1e-2 * b.abs().max().item(), rtol=5e-2)


@pytest.mark.parametrize("takes_enable_gqa", [True, False])
def test_flash_varlen_gives_grouped_keys_as_the_installed_torch_takes_them(monkeypatch, takes_enable_gqa):
    # torch < 2.13's varlen_attn has no enable_gqa: keys and values must arrive with the query's head count.
    import torch.nn.attention.varlen as torch_varlen

    calls = []

    def fake_varlen_attn(query, key, value, *args, **kwargs):
        calls.append((key.shape[1], value.shape[1], kwargs))
        return query

    monkeypatch.setattr(torch_varlen, "varlen_attn", fake_varlen_attn)
    monkeypatch.setattr(varlen, "varlen_attn_takes_enable_gqa", lambda: takes_enable_gqa)
    plan, n, _ = groups_plan(ROW)
    flash_varlen_attention(*qkv(n, heads=4, kv_heads=2), plan)
    (key_heads, value_heads, kwargs), *_ = calls
    if takes_enable_gqa:
        assert (key_heads, value_heads) == (2, 2) and kwargs["enable_gqa"] is True
    else:
        assert (key_heads, value_heads) == (4, 4) and "enable_gqa" not in kwargs


def pairs_and_model(arch, dtype=torch.float32):
    tok = make_tokenizer(arch)
    model = make_model(arch, tok).to(dtype).eval()
    set_pad_token(tok, model)
    sequences = [[5, 6, 7, 8, 9, 10], [5, 6, 7, 11, 12], [5, 6, 7, 13], [20, 21, 22], [20, 21, 23, 24, 25]]
    return tok, model, sequences, [[0, 1, 2], [3, 4]]


@pytest.mark.parametrize("arch", ["llama", "qwen3"])
def test_a_bf16_model_keeps_the_fast_path_on_cpu(arch, caplog):
    tok, model, sequences, groups = pairs_and_model(arch, torch.bfloat16)
    with caplog.at_level(logging.INFO, logger="rewardlab.layout.choose"):
        layout = choose_layout(model, tok.pad_token_id)
    assert layout is Layout.SHARED_PREFIX
    assert "attention: SDPA per segment on cpu" in caplog.text  # the kernel, and why, in the one log line
    with torch.no_grad():
        padded = sequence_rewards(model, lay_out(sequences, Layout.PADDED, tok.pad_token_id)).float()
        fast = sequence_rewards(model, lay_out(sequences, layout, tok.pad_token_id, groups=groups)).float()
    torch.testing.assert_close(fast, padded, atol=5e-2 * max(1.0, padded.abs().max().item()), rtol=0)


def test_the_log_line_names_the_kernel_of_the_device_and_dtype_training_will_run_in(caplog):
    # A trainer chooses the layout before it moves the model to its GPU and before autocast: it passes both.
    tok, model, _, _ = pairs_and_model("qwen3")
    with caplog.at_level(logging.INFO, logger="rewardlab.layout.choose"):
        choose_layout(model, tok.pad_token_id, compute=(torch.device("cuda"), torch.float32))
    assert "attention: SDPA per segment (FlashAttention varlen needs fp16/bf16, the model is torch.float32)" in (
        caplog.text
    )


def kernels_chosen(monkeypatch):
    """Record the (kernel, dtype) of every packed attention call."""
    chosen = []

    def recording(device, dtype, dropout=0.0):
        kernel = choose_kernel(device, dtype, dropout)
        chosen.append((kernel[0], dtype))
        return kernel

    monkeypatch.setattr(attention, "choose_kernel", recording)
    return chosen


def test_under_autocast_the_varlen_kernel_computes_in_the_autocast_dtype(monkeypatch):
    # A float32 model trained with bf16=True: rotary embeddings leave query and key in float32, but SDPA (and so the
    # padded computation) runs in bf16; the packed row's kernel must too (on CUDA that is what selects FlashAttention).
    chosen = kernels_chosen(monkeypatch)
    tok, model, sequences, groups = pairs_and_model("llama")
    layout = choose_layout(model, tok.pad_token_id)
    chosen.clear()
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        padded = sequence_rewards(model, lay_out(sequences, Layout.PADDED, tok.pad_token_id)).float()
        fast = sequence_rewards(model, lay_out(sequences, layout, tok.pad_token_id, groups=groups)).float()
    assert chosen and set(chosen) == {(SEGMENT_SDPA, torch.bfloat16)}
    torch.testing.assert_close(fast, padded, atol=5e-2 * max(1.0, padded.abs().max().item()), rtol=0)


def test_the_users_attention_implementation_runs_what_the_fast_path_does_not_take_over():
    calls = []

    def recorded(module, *args, **kwargs):
        calls.append(type(module).__name__)
        return sdpa_attention_forward(module, *args, **kwargs)

    AttentionInterface.register("recorded_for_test", recorded)
    tok, model, sequences, groups = pairs_and_model("qwen3")
    model.set_attn_implementation("recorded_for_test")
    assert choose_layout(model, tok.pad_token_id) is Layout.SHARED_PREFIX
    calls.clear()
    with torch.no_grad():
        sequence_rewards(model, lay_out(sequences, Layout.SHARED_PREFIX, tok.pad_token_id, groups=groups))
        assert not calls  # the packed row: the varlen kernel
        sequence_rewards(model, lay_out(sequences, Layout.PADDED, tok.pad_token_id))
    assert calls and set(calls) == {"Qwen3Attention"}  # the padded batch: the user's implementation


@CUDA
@pytest.mark.parametrize("arch", ["llama", "qwen3"])
def test_a_bf16_model_on_cuda_trains_on_flash_varlen_exactly_within_rounding(arch, caplog):
    tok, model, sequences, groups = pairs_and_model(arch, torch.bfloat16)
    model.cuda()
    with caplog.at_level(logging.INFO, logger="rewardlab.layout.choose"):
        layout = choose_layout(model, tok.pad_token_id)
    assert layout is Layout.SHARED_PREFIX and "FlashAttention varlen" in caplog.text
    from accelerate.utils import send_to_device

    padded = send_to_device(lay_out(sequences, Layout.PADDED, tok.pad_token_id), "cuda")
    packed = send_to_device(lay_out(sequences, layout, tok.pad_token_id, groups=groups), "cuda")
    expected = sequence_rewards(model, padded).float()
    got = sequence_rewards(model, packed).float()
    torch.testing.assert_close(got, expected, atol=5e-2 * max(1.0, expected.abs().max().item()), rtol=0)
    expected.sum().backward()
    reference = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    model.zero_grad()
    got.sum().backward()
    for name, grad in reference.items():
        torch.testing.assert_close(dict(model.named_parameters())[name].grad.float(), grad.float(), atol=0.1, rtol=0.1)


@CUDA
def test_a_float32_model_under_bf16_autocast_on_cuda_runs_flash_varlen(monkeypatch):
    chosen = kernels_chosen(monkeypatch)
    tok, model, sequences, groups = pairs_and_model("qwen3")
    model.cuda()
    layout = choose_layout(model, tok.pad_token_id)
    from accelerate.utils import send_to_device

    padded = send_to_device(lay_out(sequences, Layout.PADDED, tok.pad_token_id), "cuda")
    packed = send_to_device(lay_out(sequences, layout, tok.pad_token_id, groups=groups), "cuda")
    chosen.clear()
    with torch.autocast("cuda", dtype=torch.bfloat16):
        expected = sequence_rewards(model, padded).float()
        got = sequence_rewards(model, packed).float()
    assert chosen and set(chosen) == {(FLASH_VARLEN, torch.bfloat16)}
    torch.testing.assert_close(got, expected, atol=5e-2 * max(1.0, expected.abs().max().item()), rtol=0)
