"""Length-debiased training (`length_debias`): the losses by hand, decorrelation on a set where length alone explains
the labels, the saved checkpoint in plain transformers, LoRA, rankings, micro-batches and the options' checks."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from datasets import Dataset
from test_trainer import config, pairs
from tiny import make_model, make_tokenizer
from transformers import AutoModelForSequenceClassification, AutoTokenizer, pipeline

from rewardlab import RewardConfig, RewardTrainer
from rewardlab.errors import RewardlabError
from rewardlab.layout import DataCollatorForPreference, Layout
from rewardlab.layout.collate import response_lengths
from rewardlab.layout.forward import pair_rewards
from rewardlab.losses import (
    length_decorrelation_loss,
    pairwise_ranking_loss,
    pearson_correlation,
    within_group_deviations,
)
from rewardlab.model.length_head import QualityAndLengthHead, has_length_head, install_length_head
from rewardlab.score.reward_model import RewardModel

WORDS = ["the", "sky", "city", "weather", "today", "paris", "rome", "cold", "warm"]


def length_pairs(n: int, seed: int) -> Dataset:
    """Pairs whose chosen answer is always the longer one, of random words: length alone explains the labels."""
    rng = np.random.default_rng(seed)
    rows = []
    for _ in range(n):
        short, long = sorted(rng.choice(np.arange(1, 13), size=2, replace=False))
        prompt = " ".join(rng.choice(WORDS, size=3)) + " ?"
        rows.append(
            {
                "prompt": prompt,
                "chosen": " " + " ".join(rng.choice(WORDS, size=int(long))),
                "rejected": " " + " ".join(rng.choice(WORDS, size=int(short))),
            }
        )
    return Dataset.from_list(rows)


def corr(a, b) -> float:
    return float(np.corrcoef(np.asarray(a, dtype=float), np.asarray(b, dtype=float))[0, 1])


def test_pearson_correlation_matches_numpy_and_is_zero_without_spread():
    x, y = torch.tensor([1.0, 2.0, 3.0, 7.0], requires_grad=True), torch.tensor([2.0, 1.0, 5.0, 4.0])
    value = pearson_correlation(x, y)
    assert value.item() == pytest.approx(corr(x.detach(), y))
    value.backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    for constant in (torch.ones(4, requires_grad=True), torch.tensor([3.0], requires_grad=True)):
        zero = pearson_correlation(constant, y[: constant.numel()])
        zero.backward()  # defined as 0, with a zero (not NaN) gradient
        assert zero.item() == 0 and torch.equal(constant.grad, torch.zeros_like(constant))


def test_length_decorrelation_loss_by_hand():
    quality, length = torch.tensor([0.3, -1.0, 2.0, 0.5]), torch.tensor([1.0, 0.2, 0.1, 3.0])
    lengths = torch.tensor([4, 9, 2, 7])
    expected = 0.5 * abs(corr(quality, lengths)) - 0.3 * corr(length, lengths)
    loss = length_decorrelation_loss(quality, lengths, 0.5, length, 0.3)
    assert loss.item() == pytest.approx(expected, abs=1e-6)
    one_head = length_decorrelation_loss(quality, lengths, 0.5)
    assert one_head.item() == pytest.approx(0.5 * abs(corr(quality, lengths)), abs=1e-6)


def test_response_lengths_count_each_responses_tokens_after_the_shared_prompt():
    sequences = [[1, 2, 3, 4, 5], [1, 2, 3, 9], [7, 8], [7, 6, 6, 6]]
    assert response_lengths(sequences, [[0, 1], [2, 3]]).tolist() == [2, 1, 1, 3]
    collator = DataCollatorForPreference(0, layout=Layout.SHARED_PREFIX, with_response_lengths=True)
    examples = [
        {"chosen_ids": [1, 2, 3, 4, 5], "rejected_ids": [1, 2, 3, 9]},
        {"chosen_ids": [7, 8], "rejected_ids": [7, 6]},
    ]
    assert collator(examples)["response_lengths"].tolist() == [2, 1, 1, 1]  # all chosen, then all rejected
    collator.max_tokens_per_batch = 6  # one micro-batch per pair, each with its own lengths
    micro = collator(examples)["micro_batches"]
    assert [m["response_lengths"].tolist() for m in micro] == [[2, 1], [1, 1]]
    assert "response_lengths" not in DataCollatorForPreference(0)(examples)  # TRL's batch, unless asked


@pytest.mark.parametrize(
    "arch,layout",
    [("llama", Layout.SHARED_PREFIX), ("bert", Layout.PACKED), ("qwen3", Layout.SUB_BATCHES), ("qwen3", None)],
)
def test_every_layout_gives_quality_and_length_rewards(arch, layout):
    from test_fast_path import setup

    tok, model = setup(arch)
    install_length_head(model, seed=1)
    examples = [{"chosen_ids": [5, 6, 7, 8], "rejected_ids": [5, 6, 9]}, {"chosen_ids": [10, 11], "rejected_ids": [12]}]
    padded = pair_rewards(model, DataCollatorForPreference(tok.pad_token_id)(examples))
    assert padded[0].shape == (2, 2)
    if layout is not None:
        fast = pair_rewards(model, DataCollatorForPreference(tok.pad_token_id, layout=layout)(examples))
        for a, b in zip(padded, fast, strict=True):
            torch.testing.assert_close(a, b, atol=1e-5, rtol=0)
    alone = model(input_ids=torch.tensor([examples[0]["chosen_ids"]])).logits[0]
    torch.testing.assert_close(padded[0][0], alone, atol=1e-5, rtol=0)
    assert not torch.allclose(alone[0], alone[1])  # two different heads


def test_installed_length_head_keeps_the_reward_head_as_the_quality_head():
    tok = make_tokenizer("llama")
    model = make_model("llama", tok)
    ids = torch.tensor([[5, 6, 7, 8]])
    before = model(input_ids=ids).logits[0, 0].item()
    head = install_length_head(model, seed=3)
    assert isinstance(head, QualityAndLengthHead) and has_length_head(model) and model.config.rewardlab_length_head
    assert model(input_ids=ids).logits[0, 0].item() == pytest.approx(before, abs=1e-6)
    assert set(head.state_dict()) == {"weight", "length_weight"}  # a causal LM's score head has no bias
    assert install_length_head(model) is head


def test_within_group_deviations_subtract_each_groups_mean():
    values, groups = torch.tensor([1.0, 5.0, 3.0, 7.0, 2.0]), torch.tensor([0, 1, 0, 1, 2])
    assert within_group_deviations(values, groups, 3).tolist() == [-1.0, -1.0, 1.0, 1.0, 0.0]
    lengths = torch.tensor([4, 9, 2, 7, 3])  # integer lengths come back as floats
    assert within_group_deviations(lengths, groups, 3).tolist() == [1.0, 1.0, -1.0, -1.0, 0.0]


def centred_in_pairs(values, pairs: int) -> np.ndarray:
    values = np.asarray(values, dtype=float)
    mean = (values[:pairs] + values[pairs:]) / 2
    return values - np.concatenate([mean, mean])


@pytest.mark.parametrize("scope", ["batch", "prompt"])
@pytest.mark.parametrize("method", ["odin", "correlation"])
def test_trainer_loss_is_the_hand_computation(method, scope, tmp_path):
    tok = make_tokenizer("llama")
    model = make_model("llama", tok)
    coefficients = {"length_decorrelation_coefficient": 0.5, "length_head_coefficient": 0.3}
    args = config(tmp_path, length_debias=method, head_orthogonality_coefficient=2.0, **coefficients)
    args.length_decorrelation_scope = scope
    trainer = RewardTrainer(model, args=args, train_dataset=pairs(8, margin=True), processing_class=tok)
    examples = [trainer.train_dataset[i] for i in range(4)]
    batch = trainer.data_collator(examples)
    with torch.no_grad():
        loss = trainer.compute_loss(model, batch).item()
        sequences = [e["chosen_ids"] for e in examples] + [e["rejected_ids"] for e in examples]
        outputs = torch.stack([model(input_ids=torch.tensor([s])).logits[0] for s in sequences])  # (8, heads)
    shared = []
    for e in examples:
        k = 0
        while k < min(len(e["chosen_ids"]), len(e["rejected_ids"])) and e["chosen_ids"][k] == e["rejected_ids"][k]:
            k += 1
        shared.append(k)
    lengths = [len(e["chosen_ids"]) - k for e, k in zip(examples, shared, strict=True)]
    lengths += [len(e["rejected_ids"]) - k for e, k in zip(examples, shared, strict=True)]
    margin = torch.tensor([float(e["margin"]) for e in examples])
    quality, length = outputs[:, 0], outputs[:, -1]
    fitted = outputs.sum(-1) if method == "odin" else quality
    if scope == "prompt":  # each response against the other answer to its prompt
        quality, length, lengths = (centred_in_pairs(x, 4) for x in (quality, length, lengths))
    if method == "odin":
        head = model.score
        extra = 0.5 * abs(corr(quality, lengths)) - 0.3 * corr(length, lengths)
        extra += 2.0 * abs(float((head.weight * head.length_weight).sum().detach()))
    else:
        extra = 0.5 * abs(corr(quality, lengths))
    bt = -torch.nn.functional.logsigmoid(fitted[:4] - fitted[4:] - margin).mean().item()
    assert loss == pytest.approx(bt + extra, abs=1e-5)


def train_on_lengths(tmp_path, method: str | None, arch: str = "llama"):
    tok = make_tokenizer(arch)
    args = config(tmp_path / str(method), length_debias=method, max_steps=40, per_device_train_batch_size=8)
    args.logging_steps = 10
    trainer = RewardTrainer(make_model(arch, tok), args=args, train_dataset=length_pairs(256, 0), processing_class=tok)
    trainer.train()
    trainer.save_model()
    return trainer


def test_odin_takes_length_out_of_the_saved_reward_where_length_alone_explains_the_labels(tmp_path):
    held_out = list(length_pairs(64, 1))
    plain = train_on_lengths(tmp_path, None)
    scores = RewardModel.from_pretrained(plain.args.output_dir, device="cpu").score_pair_rows(held_out)
    lengths = scores.chosen_tokens + scores.rejected_tokens
    assert corr(scores.rewards_chosen + scores.rewards_rejected, lengths) > 0.6  # a plain model learns length
    logged = [e for e in plain.state.log_history if "length_correlation" in e]
    assert logged and logged[-1]["length_correlation"] > 0.6 and "length_head_correlation" not in logged[-1]

    odin = train_on_lengths(tmp_path, "odin")
    scorer = RewardModel.from_pretrained(odin.args.output_dir, device="cpu")
    assert scorer.has_length_head
    scores = scorer.score_pair_rows(held_out)
    assert abs(corr(scores.rewards_chosen + scores.rewards_rejected, lengths)) < 0.25
    assert corr(scores.length_rewards_chosen + scores.length_rewards_rejected, lengths) > 0.8
    logged = [e for e in odin.state.log_history if "length_head_correlation" in e]
    assert len(logged) == 4 and abs(logged[-1]["length_correlation"]) < 0.25
    assert logged[-1]["length_head_correlation"] > 0.8


def test_saved_odin_model_is_the_quality_reward_in_plain_transformers_and_rewardlab_eval_reports_both(tmp_path):
    trainer = train_on_lengths(tmp_path, "odin", arch="qwen3")
    out = trainer.args.output_dir
    assert json.loads(Path(out, "config.json").read_text())["rewardlab_length_head"] is True
    assert json.loads(Path(out, "rewardlab_run.json").read_text())["args"]["length_debias"] == "odin"
    scorer = RewardModel.from_pretrained(out, device="cpu")
    texts = ["the sky is blue", "what color is the sky ? green green green", "paris rome"]
    quality, length = scorer.score_texts(texts, return_length=True)
    assert scorer.score_texts(texts) == pytest.approx(quality, abs=1e-6) and quality != pytest.approx(length)

    # What TRL's `reward_funcs="<path>"`, vLLM and any RL trainer load: the plain num_labels=1 model.
    plain = AutoModelForSequenceClassification.from_pretrained(out, num_labels=1).eval()
    tok = AutoTokenizer.from_pretrained(out)
    classify = pipeline("text-classification", model=plain, tokenizer=tok, function_to_apply="none", device="cpu")
    with torch.no_grad():
        for text, q in zip(texts, quality, strict=True):
            ids = tok(text)["input_ids"]
            if ids[-1] != tok.eos_token_id:
                ids.append(tok.eos_token_id)
            assert plain(input_ids=torch.tensor([ids])).logits.item() == pytest.approx(q, abs=1e-5)
    first = tok(texts[0])["input_ids"]
    assert classify(texts[0])[0]["score"] == pytest.approx(plain(input_ids=torch.tensor([first])).logits.item(), 1e-4)

    from rewardlab.cli.eval import main as rewardlab_eval

    data = tmp_path / "held_out.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in length_pairs(24, 2)))
    rewardlab_eval(
        ["--model", out, "--dataset", str(data), "--output_dir", str(tmp_path / "eval"), "--n_bootstrap", "20"]
    )
    report = json.loads((tmp_path / "eval" / "report.json").read_text())
    metrics = next(iter(next(iter(report["results"].values())).values()))  # the one model on the one set
    assert metrics["length_head"]["pearson"] > 0.5 > abs(metrics["length_bias"]["pearson"]["value"])
    assert "length head–length correlation" in (tmp_path / "eval" / "report.html").read_text()


def test_return_length_needs_a_length_head():
    tok = make_tokenizer("llama")
    scorer = RewardModel(make_model("llama", tok), tok)
    with pytest.raises(RewardlabError, match="needs a length head"):
        scorer.score_texts(["a"], return_length=True)
    assert scorer.score_pairs(["a b"], ["a c"]).length_rewards_chosen is None


def test_odin_lora_adapter_reloads_both_heads_and_plain_peft_gets_the_quality_head(tmp_path):
    from peft import LoraConfig, PeftModel

    tok = make_tokenizer("qwen3")
    base_dir = str(tmp_path / "base")
    make_model("qwen3", tok).save_pretrained(base_dir)
    tok.save_pretrained(base_dir)
    args = config(tmp_path, length_debias="odin", per_device_eval_batch_size=4)
    trainer = RewardTrainer(
        base_dir, args=args, train_dataset=pairs(8), eval_dataset=pairs(4, seed=2), peft_config=LoraConfig(r=4)
    )
    trainer.train()
    assert "length_head_correlation" in [k for e in trainer.state.log_history for k in e]
    trained = trainer.predict(trainer.eval_dataset).predictions  # (pairs, 2): the quality head's
    assert trained.shape == (4, 2)
    out = str(tmp_path / "adapter")
    trainer.save_model(out)

    scorer = RewardModel.from_pretrained(out, device="cpu")
    assert scorer.has_length_head
    rows = [{"chosen_ids": r["chosen_ids"], "rejected_ids": r["rejected_ids"]} for r in trainer.eval_dataset]
    scores = scorer.score_pair_rows(rows)
    np.testing.assert_allclose(scores.rewards_chosen, trained[:, 0], atol=1e-5)
    assert scores.length_rewards_chosen is not None
    plain = PeftModel.from_pretrained(AutoModelForSequenceClassification.from_pretrained(base_dir), out).eval()
    with torch.no_grad():
        first = plain(input_ids=torch.tensor([rows[0]["chosen_ids"]])).logits.item()
    assert first == pytest.approx(trained[0, 0], abs=1e-5)


def ranked_answers(n: int, seed: int = 0) -> Dataset:
    """Rankings of 2 to 4 answers of different lengths, in a random order."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        k = int(rng.integers(2, 5))
        responses = [" " + " ".join(rng.choice(WORDS, size=j + 1)) for j in range(k)]
        scores = rng.permutation(k).tolist()  # distinct: every row carries a preference
        rows.append({"prompt": f"the sky {i} ?", "responses": responses, "scores": scores})
    return Dataset.from_list(rows)


