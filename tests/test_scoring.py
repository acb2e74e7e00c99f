"""RewardModel scores exactly what training computed, in the caller's order, on every layout and input form."""

import dataclasses
import math

import numpy as np
import pytest
import torch
from datasets import Dataset
from tiny import make_model, make_tokenizer
from transformers import AutoModelForSequenceClassification

from rewardlab import RewardConfig, RewardFunction, RewardModel, RewardTrainer
from rewardlab.errors import InvalidRowError, RewardlabError

WORDS = ["the", "sky", "city", "weather", "today", "paris", "rome", "cold", "warm", "is", "blue", "green"]


def rows(n: int, seed: int = 0, conversational: bool = False) -> list[dict]:
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        prompt = " ".join(rng.choice(WORDS, size=int(rng.integers(2, 12)))) + " ?"
        chosen, rejected = f" it is blue {i % 7}", f" it is green {i % 5} sorry" + " no" * int(rng.integers(0, 6))
        if conversational:
            out.append(
                {
                    "prompt": [{"role": "user", "content": prompt}],
                    "chosen": [{"role": "assistant", "content": chosen}],
                    "rejected": [{"role": "assistant", "content": rejected}],
                }
            )
        else:
            out.append({"prompt": prompt, "chosen": chosen, "rejected": rejected})
    return out


def train_and_save(arch: str, directory, conversational: bool = False, **config) -> tuple[str, np.ndarray, list]:
    tok = make_tokenizer(arch)
    data = rows(10, conversational=conversational)
    args = RewardConfig(
        output_dir=str(directory / "run"),
        per_device_train_batch_size=4,
        max_steps=2,
        learning_rate=1e-3,
        report_to=[],
        save_strategy="no",
        use_cpu=True,
        disable_tqdm=True,
        **config,
    )
    trainer = RewardTrainer(
        make_model(arch, tok),
        args=args,
        train_dataset=Dataset.from_list(data),
        eval_dataset=Dataset.from_list(data),
        processing_class=tok,
    )
    trainer.train()
    trainer.evaluate()  # records the reward statistics used for normalisation
    trained = trainer.predict(trainer.eval_dataset).predictions
    out = str(directory / "model")
    trainer.save_model(out)
    return out, trained, data


@pytest.fixture(scope="module", params=["llama", "qwen3", "bert"])
def saved(request, tmp_path_factory):
    return train_and_save(request.param, tmp_path_factory.mktemp(request.param))


def plain_reward(model, ids: list[int]) -> float:
    with torch.no_grad():
        return model(input_ids=torch.tensor([ids])).logits.item()


def test_pairs_score_exactly_as_training(saved):
    path, trained, data = saved
    scorer = RewardModel.from_pretrained(path)
    scores = scorer.score_pair_rows(data)
    np.testing.assert_allclose(scores.rewards_chosen, trained[:, 0], atol=1e-5)
    np.testing.assert_allclose(scores.rewards_rejected, trained[:, 1], atol=1e-5)
    expected = 1 / (1 + np.exp(-(trained[:, 0] - trained[:, 1])))
    np.testing.assert_allclose(scores.prob_chosen, expected, atol=1e-5)
    # The list form gives the same numbers (to float rounding: a CPU's thread count, which adapts to contention,
    # changes the order of additions), and the same token counts.
    same = scorer.score_pairs([r["chosen"] for r in data], [r["rejected"] for r in data], [r["prompt"] for r in data])
    for field in dataclasses.fields(scores):
        got, expected = getattr(same, field.name), getattr(scores, field.name)
        if field.name.endswith("tokens"):
            assert got == expected, field.name
        elif expected is not None:
            np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-6, err_msg=field.name)


