"""The fast batch layouts give the rewards, loss and gradients of the plain padded computation."""

from pathlib import Path

import pytest
import torch
from tiny import make_model, make_tokenizer

import rewardlab
from rewardlab.layout import DataCollatorForPreference, Layout
from rewardlab.layout.attention import register_packed_attention
from rewardlab.layout.forward import pair_rewards
from rewardlab.losses import bradley_terry_loss
from rewardlab.model.load import disable_dropout, set_pad_token

TOL = 1e-5


def random_pairs(tokenizer, n: int, seed: int = 0) -> list[dict]:
    """Pairs with shared prefixes of various lengths, ragged responses, and the awkward cases on purpose."""
    g = torch.Generator().manual_seed(seed)
    vocab = len(tokenizer)
    specials = set(tokenizer.all_special_ids)
    ordinary = [i for i in range(vocab) if i not in specials]

    def tokens(k):
        return [ordinary[j] for j in torch.randint(len(ordinary), (k,), generator=g).tolist()]

    eos = tokenizer.eos_token_id
    pairs = []
    for i in range(n):
        prompt = tokens(int(torch.randint(0, 40, (1,), generator=g)))
        chosen = prompt + tokens(int(torch.randint(1, 15, (1,), generator=g)))
        rejected = prompt + tokens(int(torch.randint(1, 25, (1,), generator=g)))
        if eos is not None and i % 3 == 0:  # trailing eos (== pad for llama): read-out skips it
            chosen, rejected = chosen + [eos], rejected + [eos, eos]
        pairs.append({"chosen_ids": chosen, "rejected_ids": rejected, "margin": float(i % 2)})
    pairs.append({"chosen_ids": pairs[0]["chosen_ids"] + tokens(3), "rejected_ids": pairs[0]["chosen_ids"]})
    pairs[-1]["margin"] = 0.0  # rejected is a prefix of chosen
    return pairs


def setup(arch: str, **model_kwargs):
    tok = make_tokenizer(arch)
    model = make_model(arch, tok, **model_kwargs)
    set_pad_token(tok, model)
    disable_dropout(model)
    model.set_attn_implementation(register_packed_attention(model))  # without a varlen plan it is the model's own
    return tok, model


def loss_and_grads(model, batch):
    model.zero_grad()
    rc, rr = pair_rewards(model, batch)
    loss = bradley_terry_loss(rc, rr, batch.get("margin"), center_rewards_coefficient=0.01)
    loss.backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    return rc.detach(), rr.detach(), loss.detach(), grads


SHARED, PACKED, GROUPED = Layout.SHARED_PREFIX, Layout.PACKED, Layout.SUB_BATCHES
LAYOUTS = [
    ("llama", SHARED),
    ("llama", GROUPED),
    ("qwen3", SHARED),
    ("qwen3", Layout.PACKED_CAUSAL),
    ("qwen3", GROUPED),
    ("bert", PACKED),
    ("bert", GROUPED),
]


@pytest.mark.parametrize("arch,layout", LAYOUTS)
def test_fast_layout_equals_padded(arch, layout):
    tok, model = setup(arch)
    pairs = random_pairs(tok, 9)
    padded = DataCollatorForPreference(pad_token_id=tok.pad_token_id)(pairs)
    ref_c, ref_r, ref_loss, ref_grads = loss_and_grads(model, padded)
    for budget in (None, 150):  # whole batch, then micro-batches under a token budget
        fast = DataCollatorForPreference(tok.pad_token_id, max_tokens_per_batch=budget, layout=layout)(pairs)
        assert (fast["layout"] is Layout.MICRO_BATCHES) == (budget is not None)
        c, r, loss, grads = loss_and_grads(model, fast)
        torch.testing.assert_close(c, ref_c, atol=TOL, rtol=0)
        torch.testing.assert_close(r, ref_r, atol=TOL, rtol=0)
        torch.testing.assert_close(loss, ref_loss, atol=TOL, rtol=0)
        assert grads.keys() == ref_grads.keys()
        for name in grads:
            torch.testing.assert_close(grads[name], ref_grads[name], atol=1e-5, rtol=1e-4, msg=name)


