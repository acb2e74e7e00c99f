"""A rewardlab reward model drives TRL's GRPOTrainer (TRL is a test-only dependency: skipped without it)."""

import numpy as np
import pytest
import torch
from datasets import Dataset
from test_scoring import train_and_save
from tiny import make_tokenizer
from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

from rewardlab import RewardFunction

trl = pytest.importorskip("trl")


def grpo_config(tmp_path, **overrides):
    """A GRPO run of one step on a CPU: 4 prompts per step, 2 completions of at most 6 tokens each."""
    settings = dict(
        output_dir=str(tmp_path / "grpo"),
        per_device_train_batch_size=4,
        num_generations=2,
        max_completion_length=6,
        max_steps=1,
        report_to=[],
        use_cpu=True,
        save_strategy="no",
        disable_tqdm=True,
        logging_steps=1,
    )
    return trl.GRPOConfig(**{**settings, **overrides})


def tiny_policy(tmp_path):
    tok = make_tokenizer("llama")
    tok.pad_token = tok.eos_token
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(tok),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=1,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
    )
    path = str(tmp_path / "policy")
    LlamaForCausalLM(config).save_pretrained(path)
    tok.save_pretrained(path)
    return path


@pytest.mark.parametrize("conversational", [False, True])
def test_grpo_trains_with_a_rewardlab_reward_function(conversational, tmp_path):
    reward_dir, _, data = train_and_save("qwen3", tmp_path / "rm", conversational=conversational)
    policy = tiny_policy(tmp_path)
    prompts = Dataset.from_dict({"prompt": [r["prompt"] for r in data[:4]]})
    calls = []
    reward_fn = RewardFunction(reward_dir)

    def recording(prompts, completions, **kwargs):
        rewards = reward_fn(prompts, completions, **kwargs)
        calls.append((prompts, completions, rewards))
        return rewards

    recording.__name__ = "rewardlab"
    args = grpo_config(tmp_path, max_steps=2, learning_rate=1e-4, seed=0)
    policy_tok = AutoTokenizer.from_pretrained(policy)
    if conversational:
        policy_tok.chat_template = make_tokenizer("qwen3").chat_template
    trainer = trl.GRPOTrainer(
        model=policy, reward_funcs=recording, args=args, train_dataset=prompts, processing_class=policy_tok
    )
    trainer.train()
    assert len(calls) >= 2
    logged = [e["rewards/rewardlab/mean"] for e in trainer.state.log_history if "rewards/rewardlab/mean" in e]
    assert len(logged) == 2
    # What TRL logged is what rewardlab computed, and it is the reward model's score of each completion.
    first_prompts, first_completions, first_rewards = calls[0]
    assert logged[0] == pytest.approx(float(np.mean(first_rewards)), abs=1e-4)
    again = reward_fn.reward_model.score(first_prompts, first_completions)
    np.testing.assert_allclose(again, first_rewards, atol=1e-5)


@pytest.mark.parametrize("length_debias", [None, "odin"])
def test_grpo_loads_a_saved_reward_model_by_path(length_debias, tmp_path):
    """The saved model works unchanged as TRL's `reward_funcs="<path>"` (a plain sequence-classification model);
    one trained with `length_debias='odin'` gives TRL its quality head, the reward rewardlab scores with."""
    reward_dir, _, data = train_and_save("qwen3", tmp_path / "rm", length_debias=length_debias)
    policy = tiny_policy(tmp_path)
    args = grpo_config(tmp_path)
    trainer = trl.GRPOTrainer(
        model=policy,
        reward_funcs=reward_dir,
        args=args,
        train_dataset=Dataset.from_dict({"prompt": [r["prompt"] for r in data[:4]]}),
    )
    trainer.train()
    assert any(k.startswith("rewards/") for e in trainer.state.log_history for k in e)
    from rewardlab import RewardModel

    scorer = RewardModel.from_pretrained(reward_dir, device="cpu")
    assert scorer.has_length_head == (length_debias == "odin")
    ids = scorer.tokenizer("the sky is blue" + scorer.tokenizer.eos_token, add_special_tokens=False)["input_ids"]
    loaded = trainer.reward_funcs[0]
    assert args.bf16  # TRL's default: accelerate runs the loaded model's forward under bf16 autocast
    with torch.no_grad():
        trl_reward = loaded(input_ids=torch.tensor([ids])).logits.item()
    assert trl_reward == pytest.approx(scorer.score_texts(["the sky is blue"])[0], abs=2e-3)
    if length_debias:  # not the length head's reward, nor the sum of both
        length = scorer.score_texts(["the sky is blue"], return_length=True)[1][0]
        assert abs(length) > 1e-2 and trl_reward != pytest.approx(trl_reward + length, abs=2e-3)
        assert trl_reward != pytest.approx(length, abs=2e-3)


def test_grpo_loads_an_exported_multi_objective_model_by_path(tmp_path):
    """`rewardlab export` gives TRL's `reward_funcs="<path>"` the weighed objectives as its one logit."""
    from tiny import make_model

    from rewardlab import RewardModel
    from rewardlab.cli import main

    tok = make_tokenizer("qwen3")
    make_model("qwen3", tok, num_labels=2, id2label={0: "harmless", 1: "helpful"}).save_pretrained(tmp_path / "m")
    tok.save_pretrained(tmp_path / "m")
    out = str(tmp_path / "exported")
    assert (
        main(["export", "--model", str(tmp_path / "m"), "--output_dir", out, "--weights", "helpful=0.6,harmless=0.4"])
        == 0
    )
    args = grpo_config(tmp_path, bf16=False)
    trainer = trl.GRPOTrainer(
        model=tiny_policy(tmp_path),
        reward_funcs=out,
        args=args,
        train_dataset=Dataset.from_dict({"prompt": ["hi"] * 4}),
    )
    ids = tok("the sky is blue" + tok.eos_token, add_special_tokens=False)["input_ids"]
    with torch.no_grad():
        trl_reward = trainer.reward_funcs[0](input_ids=torch.tensor([ids])).logits.item()
    weighed = RewardModel.from_pretrained(str(tmp_path / "m"), weights="helpful=0.6,harmless=0.4", device="cpu")
    assert trl_reward == pytest.approx(weighed.score_texts(["the sky is blue"])[0], abs=1e-5)