@pytest.mark.parametrize("padding_free", [True, False])
def test_completions_score_like_one_unpadded_forward_each_in_callers_order(saved, padding_free):
    path, trained, data = saved
    # A tiny token budget forces many batches; several completions share each prompt (a GRPO-style group).
    scorer = RewardModel.from_pretrained(path, max_tokens_per_batch=40, padding_free=padding_free)
    assert scorer.layout in (("shared_prefix", "packed") if padding_free else ("padded",))
    prompts = [r["prompt"] for r in data for _ in range(3)]
    completions = [c for r in data for c in (r["chosen"], r["rejected"], " maybe" + r["chosen"])]
    rewards = scorer.score(prompts, completions)
    plain = AutoModelForSequenceClassification.from_pretrained(path).eval()
    tok = scorer.tokenizer
    eos = [tok.eos_token_id] if tok.eos_token_id is not None else []
    for prompt, completion, reward in zip(prompts, completions, rewards, strict=True):
        ids = tok(prompt + completion)["input_ids"]
        ids = ids if ids[-1:] == eos else ids + eos
        assert reward == pytest.approx(plain_reward(plain, ids), abs=1e-5)
    # The chosen completions are the training pairs' chosen sequences.
    np.testing.assert_allclose(rewards[0::3], trained[:, 0], atol=1e-5)
    texts = [p + c for p, c in zip(prompts, completions, strict=True)]
    np.testing.assert_allclose(scorer.score_texts(texts), rewards, atol=1e-5)


def test_shared_prompts_are_computed_once(tmp_path):
    path, _, data = train_and_save("qwen3", tmp_path)
    scorer = RewardModel.from_pretrained(path)
    assert scorer.layout == "shared_prefix"
    seen = []
    handle = scorer.model.register_forward_pre_hook(
        lambda _, __, kw: seen.append(kw["input_ids"].numel()), with_kwargs=True
    )
    long_prompt = " ".join(WORDS * 3) + " ?"
    scorer.score([long_prompt] * 4, [" it is blue", " green", " sorry no", " yes"])
    handle.remove()
    prompt_tokens = len(scorer.tokenizer(long_prompt)["input_ids"])
    assert sum(seen) < 2 * prompt_tokens  # four completions, one prompt computed once


def test_conversational_completions_and_the_rl_reward_function(tmp_path):
    path, trained, data = train_and_save("qwen3", tmp_path, conversational=True)
    reward_fn = RewardFunction(path)
    assert reward_fn.__name__ == "rewardlab"
    prompts = [r["prompt"] for r in data]
    rewards = reward_fn(prompts=prompts, completions=[r["chosen"] for r in data], completion_ids=None, extra=1)
    np.testing.assert_allclose(rewards, trained[:, 0], atol=1e-5)

    normalized = RewardFunction(path, normalize=True)(prompts, [r["chosen"] for r in data])
    stats = reward_fn.reward_model.normalization
    assert stats["num_rewards"] == 2 * len(data)
    np.testing.assert_allclose(normalized, (np.array(rewards) - stats["mean"]) / stats["std"], atol=1e-6)


def test_normalization_needs_saved_statistics(tmp_path):
    tok = make_tokenizer("qwen3")
    model = make_model("qwen3", tok)
    scorer = RewardModel(model, tok)
    with pytest.raises(RewardlabError, match="no reward statistics"):
        scorer.normalize([1.0])
    with pytest.raises(RewardlabError, match="normalize=True"):
        RewardFunction(scorer, normalize=True)


def test_over_length_inputs_follow_the_training_policy_and_are_reported(tmp_path, caplog):
    tok = make_tokenizer("qwen3")
    model = make_model("qwen3", tok)
    long_prompt = " ".join(WORDS * 4)
    full = RewardModel(model, tok)
    cut = RewardModel(model, tok, max_length=12)
    with caplog.at_level("WARNING", logger="rewardlab.score.reward_model"):
        rewards = cut.score([long_prompt, "hi"], [" blue", " green"])
    assert cut.report["prompt_truncated"] == 1 and cut.report["ok"] == 1
    assert "1 prompt_truncated" in caplog.text
    # The kept part is the prompt's end and the whole completion: as training would score it.
    ids = tok(long_prompt + " blue")["input_ids"] + [tok.eos_token_id]
    assert rewards[0] == pytest.approx(plain_reward(model.eval(), ids[-12:]), abs=1e-5)
    assert rewards[1] == pytest.approx(full.score(["hi"], [" green"])[0], abs=1e-6)

    dropped = RewardModel(model, tok, max_length=12, overlength_policy="drop").score([long_prompt, "hi"], ["a", "b"])
    assert math.isnan(dropped[0]) and not math.isnan(dropped[1])
    with pytest.raises(InvalidRowError, match="row 1.*max_length=12"):
        RewardModel(model, tok, max_length=12, overlength_policy="error").score(["hi", long_prompt], ["a", "b"])


