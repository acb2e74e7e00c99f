"""Reward-model ensembles: N heads on one trunk, saved as a plain num_labels=1 model plus the heads."""

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from test_trainer import config, pairs
from tiny import make_model, make_tokenizer
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from rewardlab import RewardConfig, RewardTrainer
from rewardlab.errors import RewardlabError
from rewardlab.layout import DataCollatorForPreference, Layout
from rewardlab.layout.forward import pair_rewards
from rewardlab.losses import bradley_terry_loss
from rewardlab.metrics.uncertainty import auroc, pair_uncertainty, uncertainty_metrics
from rewardlab.model.heads import EnsembleHead, install_ensemble_head, num_heads
from rewardlab.score.reward_model import RewardModel
from rewardlab.score.rl import RewardFunction
from rewardlab.train.bagging import BootstrapCollator, bootstrap_weights, example_key


def test_ensemble_head_state_dict_holds_the_mean_head():
    head = EnsembleHead(torch.randn(4, 6), torch.randn(4))
    with torch.no_grad():
        head.heads.add_(1.0)  # training moved the heads; the mean buffer is refreshed when saved
    state = head.state_dict()
    assert set(state) == {"heads", "heads_bias", "weight", "bias"}
    torch.testing.assert_close(state["weight"], head.heads.mean(0, keepdim=True))
    hidden = torch.randn(3, 6)
    plain = torch.nn.functional.linear(hidden, state["weight"], state["bias"])
    torch.testing.assert_close(plain[:, 0], head(hidden).mean(-1))


def test_heads_start_different_and_an_ordinary_model_has_one(arch):
    tok = make_tokenizer(arch)
    model = make_model(arch, tok)
    assert num_heads(model) == 1
    head = install_ensemble_head(model, 3, seed=1)
    assert num_heads(model) == 3 and model.config.rewardlab_ensemble_heads == 3
    assert torch.cdist(head.heads, head.heads).triu(1).gt(0).sum() == 3  # three distinct initialisations
    with pytest.raises(RewardlabError, match="already has an ensemble"):
        install_ensemble_head(model, 3)
    with pytest.raises(RewardlabError, match="at least 2"):
        install_ensemble_head(make_model(arch, tok), 1)


@pytest.mark.parametrize("arch,layout", [("llama", Layout.SHARED_PREFIX), ("bert", Layout.PACKED), ("qwen3", None)])
def test_every_layout_gives_each_heads_rewards(arch, layout):
    from test_fast_path import setup

    tok, model = setup(arch)
    install_ensemble_head(model, 3)
    examples = [{"chosen_ids": [5, 6, 7, 8], "rejected_ids": [5, 6, 9]}, {"chosen_ids": [10, 11], "rejected_ids": [12]}]
    padded = pair_rewards(model, DataCollatorForPreference(tok.pad_token_id)(examples))
    if layout is not None:
        fast = pair_rewards(model, DataCollatorForPreference(tok.pad_token_id, layout=layout)(examples))
        for a, b in zip(padded, fast, strict=True):
            torch.testing.assert_close(a, b, atol=1e-5, rtol=0)
    assert padded[0].shape == (2, 3)
    alone = model(input_ids=torch.tensor([examples[0]["chosen_ids"]])).logits[0]
    torch.testing.assert_close(padded[0][0], alone, atol=1e-5, rtol=0)


def test_ensemble_loss_is_the_mean_of_each_heads_loss_and_weights_multiply():
    rc, rr = torch.randn(5, 3), torch.randn(5, 3)
    margin = torch.rand(5)
    per_head = [bradley_terry_loss(rc[:, k], rr[:, k], margin, 0.1) for k in range(3)]
    loss = bradley_terry_loss(rc, rr, margin, 0.1)
    assert loss.item() == pytest.approx(torch.stack(per_head).mean().item(), rel=1e-6)
    weights = torch.tensor([[2.0, 0.0, 1.0]]).expand(5, 3)
    weighted = bradley_terry_loss(rc, rr, margin, 0.1, weights=weights)
    assert weighted.item() == pytest.approx((2 * per_head[0] + per_head[2]).item() / 3, rel=1e-6)


def test_bootstrap_weights_are_poisson_and_fixed_per_example():
    keys = [example_key([[i, i + 1], [i + 2]]) for i in range(2000)]
    weights = bootstrap_weights(keys, 4, seed=7)
    assert weights.shape == (2000, 4)
    assert weights.mean().item() == pytest.approx(1.0, abs=0.05)  # Poisson(1): mean 1, about 37% zeros
    assert (weights == 0).float().mean().item() == pytest.approx(math.exp(-1), abs=0.03)
    assert not torch.equal(weights[:, 0], weights[:, 1])  # heads see different resamples
    again = bootstrap_weights(keys[::-1], 4, seed=7).flip(0)  # order does not matter
    torch.testing.assert_close(weights, again)
    assert not torch.equal(weights, bootstrap_weights(keys, 4, seed=8))