@pytest.mark.parametrize("scope", ["batch", "prompt"])
def test_rankings_train_with_odin_on_the_sum_of_the_heads(scope, tmp_path):
    tok = make_tokenizer("llama")
    model = make_model("llama", tok)
    args = config(tmp_path, length_debias="odin", head_orthogonality_coefficient=0.0, per_device_eval_batch_size=3)
    args.length_decorrelation_scope = scope
    trainer = RewardTrainer(
        model, args=args, train_dataset=ranked_answers(12), eval_dataset=ranked_answers(5, 1), processing_class=tok
    )
    examples = [trainer.train_dataset[i] for i in range(3)]
    batch = trainer.data_collator(examples)
    with torch.no_grad():
        loss = trainer.compute_loss(model, batch).item()
        outputs = torch.stack(
            [model(input_ids=torch.tensor([r])).logits[0] for e in examples for r in e["response_ids"]]
        )
    lengths = batch["response_lengths"]
    scores = torch.tensor([s for e in examples for s in e["scores"]], dtype=torch.float)
    sizes = [len(e["response_ids"]) for e in examples]
    expected = pairwise_ranking_loss(outputs.sum(-1), scores, sizes).item()
    quality, length, lengths = outputs[:, 0].numpy(), outputs[:, 1].numpy(), lengths.numpy()
    if scope == "prompt":  # each response against the others to its prompt
        ends = np.cumsum(sizes)[:-1]
        quality, length, lengths = (
            np.concatenate([part - part.mean() for part in np.split(x, ends)]) for x in (quality, length, lengths)
        )
    expected += abs(corr(quality, lengths)) - corr(length, lengths)
    assert loss == pytest.approx(expected, abs=1e-5)
    trainer.train()
    logged = [e for e in trainer.state.log_history if "top1_accuracy" in e]
    assert logged and {"length_correlation", "length_head_correlation"} <= set(logged[-1])
    assert "eval_accuracy" in trainer.evaluate()


