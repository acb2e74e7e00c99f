"""Ranking losses and metrics against hand computations."""

import math

import numpy as np
import pytest
import torch

from rewardlab.layout import Layout
from rewardlab.losses import bradley_terry_loss, pairwise_ranking_loss, plackett_luce_loss
from rewardlab.metrics.running import ranking_accuracy


def log_sigmoid(x: float) -> float:
    return -math.log1p(math.exp(-x))


def test_pairwise_loss_averages_each_prompts_pairs_then_the_prompts():
    rewards = torch.tensor([2.0, 1.0, 0.5, 0.3, -1.0])
    scores = torch.tensor([3.0, 2.0, 2.0, 1.0, 0.0])  # prompt 1: K=3 with a tie; prompt 2: K=2
    loss = pairwise_ranking_loss(rewards, scores, [3, 2])
    first = -(log_sigmoid(2.0 - 1.0) + log_sigmoid(2.0 - 0.5)) / 2  # the tied pair (1.0 vs 0.5) is not used
    second = -log_sigmoid(0.3 - (-1.0))
    assert loss.item() == pytest.approx((first + second) / 2, rel=1e-6)


def test_pairwise_loss_with_score_margins_and_k2_equals_bradley_terry():
    rewards = torch.tensor([0.2, 0.7, 1.0, -0.5], requires_grad=True)
    scores = torch.tensor([5.0, 1.0, 2.0, 4.0])
    loss = pairwise_ranking_loss(rewards, scores, [2, 2], margin_scale=0.1)
    chosen, rejected = torch.tensor([0.2, -0.5]), torch.tensor([0.7, 1.0])
    expected = bradley_terry_loss(chosen, rejected, torch.tensor([0.4, 0.2]))
    assert loss.item() == pytest.approx(expected.item(), rel=1e-6)
    loss.backward()
    assert rewards.grad is not None and rewards.grad.abs().sum() > 0


def test_plackett_luce_matches_the_formula_with_and_without_ties():
    r = [1.5, 0.2, -0.3]
    rewards, scores = torch.tensor(r), torch.tensor([9.0, 5.0, 1.0])
    lse = lambda xs: math.log(sum(math.exp(x) for x in xs))  # noqa: E731
    expected = (-(r[0] - lse(r)) - (r[1] - lse(r[1:]))) / 2
    assert plackett_luce_loss(rewards, scores, [3]).item() == pytest.approx(expected, rel=1e-6)
    # Ties share a step (Breslow): {0, 1} tied on top of 2.
    tied = plackett_luce_loss(rewards, torch.tensor([5.0, 5.0, 1.0]), [3]).item()
    assert tied == pytest.approx((-(r[0] + r[1]) + 2 * lse(r)) / 2, rel=1e-6)
    # K = 2: Plackett-Luce is the Bradley-Terry loss.
    two = plackett_luce_loss(torch.tensor([0.3, 1.1]), torch.tensor([1.0, 0.0]), [2])
    assert two.item() == pytest.approx(-log_sigmoid(0.3 - 1.1), rel=1e-6)


def test_all_tied_prompts_contribute_nothing_but_keep_the_graph():
    rewards = torch.tensor([1.0, 2.0], requires_grad=True)
    for loss_fn in (pairwise_ranking_loss, plackett_luce_loss):
        loss = loss_fn(rewards, torch.tensor([1.0, 1.0]), [2])
        assert loss.item() == 0.0
        loss.backward()
    with pytest.raises(ValueError, match="add up to 3"):
        pairwise_ranking_loss(rewards, torch.tensor([1.0, 0.0]), [3])


def test_ranking_accuracy_counts_pairs_and_top1_exactly():
    rewards = torch.tensor([3.0, 1.0, 2.0, 0.0, 0.0, 5.0, 5.0])
    scores = torch.tensor([2.0, 1.0, 0.0, 1.0, 0.0, 1.0, 0.0])  # groups of 3, 2, 2
    stats = ranking_accuracy(rewards, scores, [3, 2, 2])
    # Group 1: pairs (0>1 ok, 0>2 ok, 1>2 wrong), top-1 ok. Group 2: reward tie, wrong; top-1 tie: wrong.
    # Group 3: reward tie: wrong; top-1 shared with a worse response: wrong.
    assert stats == {"pairs_correct": 2, "pairs": 5, "top1_correct": 1, "prompts": 3}


