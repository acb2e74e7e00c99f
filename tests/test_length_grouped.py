"""Length-grouped, token-budgeted batches: every pair once per epoch, within the budget, similar lengths together, in
an order fixed by seed and epoch, and a resumed run that continues it exactly."""

import random
import statistics

import pytest
from test_resume import run
from test_trainer import config, pairs
from tiny import make_model, make_tokenizer

from rewardlab import RewardTrainer
from rewardlab.errors import RewardlabError
from rewardlab.layout import DataCollatorForPreference
from rewardlab.train.length_grouped import LengthGroupedBatchSampler, length_grouped_batches


def costs(n=500, seed=0):
    rng = random.Random(seed)
    return [rng.randint(20, 400) if rng.random() < 0.9 else rng.randint(1000, 3000) for _ in range(n)]


@pytest.mark.parametrize("padded", [False, True])
def test_every_example_once_within_the_budget(padded):
    c = costs()
    batches = length_grouped_batches(c, max_tokens=2048, seed=3, padded=padded)
    assert sorted(i for b in batches for i in b) == list(range(len(c)))
    for b in batches:
        cost = len(b) * max(c[i] for i in b) if padded else sum(c[i] for i in b)
        assert cost <= 2048 or len(b) == 1


def test_similar_lengths_share_a_batch_and_the_order_is_seeded():
    c = costs()
    batches = length_grouped_batches(c, max_tokens=2048, seed=3)
    spread = statistics.mean(max(c[i] for i in b) - min(c[i] for i in b) for b in batches if len(b) > 1)
    shuffled = random.Random(0).sample(range(len(c)), len(c))
    random_spread = statistics.mean(
        max(c[i] for i in shuffled[k : k + 8]) - min(c[i] for i in shuffled[k : k + 8]) for k in range(0, 496, 8)
    )
    assert spread < random_spread / 3
    assert batches == length_grouped_batches(c, max_tokens=2048, seed=3)
    assert batches != length_grouped_batches(c, max_tokens=2048, seed=3, epoch=1)
    assert batches != length_grouped_batches(c, max_tokens=2048, seed=4)


def test_processes_share_the_batches_evenly():
    c = costs(101)
    every = length_grouped_batches(c, max_tokens=1024, seed=0, epoch=2)
    shards = []
    for rank in range(3):
        sampler = LengthGroupedBatchSampler(c, 1024, seed=0, num_processes=3, process_index=rank)
        sampler.set_epoch(2)
        shards.append(list(sampler))
    assert len({len(s) for s in shards}) == 1
    dealt = [b for k in range(len(shards[0])) for s in shards for b in s[k : k + 1]]
    assert dealt[: len(every)] == every  # in order, then the first ones again to fill the last round
    assert dealt[len(every) :] == every[: len(dealt) - len(every)]


def test_training_batches_fill_the_budget_and_cover_the_data_once(tmp_path):
    tok = make_tokenizer("qwen3")
    trainer = RewardTrainer(
        make_model("qwen3", tok),
        args=config(tmp_path, max_steps=-1, num_train_epochs=1, length_grouped_tokens=64),
        train_dataset=pairs(40),
        processing_class=tok,
    )
    loader = trainer.get_train_dataloader()
    batches = list(loader)
    assert len(batches) == len(loader) > 40 * 12 // 64
    assert all(b["input_ids"].numel() <= 64 for b in batches)  # the shared-prefix row: what the budget counts
    assert sum(len(b["readout_index"]) // 2 for b in batches) == 40
    trainer.train()
    assert [e["num_pairs_seen"] for e in trainer.state.log_history if "num_pairs_seen" in e][-1] == 40
    assert trainer.state.global_step == len(batches)


def test_a_resumed_run_continues_the_same_batches(tmp_path):
    grouped = dict(length_grouped_tokens=48, per_device_train_batch_size=1)
    _, whole = run(tmp_path / "whole", **grouped)
    run(tmp_path / "split", stop_at=3, **grouped)
    _, resumed = run(tmp_path / "split", resume=True, **grouped)
    for step in (4, 5, 6):
        assert resumed[step]["loss"] == pytest.approx(whole[step]["loss"], abs=1e-5), step
    assert resumed[6]["num_pairs_seen"] == whole[6]["num_pairs_seen"]
    assert resumed[6]["num_tokens"] == whole[6]["num_tokens"]


def test_a_custom_collator_is_refused_plainly(tmp_path):
    tok = make_tokenizer("qwen3")

    class Custom:
        def __call__(self, examples):
            return DataCollatorForPreference(tok.pad_token_id)(examples)

    trainer = RewardTrainer(
        make_model("qwen3", tok),
        args=config(tmp_path, length_grouped_tokens=64),
        train_dataset=pairs(8),
        processing_class=tok,
        data_collator=Custom(),
    )
    with pytest.raises(RewardlabError, match="length_grouped_tokens .* no custom data_collator"):
        trainer.train()