def test_odin_under_a_token_budget_trains_in_micro_batches(tmp_path):
    tok = make_tokenizer("qwen3")
    args = config(tmp_path, length_debias="odin", max_tokens_per_batch=24)
    trainer = RewardTrainer(make_model("qwen3", tok), args=args, train_dataset=pairs(8), processing_class=tok)
    batch = trainer.data_collator([trainer.train_dataset[i] for i in range(4)])
    assert batch["layout"] is Layout.MICRO_BATCHES
    trainer.train()
    logged = [e for e in trainer.state.log_history if "length_head_correlation" in e]
    assert len(logged) == 3 and all(np.isfinite(e["loss"]) for e in logged)


def test_length_debias_options_are_checked(tmp_path):
    with pytest.raises(ValueError, match="length_debias='lasso' is not one of odin, correlation"):
        RewardConfig(output_dir=str(tmp_path), length_debias="lasso", report_to=[])
    with pytest.raises(ValueError, match="set ensemble_heads=1"):
        RewardConfig(output_dir=str(tmp_path), length_debias="odin", ensemble_heads=3, report_to=[])
    with pytest.raises(ValueError, match="length_head_coefficient must be >= 0"):
        RewardConfig(output_dir=str(tmp_path), length_debias="odin", length_head_coefficient=-1, report_to=[])
    tok = make_tokenizer("llama")
    trainer = RewardTrainer(
        make_model("llama", tok),
        args=config(tmp_path, length_debias="correlation"),
        train_dataset=pairs(8),
        processing_class=tok,
        data_collator=DataCollatorForPreference(0),
    )
    with pytest.raises(RewardlabError, match="length_debias needs each response's length"):
        trainer.train()