SHARED = {"layout": Layout.SHARED_PREFIX}


@pytest.mark.parametrize(
    "arch,layout",
    [
        ("llama", SHARED),
        ("qwen3", SHARED),
        ("bert", {"layout": Layout.PACKED}),
        ("qwen3", {"layout": Layout.PADDED}),
    ],
)
def test_one_pass_per_prompt_equals_scoring_each_response_alone(arch, layout):
    from test_fast_path import setup

    from rewardlab.layout.collate import DataCollatorForRanking
    from rewardlab.layout.forward import sequence_rewards

    tok, model = setup(arch)
    g = torch.Generator().manual_seed(3)
    ordinary = [i for i in range(len(tok)) if i not in set(tok.all_special_ids)]

    def tokens(n):
        return [ordinary[j] for j in torch.randint(len(ordinary), (n,), generator=g).tolist()]

    examples = []
    for k in (2, 3, 5):
        prompt = tokens(int(torch.randint(3, 30, (1,), generator=g)))
        responses = [prompt + tokens(int(torch.randint(1, 12, (1,), generator=g))) for _ in range(k)]
        examples.append({"response_ids": responses, "scores": torch.randn(k, generator=g).round().tolist()})
    batch = DataCollatorForRanking(tok.pad_token_id, **layout)(examples)
    model.zero_grad()
    rewards = sequence_rewards(model, batch)
    pairwise_ranking_loss(rewards, batch["scores"], batch["group_sizes"].tolist()).backward()
    fast_grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}

    model.zero_grad()
    alone = torch.cat([model(input_ids=torch.tensor([r])).logits[:, 0] for e in examples for r in e["response_ids"]])
    pairwise_ranking_loss(alone, batch["scores"], batch["group_sizes"].tolist()).backward()
    torch.testing.assert_close(rewards, alone, atol=1e-5, rtol=0)
    for name, grad in fast_grads.items():
        torch.testing.assert_close(grad, dict(model.named_parameters())[name].grad, atol=1e-5, rtol=1e-4, msg=name)
    computed, total = (
        batch.get("input_ids", torch.zeros(0)).numel(),
        sum(len(r) for e in examples for r in e["response_ids"]),
    )
    if layout is SHARED:  # each prompt computed once
        assert computed < total
    elif (
        layout["layout"] is Layout.SHARED_PREFIX
    ):  # sharing would not pay for so small a model: K sequences apart, same row
        assert computed == total


# ---------------------------------------------------------------------------------------------- training on rankings
def rankings(n: int, seed: int = 0):
    """Explicit-prompt rankings of 2-4 responses with scores (ties included): 'blue' answers score higher."""
    from datasets import Dataset

    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        k = int(rng.integers(2, 5))
        scores = [float(s) for s in rng.integers(0, 3, size=k)]
        if len(set(scores)) == 1:
            scores[0] += 1.0
        responses = [f" it is {'blue' if s > 0 else 'green'} {j} {i % 5}" for j, s in enumerate(scores)]
        rows.append({"prompt": f"the sky {i % 3} ?", "responses": responses, "scores": scores})
    return Dataset.from_list(rows)


def manual_ranking_metrics(model, dataset):
    """Pairwise and top-1 accuracy from each response scored alone with a plain forward pass."""
    model.eval()
    with torch.no_grad():
        rewards = [
            [model(input_ids=torch.tensor([ids])).logits[0].mean().item() for ids in row["response_ids"]]
            for row in dataset
        ]
    flat = torch.tensor([r for row in rewards for r in row])
    scores = torch.tensor([s for row in dataset for s in row["scores"]])
    counts = ranking_accuracy(flat, scores, [len(r) for r in rewards])
    return counts["pairs_correct"] / counts["pairs"], counts["top1_correct"] / counts["prompts"], counts["pairs"]