def test_bootstrap_collator_gives_micro_batches_their_rows():
    examples = [{"chosen_ids": list(range(1, n + 2)), "rejected_ids": [1, 2] + [9] * n} for n in range(1, 7)]
    collator = BootstrapCollator(DataCollatorForPreference(0, max_tokens_per_batch=30), 3, seed=0)
    batch = collator(examples)
    assert len(batch["micro_batches"]) > 1
    for micro in batch["micro_batches"]:
        torch.testing.assert_close(micro["bootstrap_weights"], batch["bootstrap_weights"][micro["example_index"]])


def test_uncertainty_metrics_by_hand():
    # Pair 0: right, heads agree; pair 1: wrong, heads disagree; pair 2: right, heads disagree a little.
    rc = np.array([[2.0, 2.0, 2.0], [0.0, 2.0, -4.0], [1.0, 2.0, 3.0]])
    rr = np.zeros((3, 3))
    m = uncertainty_metrics(*pair_uncertainty(rc, rr))
    std = [0.0, np.std([0, 2, -4], ddof=1), 1.0]
    assert m["ensemble_std_right"] == pytest.approx((std[0] + std[2]) / 2)
    assert m["ensemble_std_wrong"] == pytest.approx(std[1])
    assert m["ensemble_std_auroc"] == 1.0
    assert uncertainty_metrics(np.array([np.nan, 1.0, 2.0]), np.array([True, False, True]))["ensemble_std_auroc"] == 1
    assert auroc(np.array([1.0, 1.0, 0.0]), np.array([True, False, False])) == pytest.approx(0.75)
    assert math.isnan(auroc(np.array([1.0]), np.array([True])))


def test_trained_ensemble_loads_in_plain_transformers_with_the_mean(arch, tmp_path):
    tok = make_tokenizer(arch)
    args = config(tmp_path, ensemble_heads=3, ensemble_bootstrap=True, per_device_eval_batch_size=4)
    trainer = RewardTrainer(
        make_model(arch, tok), args=args, train_dataset=pairs(12), eval_dataset=pairs(6, seed=1), processing_class=tok
    )
    trainer.train()
    metrics = trainer.evaluate()
    assert {"eval_ensemble_std_right", "eval_ensemble_std_wrong", "eval_ensemble_std_auroc"} <= set(metrics)
    trainer.save_model()
    out = args.output_dir
    assert json.loads(Path(out, "config.json").read_text())["rewardlab_ensemble_heads"] == 3
    assert json.loads(Path(out, "rewardlab_run.json").read_text())["args"]["ensemble_heads"] == 3

    plain = AutoModelForSequenceClassification.from_pretrained(out).eval()
    assert plain.config.num_labels == 1
    scorer = RewardModel.from_pretrained(out, device="cpu")
    assert scorer.num_heads == 3
    texts = ["the sky is blue", "what color is the sky ? green", "paris rome"]
    mean, std = scorer.score_texts(texts, return_std=True)
    plain_tok = AutoTokenizer.from_pretrained(out)
    with torch.no_grad():
        for text, m, s in zip(texts, mean, std, strict=True):
            ids = plain_tok(text)["input_ids"]
            if plain_tok.eos_token_id is not None and ids[-1] != plain_tok.eos_token_id:
                ids.append(plain_tok.eos_token_id)
            assert plain(input_ids=torch.tensor([ids])).logits.item() == pytest.approx(m, abs=1e-5)
            assert s > 0
    assert scorer.score_texts(texts) == pytest.approx(mean)
    pair_scores = scorer.score_pairs(["a sky blue"], ["a sky green"])
    assert pair_scores.std_margin[0] > 0 and pair_scores.std_chosen[0] > 0


def test_conservative_reward_function(tmp_path):
    tok = make_tokenizer("llama")
    args = config(tmp_path, ensemble_heads=4)
    trainer = RewardTrainer(make_model("llama", tok), args=args, train_dataset=pairs(8), processing_class=tok)
    trainer.train()
    trainer.save_model()
    prompts, completions = ["the sky ?", "the sky ?"], [" blue", " green"]
    scorer = RewardModel.from_pretrained(args.output_dir, device="cpu")
    mean, std = scorer.score(prompts, completions, return_std=True)
    conservative = RewardFunction(scorer, uncertainty_penalty=2.0)(prompts, completions)
    assert conservative == pytest.approx([m - 2.0 * s for m, s in zip(mean, std, strict=True)])
    assert RewardFunction(scorer)(prompts, completions) == pytest.approx(mean)
    with pytest.raises(RewardlabError, match=">= 0"):
        RewardFunction(scorer, uncertainty_penalty=-1.0)