def test_bad_inputs_name_the_item(tmp_path):
    tok = make_tokenizer("qwen3")
    scorer = RewardModel(make_model("qwen3", tok), tok)
    with pytest.raises(RewardlabError, match="texts must be a list"):
        scorer.score_texts("one text")
    with pytest.raises(InvalidRowError, match="row 1.*must be a string"):
        scorer.score_texts(["ok", 3])
    with pytest.raises(RewardlabError, match="2 prompts but 1 completions"):
        scorer.score(["a", "b"], ["c"])
    with pytest.raises(InvalidRowError, match="row 0.*both be strings or both be message lists"):
        scorer.score(["a"], [[{"role": "assistant", "content": "x"}]])
    with pytest.raises(InvalidRowError, match="row 1, field 'rejected'"):
        scorer.score_pairs(["a", "b"], ["c", None])
    assert scorer.score_pairs(["same"], ["same"]).prob_chosen == [pytest.approx(0.5)]
    assert scorer.score_texts([]) == []


def test_rankings_score_each_distinct_response_once_as_alone(saved):
    path, _, _ = saved
    scorer = RewardModel.from_pretrained(path)
    ranked = [
        {"prompt": "the sky is", "chosen": [" blue", " blue"], "rejected": [" green", " blue today is warm", " green"]},
        {"prompt": "weather today ?", "responses": [" cold", " warm", " cold"], "scores": [1, 0, 1]},
    ]
    scores = scorer.score_rankings(ranked)
    first, second = scores.rewards
    # Identical responses of a prompt are scored once: bit-identical, so a tie rule sees the tie.
    assert first[0] == first[1] and first[2] == first[4] and second[0] == second[2]
    alone = scorer.score(["the sky is"] * 3, [" blue", " green", " blue today is warm"])
    np.testing.assert_allclose([first[0], first[2], first[3]], alone, atol=1e-5)
    np.testing.assert_allclose(second[:2], scorer.score(["weather today ?"] * 2, [" cold", " warm"]), atol=1e-5)
    tokens = scores.response_tokens[0]
    assert tokens[0] == tokens[1] and tokens[3] > tokens[0] and scores.std is None
    with pytest.raises(InvalidRowError, match="row 1, field 'responses\\[1\\]'"):
        scorer.score_rankings([ranked[0], {"prompt": "a", "responses": [" x", ""]}])


def test_rankings_over_max_length_follow_the_policy():
    tok = make_tokenizer("qwen3")
    model = make_model("qwen3", tok)
    long_prompt = " ".join(WORDS * 4)
    rows_ = [{"prompt": long_prompt, "responses": [" blue", " green"]}, {"prompt": "hi", "responses": [" a", " b"]}]
    dropped = RewardModel(model, tok, max_length=12, overlength_policy="drop").score_rankings(rows_)
    assert all(math.isnan(r) for r in dropped.rewards[0]) and not any(math.isnan(r) for r in dropped.rewards[1])
    cut = RewardModel(model, tok, max_length=12)
    expected = cut.score([long_prompt] * 2, [" blue", " green"])
    assert cut.score_rankings(rows_[:1]).rewards[0] == pytest.approx(expected, abs=1e-5)


