"""The utilisation accounting of `benchmarks/train_throughput.py`: the attention work a pair needs and the GPU peaks
its MFU divides by, on hand-computed cases."""

import itertools
import math
import sys
from pathlib import Path

import pytest
from tiny import make_model, make_tokenizer

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import train_throughput  # noqa: E402


def brute_force_pairs(chosen, rejected):
    """Every (query, key) pair causal attention computes, the shared prefix once, by listing them."""
    p = train_throughput._common_prefix(chosen, rejected)
    shared = sum(len(range(i + 1)) for i in range(p))  # the query at position i sees keys 0..i
    own = sum(len(range(i + 1)) for ids in (chosen, rejected) for i in range(p, len(ids)))
    return shared + own


@pytest.mark.parametrize(
    ("chosen", "rejected"), [([1, 2, 3, 4], [1, 2, 5]), ([7], [8, 9]), ([1, 2, 3], [1, 2, 3, 4]), ([5, 6], [5, 7])]
)
def test_attention_pairs_count_the_shared_prefix_once(chosen, rejected):
    assert train_throughput.attention_pairs(chosen, rejected) == brute_force_pairs(chosen, rejected)


def test_attention_pairs_of_a_small_case_by_hand():
    # prefix [1, 2]: 1 + 2 keys; chosen's 3 and 4: 3 + 4; rejected's 5: 3
    assert train_throughput.attention_pairs([1, 2, 3, 4], [1, 2, 5]) == 13
    lengths = itertools.product(range(1, 5), repeat=2)
    for a, b in lengths:  # no shared prefix: two separate causal triangles
        assert train_throughput.attention_pairs([1] * a, [2] * b) == a * (a + 1) // 2 + b * (b + 1) // 2


def test_gpu_peaks_and_attention_flops():
    assert train_throughput.gpu_peak_tflops("NVIDIA H100 80GB HBM3") == 989.4
    assert train_throughput.gpu_peak_tflops("NVIDIA H200") == 989.4
    assert math.isnan(train_throughput.gpu_peak_tflops("Some GPU"))
    tok = make_tokenizer("qwen3")
    model = make_model("qwen3", tok)
    config = model.config
    expected = 12 * config.num_attention_heads * config.head_dim * config.num_hidden_layers
    assert train_throughput.attention_flops_per_pair_key(model) == expected
    assert not train_throughput.is_encoder(model)
    assert train_throughput.is_encoder(make_model("bert", make_tokenizer("bert")))