@pytest.mark.parametrize(
    "arch,kw",
    [
        ("llama", {}),
        ("bert", {}),
        ("qwen3", {"padding_free": False}),
        ("qwen3", {"ranking_loss": "plackett_luce", "ensemble_heads": 2}),
    ],
)
def test_trainer_trains_on_rankings_with_exact_metrics(arch, kw, tmp_path):
    from test_trainer import config
    from tiny import make_model, make_tokenizer

    from rewardlab import RewardTrainer

    tok = make_tokenizer(arch)
    args = config(tmp_path, per_device_eval_batch_size=3, **kw)  # 7 rankings in batches of 3: a ragged last batch
    trainer = RewardTrainer(
        make_model(arch, tok), args=args, train_dataset=rankings(12), eval_dataset=rankings(7, 1), processing_class=tok
    )
    assert trainer.ranking and trainer.data_stats["train"].kind == "rankings"
    trainer.train()
    logged = [e for e in trainer.state.log_history if "top1_accuracy" in e]
    assert logged and {"loss", "accuracy", "margin", "num_pairs", "num_tokens"} <= set(logged[0])
    metrics = trainer.evaluate()
    accuracy, top1, pairs = manual_ranking_metrics(trainer.model, trainer.eval_dataset)
    assert metrics["eval_accuracy"] == pytest.approx(accuracy) and metrics["eval_num_pairs"] == pairs
    assert metrics["eval_top1_accuracy"] == pytest.approx(top1) and metrics["eval_num_prompts"] == 7
    if kw.get("ensemble_heads"):
        assert "eval_ensemble_std_auroc" in metrics


def test_ranking_run_evaluates_pairs_as_rankings_of_two_and_pair_run_refuses_rankings(tmp_path):
    from test_trainer import config, pairs
    from tiny import make_model, make_tokenizer

    from rewardlab import RewardTrainer
    from rewardlab.errors import RewardlabError

    tok = make_tokenizer("llama")
    trainer = RewardTrainer(
        make_model("llama", tok),
        args=config(tmp_path),
        train_dataset=rankings(8),
        eval_dataset={"pairs": pairs(5, margin=True)},
        processing_class=tok,
    )
    metrics = trainer.evaluate()
    assert metrics["eval_pairs_num_pairs"] == 5 and metrics["eval_pairs_num_prompts"] == 5
    with pytest.raises(RewardlabError, match="holds rankings"):
        RewardTrainer(
            make_model("llama", tok),
            args=config(tmp_path),
            train_dataset=pairs(8),
            eval_dataset=rankings(3),
            processing_class=tok,
        )


def test_ranking_token_budget_trains_exactly_like_whole_batches(tmp_path):
    from test_trainer import config
    from tiny import make_model, make_tokenizer

    from rewardlab import RewardTrainer

    runs = []
    for budget in (None, 40):
        tok = make_tokenizer("llama")  # a fresh one: the trainer sets its pad token, which changes make_model
        args = config(
            tmp_path,
            max_tokens_per_batch=budget,
            optim="sgd",
            ranking_margin_scale=0.5,
            center_rewards_coefficient=0.01,
            ensemble_heads=2,
            ensemble_bootstrap=True,
        )
        trainer = RewardTrainer(make_model("llama", tok), args=args, train_dataset=rankings(12), processing_class=tok)
        if budget:
            batch = trainer.data_collator([trainer.train_dataset[i] for i in range(4)])
            assert len(batch["micro_batches"]) >= 2
        trainer.train()
        runs.append(trainer)
    losses = [[e["loss"] for e in t.state.log_history if "loss" in e] for t in runs]
    np.testing.assert_allclose(losses[0], losses[1], atol=1e-5)
    for a, b in zip(runs[0].model.parameters(), runs[1].model.parameters(), strict=True):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4)