def test_padded_micro_batches_equal_the_padded_batch():
    tok, model = setup("llama")
    pairs = random_pairs(tok, 9)
    padded = DataCollatorForPreference(pad_token_id=tok.pad_token_id)(pairs)
    micro = DataCollatorForPreference(pad_token_id=tok.pad_token_id, max_tokens_per_batch=200)(pairs)
    assert len(micro["micro_batches"]) > 1
    for batch in micro["micro_batches"]:
        assert batch["input_ids"].numel() <= 200 or len(batch["example_index"]) == 1
    torch.testing.assert_close(micro["margin"], padded["margin"])
    torch.testing.assert_close(torch.cat(pair_rewards(model, micro)), torch.cat(pair_rewards(model, padded)))


@pytest.mark.parametrize("arch", ["llama", "qwen3"])
def test_shared_prompt_with_lora_and_gradient_checkpointing(arch):
    from peft import LoraConfig, TaskType, get_peft_model

    tok, model = setup(arch)
    model = get_peft_model(model, LoraConfig(task_type=TaskType.SEQ_CLS, r=4, init_lora_weights=False))
    model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    model.train()
    pairs = random_pairs(tok, 6, seed=1)
    padded = DataCollatorForPreference(pad_token_id=tok.pad_token_id)(pairs)
    fast = DataCollatorForPreference(pad_token_id=tok.pad_token_id, layout=Layout.SHARED_PREFIX)(pairs)
    ref_c, ref_r, _, ref_grads = loss_and_grads(model, padded)
    c, r, _, grads = loss_and_grads(model, fast)
    torch.testing.assert_close(torch.cat([c, r]), torch.cat([ref_c, ref_r]), atol=TOL, rtol=0)
    assert any("lora" in n for n in grads)
    for name in grads:
        torch.testing.assert_close(grads[name], ref_grads[name], atol=1e-5, rtol=1e-4, msg=name)


def test_shared_prompt_computes_fewer_tokens():
    tok, _ = setup("qwen3")
    pairs = random_pairs(tok, 8)
    padded = DataCollatorForPreference(pad_token_id=tok.pad_token_id)(pairs)
    fast = DataCollatorForPreference(pad_token_id=tok.pad_token_id, layout=Layout.SHARED_PREFIX)(pairs)
    packed = DataCollatorForPreference(pad_token_id=tok.pad_token_id, layout=Layout.PACKED_CAUSAL)(pairs)
    computed = fast["input_ids"].numel()
    real = int(fast["num_real_tokens"])
    assert real == int(padded["attention_mask"].sum()) == packed["input_ids"].numel() == int(packed["num_real_tokens"])
    assert computed < real < padded["input_ids"].numel()


HH = Path(rewardlab.__file__).parent / "demo_data" / "hh-rlhf-harmless-base-test.jsonl.gz"  # bundled copy


@pytest.mark.parametrize("arch,layout", [("llama", SHARED), ("qwen3", SHARED), ("bert", PACKED)])
def test_fast_layout_equals_padded_on_real_hh_rlhf(arch, layout):
    import gzip
    import json

    from datasets import Dataset

    from rewardlab.config import RewardConfig
    from rewardlab.data.prepare import prepare_preference_dataset

    tok, model = setup(arch)
    with gzip.open(HH, "rt", encoding="utf-8") as f:
        rows = [json.loads(line) for _, line in zip(range(12), f, strict=False)]
    args = RewardConfig("/tmp/rewardlab-test", max_length=256, use_cpu=True, report_to=[])
    data, _ = prepare_preference_dataset(Dataset.from_list(rows), tok, args, "hh")
    pairs = data.to_list()
    padded = DataCollatorForPreference(pad_token_id=tok.pad_token_id)(pairs)
    fast = DataCollatorForPreference(tok.pad_token_id, layout=layout)(pairs)
    assert fast["input_ids"].numel() < int(fast["num_real_tokens"]) or layout is PACKED
    ref_c, ref_r, _, ref_grads = loss_and_grads(model, padded)
    c, r, _, grads = loss_and_grads(model, fast)
    torch.testing.assert_close(torch.cat([c, r]), torch.cat([ref_c, ref_r]), atol=TOL, rtol=0)
    for name in grads:
        torch.testing.assert_close(grads[name], ref_grads[name], atol=1e-5, rtol=1e-4, msg=name)