def test_saved_checkpoint_is_a_standard_one_output_classifier(saved):
    """What vLLM's pooling runner and TRL's `reward_funcs="<path>"` need: a plain *ForSequenceClassification
    checkpoint with one label and the pad token the reward is read against."""
    import json
    from pathlib import Path

    from safetensors import safe_open

    path, _, _ = saved
    config = json.loads(Path(path, "config.json").read_text())
    assert len(config["architectures"]) == 1 and config["architectures"][0].endswith("ForSequenceClassification")
    assert len(config["id2label"]) == 1
    assert config["pad_token_id"] is not None
    # One weights file with one output row in the head (`score.weight` for decoders, `classifier.*` for encoders),
    # and the tokenizer next to it: what a loader that converts *ForSequenceClassification reads.
    assert Path(path, "tokenizer_config.json").exists() and Path(path, "tokenizer.json").exists()
    with safe_open(str(Path(path, "model.safetensors")), "pt") as weights:
        stored = weights.keys()
        names = [k for k in stored if k.split(".")[0] in ("score", "classifier")]
        heads = {k: weights.get_slice(k).get_shape() for k in names}
    assert heads and all(shape[0] == 1 for name, shape in heads.items() if name.endswith("weight")), heads


def test_lora_adapter_directory_scores_as_training_and_merges_into_a_plain_checkpoint(tmp_path):
    from peft import LoraConfig

    tok = make_tokenizer("llama")
    base = str(tmp_path / "base")
    make_model("llama", tok).save_pretrained(base)
    tok.save_pretrained(base)
    data = rows(8)
    args = RewardConfig(
        output_dir=str(tmp_path / "run"),
        per_device_train_batch_size=4,
        max_steps=2,
        learning_rate=1e-2,
        report_to=[],
        save_strategy="no",
        use_cpu=True,
        disable_tqdm=True,
    )
    dataset = Dataset.from_list(data)
    trainer = RewardTrainer(
        base, args=args, train_dataset=dataset, eval_dataset=dataset, peft_config=LoraConfig(r=4, lora_alpha=8)
    )
    trainer.train()
    trained = trainer.predict(trainer.eval_dataset).predictions
    adapter = str(tmp_path / "adapter")
    trainer.save_model(adapter)

    scorer = RewardModel.from_pretrained(adapter)
    scores = scorer.score_pair_rows(data)
    np.testing.assert_allclose(scores.rewards_chosen, trained[:, 0], atol=1e-5)
    np.testing.assert_allclose(scores.rewards_rejected, trained[:, 1], atol=1e-5)

    merged = str(tmp_path / "merged")
    scorer.model.merge_and_unload().save_pretrained(merged)
    scorer.tokenizer.save_pretrained(merged)
    plain = AutoModelForSequenceClassification.from_pretrained(merged).eval()
    ids = scorer.tokenizer(data[0]["prompt"] + data[0]["chosen"])["input_ids"] + [scorer.tokenizer.eos_token_id]
    assert plain_reward(plain, ids) == pytest.approx(trained[0, 0], abs=1e-5)


def test_dtype_option_and_dropped_items_in_the_reward_function(saved):
    path, trained, data = saved
    half = RewardModel.from_pretrained(path, dtype="bfloat16")
    assert next(half.model.parameters()).dtype == torch.bfloat16
    rewards = half.score_pair_rows(data)
    np.testing.assert_allclose(rewards.rewards_chosen, trained[:, 0], atol=5e-2)
    with pytest.raises(RewardlabError, match="unknown dtype"):
        RewardModel.from_pretrained(path, dtype="float8")
    with pytest.raises(RewardlabError, match="unknown device 'gpu0'"):
        RewardModel.from_pretrained(path, device="gpu0")
    if not torch.cuda.is_available():
        with pytest.raises(RewardlabError, match="CUDA is not available"):
            RewardModel.from_pretrained(path, device="cuda")

    dropping = RewardFunction(RewardModel.from_pretrained(path, max_length=8, overlength_policy="drop"))
    out = dropping(["a very long prompt " * 5, "hi"], [" blue", " no"])
    assert out[0] is None and isinstance(out[1], float)