def test_single_head_model_refuses_std(tmp_path):
    tok = make_tokenizer("llama")
    scorer = RewardModel(make_model("llama", tok), tok)
    with pytest.raises(RewardlabError, match="needs an ensemble"):
        scorer.score_texts(["a"], return_std=True)
    with pytest.raises(RewardlabError, match="ensemble"):
        RewardFunction(scorer, uncertainty_penalty=1.0)


def test_one_head_with_bootstrap_trains_on_a_seeded_resample(tmp_path):
    """`ensemble_bootstrap` with one head: a member of a deep ensemble, its loss weighted by Poisson(1) draws."""
    tok = make_tokenizer("llama")
    model = make_model("llama", tok)
    trainer = RewardTrainer(
        model, args=config(tmp_path, ensemble_bootstrap=True, seed=3), train_dataset=pairs(12), processing_class=tok
    )
    examples = [trainer.train_dataset[i] for i in range(8)]
    batch = trainer.data_collator(examples)
    weights = batch["bootstrap_weights"]
    keys = [example_key([e["chosen_ids"], e["rejected_ids"]]) for e in examples]
    torch.testing.assert_close(weights, bootstrap_weights(keys, 1, seed=3)[:, 0])
    assert not torch.equal(weights, torch.ones(8))  # 8 Poisson(1) draws all equal to 1: probability 0.0003
    with torch.no_grad():
        rc, rr = pair_rewards(model, batch)
        expected = (-torch.nn.functional.logsigmoid(rc - rr) * weights).mean()
        torch.testing.assert_close(trainer.compute_loss(model, batch), expected)
    trainer.train()
    assert num_heads(model) == 1


def test_config_validates_ensemble_options(tmp_path):
    with pytest.raises(ValueError, match="at least 1"):
        RewardConfig(output_dir=str(tmp_path), ensemble_heads=0, report_to=[])


def test_lora_ensemble_adapter_reloads_every_head_and_plain_peft_gets_the_mean(tmp_path):
    from peft import LoraConfig, PeftModel

    tok = make_tokenizer("qwen3")
    base_dir = str(tmp_path / "base")
    make_model("qwen3", tok).save_pretrained(base_dir)
    tok.save_pretrained(base_dir)
    args = config(tmp_path, ensemble_heads=3, per_device_eval_batch_size=4)
    trainer = RewardTrainer(
        base_dir, args=args, train_dataset=pairs(8), eval_dataset=pairs(4, seed=2), peft_config=LoraConfig(r=4)
    )
    trainer.train()
    trained = trainer.predict(trainer.eval_dataset).predictions  # (pairs, 2, heads)
    assert trained.shape == (4, 2, 3)
    out = str(tmp_path / "adapter")
    trainer.save_model(out)

    scorer = RewardModel.from_pretrained(out, device="cpu")
    assert scorer.num_heads == 3
    rows = [{"chosen_ids": r["chosen_ids"], "rejected_ids": r["rejected_ids"]} for r in trainer.eval_dataset]
    scores = scorer.score_pair_rows(rows)
    np.testing.assert_allclose(scores.rewards_chosen, trained[:, 0].mean(-1), atol=1e-5)
    np.testing.assert_allclose(scores.std_margin, (trained[:, 0] - trained[:, 1]).std(-1, ddof=1), atol=1e-5)

    plain = PeftModel.from_pretrained(AutoModelForSequenceClassification.from_pretrained(base_dir), out).eval()
    with torch.no_grad():
        first = plain(input_ids=torch.tensor([rows[0]["chosen_ids"]])).logits.item()
    assert first == pytest.approx(trained[0, 0].mean(), abs=1e-5)


def test_shape_rewards_keeps_the_stds_in_the_units_of_the_rewards():
    """The shaping that RewardFunction and the server share: normalize, subtract k * std, NaN (dropped) -> None."""
    from rewardlab.score.rl import shape_rewards

    nan = float("nan")
    rewards, stds = shape_rewards(
        [3.0, nan], [2.0, nan], normalization={"mean": 1.0, "std": 2.0}, uncertainty_penalty=0.5
    )
    assert rewards == [pytest.approx((3.0 - 1.0) / 2.0 - 0.5 * 1.0), None]
    assert stds == [pytest.approx(1.0), None]
    zero_std = {"mean": 1.0, "std": 0.0}  # a constant reward: divided by 1, not 0
    assert shape_rewards([3.0], [2.0], normalization=zero_std, uncertainty_penalty=1.0) == ([0.0], [2.0])
    assert shape_rewards([3.0]) == ([3.0], None)
