"""End-to-end tests of RewardTrainer on tiny random models (Llama, Qwen3, BERT)."""

import json
import os
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from datasets import Dataset, IterableDataset
from tiny import make_model, make_tokenizer
from transformers import AutoModelForSequenceClassification, AutoTokenizer, pipeline

from rewardlab import RewardConfig, RewardTrainer
from rewardlab.cpu_threads import AdaptiveThreads
from rewardlab.errors import RewardlabError
from rewardlab.layout import Layout
from rewardlab.metrics.running import preference_metrics
from rewardlab.model.load import load_trained_model

TRL_METRICS = {
    "loss",
    "accuracy",
    "margin",
    "min_reward",
    "mean_reward",
    "max_reward",
    "num_tokens",
    "grad_norm",
    "learning_rate",
    "epoch",
}


def pairs(n: int, margin: bool = False, seed: int = 0) -> Dataset:
    """Explicit-prompt standard pairs; the chosen answer says 'blue', the rejected one 'green'."""
    rng = np.random.default_rng(seed)
    words = ["the", "sky", "city", "weather", "today", "paris", "rome", "cold", "warm"]
    rows = []
    for i in range(n):
        prompt = " ".join(rng.choice(words, size=int(rng.integers(2, 8)))) + " ?"
        row = {"prompt": prompt, "chosen": f" it is blue {i % 7}", "rejected": f" it is green {i % 5} sorry"}
        if margin:
            row["margin"] = float(i % 3)
        rows.append(row)
    return Dataset.from_list(rows)


def config(tmp_path, **kw) -> RewardConfig:
    defaults = dict(
        output_dir=str(tmp_path / "out"),
        per_device_train_batch_size=4,
        per_device_eval_batch_size=2,
        max_steps=3,
        learning_rate=1e-3,
        logging_steps=1,
        report_to=[],
        save_strategy="no",
        gradient_checkpointing=False,
        disable_tqdm=True,
        use_cpu=True,
    )
    defaults.update(kw)
    return RewardConfig(**defaults)


def manual_rewards(model, tokenizer, dataset: Dataset) -> np.ndarray:
    """Score each prepared pair alone with a plain forward pass: no batching, no padding."""
    model.eval()
    out = []
    with torch.no_grad():
        for row in dataset:
            r = [model(input_ids=torch.tensor([row[k]])).logits.item() for k in ("chosen_ids", "rejected_ids")]
            out.append(r)
    return np.array(out)


def test_trains_and_logs_trl_metric_names(arch, tmp_path):
    tok = make_tokenizer(arch)
    trainer = RewardTrainer(make_model(arch, tok), args=config(tmp_path), train_dataset=pairs(12), processing_class=tok)
    before = [p.detach().clone() for p in trainer.model.parameters()]
    trainer.train()
    logged = [e for e in trainer.state.log_history if "accuracy" in e]
    assert logged and set(logged[0]) >= TRL_METRICS
    assert logged[-1]["num_tokens"] > logged[0]["num_tokens"] > 0
    assert any(not torch.equal(a, b) for a, b in zip(before, trainer.model.parameters(), strict=True))


def test_eval_metrics_are_exact_over_a_ragged_last_batch(arch, tmp_path):
    tok = make_tokenizer(arch)
    model = make_model(arch, tok)
    data = pairs(5, margin=True)
    trainer = RewardTrainer(
        model,
        args=config(tmp_path, per_device_eval_batch_size=2),
        train_dataset=data,
        eval_dataset=data,
        processing_class=tok,
    )
    metrics = trainer.evaluate()
    rewards = manual_rewards(trainer.model, tok, trainer.eval_dataset)
    expected = preference_metrics(rewards[:, 0], rewards[:, 1], np.array(data["margin"]))
    assert metrics["eval_num_pairs"] == 5
    for key in ("accuracy", "margin", "loss", "ties", "min_reward", "max_reward", "mean_reward"):
        assert metrics[f"eval_{key}"] == pytest.approx(expected[key], abs=1e-5), key


def test_ties_are_reported(tmp_path):
    tok = make_tokenizer("qwen3")
    model = make_model("qwen3", tok)
    torch.nn.init.zeros_(model.score.weight)  # every reward is exactly 0
    trainer = RewardTrainer(
        model, args=config(tmp_path), train_dataset=pairs(4), eval_dataset=pairs(3), processing_class=tok
    )
    metrics = trainer.evaluate()
    assert metrics["eval_ties"] == 1.0 and metrics["eval_accuracy"] == 0.0


def test_centring_and_margin_enter_the_loss(tmp_path):
    tok = make_tokenizer("llama")
    data = pairs(6, margin=True)
    trainer = RewardTrainer(
        make_model("llama", tok),
        args=config(tmp_path, center_rewards_coefficient=0.5),
        train_dataset=data,
        eval_dataset=data,
        processing_class=tok,
    )
    metrics = trainer.evaluate()
    r = manual_rewards(trainer.model, tok, trainer.eval_dataset)
    diff = r[:, 0] - r[:, 1] - np.array(data["margin"])
    expected = np.mean(np.log1p(np.exp(-diff))) + 0.5 * np.mean((r[:, 0] + r[:, 1]) ** 2)
    assert metrics["eval_loss"] == pytest.approx(expected, rel=1e-5)


def test_several_eval_sets_are_reported_separately(tmp_path):
    tok = make_tokenizer("qwen3")
    trainer = RewardTrainer(
        make_model("qwen3", tok),
        args=config(tmp_path),
        train_dataset=pairs(4),
        eval_dataset={"a": pairs(3), "b": pairs(5, seed=1)},
        processing_class=tok,
    )
    metrics = trainer.evaluate()
    assert metrics["eval_a_num_pairs"] == 3 and metrics["eval_b_num_pairs"] == 5


def test_saved_model_scores_the_same_in_plain_transformers_and_pipeline(tmp_path):
    # Llama tokenizer without pad token: pad falls back to eos, the case that breaks reward read-out elsewhere.
    tok = make_tokenizer("llama")
    data = pairs(6)
    trainer = RewardTrainer(
        make_model("llama", tok), args=config(tmp_path), train_dataset=data, eval_dataset=data, processing_class=tok
    )
    assert tok.pad_token == tok.eos_token
    trainer.train()
    trained = trainer.predict(trainer.eval_dataset).predictions
    out = str(tmp_path / "saved")
    trainer.save_model(out)

    model = AutoModelForSequenceClassification.from_pretrained(out)
    tokenizer = AutoTokenizer.from_pretrained(out)
    assert model.config.pad_token_id == tokenizer.pad_token_id == tokenizer.eos_token_id
    np.testing.assert_allclose(manual_rewards(model, tokenizer, trainer.eval_dataset), trained, atol=1e-5)

    # The text the trainer tokenized is prompt + response + eos; pipeline tokenizes it the same way.
    texts = [row["prompt"] + row["chosen"] + tokenizer.eos_token for row in data]
    scorer = pipeline("text-classification", model=out, function_to_apply="none", device="cpu")
    piped = np.array([r["score"] for r in scorer(texts, batch_size=3)])
    np.testing.assert_allclose(piped, trained[:, 0], atol=1e-5)

    record = json.loads(Path(out, "rewardlab_run.json").read_text())
    assert record["data"]["train"]["pairs_out"] == 6
    assert "prompts truncated" in Path(out, "README.md").read_text()


@pytest.mark.parametrize("arch", ["qwen3", "bert"])
def test_lora_trains_the_head_and_reloads_with_the_same_scores(arch, tmp_path):
    from peft import LoraConfig, PeftModel

    tok = make_tokenizer(arch)
    base_dir = str(tmp_path / "base")
    make_model(arch, tok).save_pretrained(base_dir)
    tok.save_pretrained(base_dir)
    head = "score" if arch == "qwen3" else "classifier"
    initial_head = getattr(make_model(arch, tok), head).weight.detach().clone()

    # The user forgets task_type and modules_to_save: rewardlab fixes both.
    trainer = RewardTrainer(
        base_dir,
        args=config(tmp_path),
        train_dataset=pairs(8),
        eval_dataset=pairs(4),
        peft_config=LoraConfig(r=4, lora_alpha=8),
    )
    assert isinstance(trainer.model, PeftModel)
    trainer.train()
    trained = trainer.predict(trainer.eval_dataset).predictions
    out = str(tmp_path / "adapter")
    trainer.save_model(out)
    assert os.path.isfile(os.path.join(out, "adapter_config.json"))

    model, _ = load_trained_model(out)
    np.testing.assert_allclose(manual_rewards(model, tok, trainer.eval_dataset), trained, atol=1e-5)
    reloaded_head = model.base_model.model.get_submodule(head).modules_to_save["default"].weight
    assert not torch.allclose(reloaded_head, initial_head)


def test_gradient_checkpointing_trains(tmp_path):
    tok = make_tokenizer("qwen3")
    trainer = RewardTrainer(
        make_model("qwen3", tok),
        args=config(tmp_path, gradient_checkpointing=True),
        train_dataset=pairs(8),
        processing_class=tok,
    )
    trainer.train()
    assert trainer.model.is_gradient_checkpointing
    assert np.isfinite(trainer.state.log_history[-1]["train_loss"])


def test_dropout_disabled_by_default(tmp_path):
    tok = make_tokenizer("bert")
    trainer = RewardTrainer(
        make_model("bert", tok, hidden_dropout_prob=0.3),
        args=config(tmp_path),
        train_dataset=pairs(4),
        processing_class=tok,
    )
    assert all(m.p == 0 for m in trainer.model.modules() if isinstance(m, torch.nn.Dropout))


def test_streaming_dataset_needs_max_steps_and_trains(tmp_path):
    tok = make_tokenizer("llama")
    stream = IterableDataset.from_generator(lambda: iter(pairs(16).to_list()))
    with pytest.raises(RewardlabError, match="max_steps"):
        RewardTrainer(
            make_model("llama", tok), args=config(tmp_path, max_steps=-1), train_dataset=stream, processing_class=tok
        )
    trainer = RewardTrainer(
        make_model("llama", tok), args=config(tmp_path, max_steps=2), train_dataset=stream, processing_class=tok
    )
    trainer.train()
    assert trainer.state.global_step == 2


def test_model_by_path_and_wrong_num_labels(tiny_dirs, tmp_path):
    trainer = RewardTrainer(tiny_dirs["bert"], args=config(tmp_path), train_dataset=pairs(4))
    assert trainer.model.config.num_labels == 1
    tok = make_tokenizer("bert")
    with pytest.raises(RewardlabError, match="num_labels"):
        RewardTrainer(
            make_model("bert", tok, num_labels=2), args=config(tmp_path), train_dataset=pairs(4), processing_class=tok
        )


def test_chat_template_from_jinja_file(tmp_path):
    tok = make_tokenizer("qwen3")
    template = tmp_path / "t.jinja"
    template.write_text("{% for m in messages %}[{{ m['role'] }}] {{ m['content'] }}\n{% endfor %}")
    conv = Dataset.from_list(
        [
            {
                "prompt": [{"role": "user", "content": "sky ?"}],
                "chosen": [{"role": "assistant", "content": "blue"}],
                "rejected": [{"role": "assistant", "content": "green"}],
            }
        ]
        * 2
    )
    trainer = RewardTrainer(
        make_model("qwen3", tok),
        args=config(tmp_path, chat_template_path=str(template)),
        train_dataset=conv,
        processing_class=tok,
    )
    first = trainer.train_dataset[0]["chosen_ids"]
    assert tok.decode(first).startswith("[user] sky ?")


def test_a_peft_model_can_be_passed_directly_but_not_with_a_second_config(tmp_path):
    from peft import LoraConfig, TaskType, get_peft_model

    tok = make_tokenizer("qwen3")
    peft_model = get_peft_model(make_model("qwen3", tok), LoraConfig(task_type=TaskType.SEQ_CLS, r=4))
    trainer = RewardTrainer(peft_model, args=config(tmp_path), train_dataset=pairs(8), processing_class=tok)
    trainer.train()
    assert trainer.state.global_step == 3
    with pytest.raises(RewardlabError, match="You passed a `PeftModel`"):
        RewardTrainer(
            peft_model, args=config(tmp_path), train_dataset=pairs(8), processing_class=tok, peft_config=LoraConfig(r=4)
        )


def test_over_length_pairs_are_counted_in_the_saved_run(tmp_path):
    tok = make_tokenizer("qwen3")
    long_prompt = " ".join(["the sky is blue"] * 30)
    over = [{"prompt": long_prompt, "chosen": " yes", "rejected": " no sorry"}] * 3
    data = Dataset.from_list(over + pairs(3).to_list())
    trainer = RewardTrainer(
        make_model("qwen3", tok), args=config(tmp_path, max_length=32), train_dataset=data, processing_class=tok
    )
    assert all(len(ids) <= 32 for ids in trainer.train_dataset["chosen_ids"])
    trainer.save_model(str(tmp_path / "m"))
    stats = json.loads(Path(tmp_path, "m", "rewardlab_run.json").read_text())["data"]["train"]
    assert stats["prompt_truncated"] == 3 and stats["pairs_out"] == 6 and stats["dropped_overlength"] == 0
    dropping = RewardTrainer(
        make_model("qwen3", tok),
        args=config(tmp_path, max_length=32, overlength_policy="drop"),
        train_dataset=data,
        processing_class=tok,
    )
    assert dropping.data_stats["train"].dropped_overlength == 3 and len(dropping.train_dataset) == 3


@pytest.mark.parametrize("arch,shared", [("llama", True), ("qwen3", True), ("bert", False)])
def test_fast_path_is_the_default_and_shares_prompts_on_causal_models(arch, shared, tmp_path, caplog):
    from rewardlab.layout import DataCollatorForPreference

    tok = make_tokenizer(arch)
    with caplog.at_level("INFO", logger="rewardlab.layout.choose"):
        trainer = RewardTrainer(
            make_model(arch, tok),
            args=config(tmp_path, max_steps=-1, num_train_epochs=1),
            train_dataset=pairs(12),
            processing_class=tok,
        )
    assert isinstance(trainer.data_collator, DataCollatorForPreference)
    # Causal models share the prompt; encoders pack whole sequences instead.
    assert trainer.data_collator.layout is (Layout.SHARED_PREFIX if shared else Layout.PACKED)
    if not shared:
        assert "share_prompt is off" in caplog.text and "score head" in caplog.text
    trainer.train()
    # num_tokens counts real tokens (of chosen and rejected as sequences), whatever the layout computed.
    real = sum(
        len(c) + len(r)
        for c, r in zip(trainer.train_dataset["chosen_ids"], trainer.train_dataset["rejected_ids"], strict=True)
    )
    assert [e for e in trainer.state.log_history if "num_tokens" in e][-1]["num_tokens"] == real
    plain = RewardTrainer(
        make_model(arch, tok), args=config(tmp_path, padding_free=False), train_dataset=pairs(4), processing_class=tok
    )
    assert plain.data_collator.layout is Layout.PADDED
    unshared = RewardTrainer(
        make_model(arch, tok), args=config(tmp_path, share_prompt=False), train_dataset=pairs(4), processing_class=tok
    )
    # share_prompt=False packs a causal model's sequences without sharing; an encoder never shares anyway.
    assert unshared.data_collator.layout is (Layout.PACKED_CAUSAL if shared else Layout.PACKED)


def test_a_model_that_cannot_pack_pairs_falls_back_with_a_reason(tmp_path, caplog):
    tok = make_tokenizer("llama")
    model = make_model("llama", tok)
    original = model.model.forward

    def drop_pair_spans(*args, **kwargs):  # an architecture that does not pass extra arguments to its attention
        kwargs.pop("rewardlab_varlen", None)
        return original(*args, **kwargs)

    model.model.forward = drop_pair_spans
    with caplog.at_level("WARNING", logger="rewardlab.layout.choose"):
        trainer = RewardTrainer(
            model, args=config(tmp_path, share_prompt=True), train_dataset=pairs(4), processing_class=tok
        )
    assert trainer.data_collator.layout is Layout.SUB_BATCHES
    assert "do not reproduce its rewards" in caplog.text
    assert trainer.model.config._attn_implementation != "rewardlab_pairs"


@pytest.mark.parametrize("arch,padding_free", [("llama", True), ("bert", True), ("qwen3", False)])
def test_token_budget_trains_exactly_like_whole_batches(arch, padding_free, tmp_path):
    """Micro-batches under max_tokens_per_batch (one backward each) give the whole batch's losses and weights.

    SGD, because Adam's first steps are ~lr * sign(gradient): float round-off in a near-zero gradient would flip them.
    """
    data = pairs(16, margin=True)
    runs = {}
    for budget in (None, 40):
        tok = make_tokenizer(arch)  # fresh: the trainer sets a pad token on it, which would change the next model
        kw = dict(
            max_tokens_per_batch=budget,
            padding_free=padding_free,
            center_rewards_coefficient=0.01,
            gradient_accumulation_steps=2,
            max_steps=2,
            seed=3,
            optim="sgd",
        )
        trainer = RewardTrainer(
            make_model(arch, tok), args=config(tmp_path, **kw), train_dataset=data, processing_class=tok
        )
        if budget:
            batch = trainer.data_collator([trainer.train_dataset[i] for i in range(4)])
            assert len(batch["micro_batches"]) >= 2
        trainer.train()
        losses = [e["loss"] for e in trainer.state.log_history if "loss" in e]
        runs[budget] = losses, {n: p.detach().clone() for n, p in trainer.model.named_parameters()}
    assert runs[40][0] == pytest.approx(runs[None][0], abs=1e-5)
    for name, weight in runs[None][1].items():
        torch.testing.assert_close(runs[40][1][name], weight, atol=1e-5, rtol=1e-4, msg=name)


def test_token_budget_is_validated(tmp_path):
    with pytest.raises(ValueError, match="max_tokens_per_batch must be a positive"):
        config(tmp_path, max_tokens_per_batch=0)


def test_contended_cpu_training_runs_on_the_cores_it_gets_and_gives_the_threads_back(tmp_path, monkeypatch):
    """Every step measured at one core's worth of CPU time (as under a competing process): after the first step,
    training and evaluation run on one thread; the user's thread count is back after each; the losses are those
    of a run that was never adapted."""
    monkeypatch.setattr(torch, "get_num_threads", lambda: 2)  # two threads to adapt from, whatever the machine
    set_threads = []
    monkeypatch.setattr(torch, "set_num_threads", set_threads.append)
    tok = make_tokenizer("llama")
    losses = {}
    for adapt in (False, True):
        args = config(tmp_path, max_steps=4, per_device_train_batch_size=2, adapt_cpu_threads=adapt)
        trainer = RewardTrainer(make_model("llama", tok), args=args, train_dataset=pairs(8), processing_class=tok)
        if adapt:
            # The process's CPU clock runs as fast as the wall clock: one core for two threads; the probe agrees.
            contended = AdaptiveThreads(2, probe=lambda threads: 1.0, cpu_clock=time.perf_counter)
            trainer.cpu_threads = contended
        trainer.train()
        losses[adapt] = [e["loss"] for e in trainer.state.log_history if "loss" in e]
        if adapt:
            assert set_threads == [2, 1, 2]  # on entering train(), after the first step, on leaving
            assert contended.threads == 1
            trainer.evaluate(pairs(4))
            assert set_threads[3:] == [1, 2]  # evaluation starts from what training measured, then gives them back
        else:
            assert trainer.cpu_threads is None and set_threads == []
    np.testing.assert_allclose(losses[True], losses[False], rtol=1e-6)


def test_threads_are_adapted_only_on_a_cpu_with_several(tmp_path, monkeypatch):
    tok = make_tokenizer("llama")
    for threads, adapted in ((1, None), (4, 4)):
        monkeypatch.setattr(torch, "get_num_threads", lambda threads=threads: threads)
        model = make_model("llama", tok)
        trainer = RewardTrainer(model, args=config(tmp_path), train_dataset=pairs(4), processing_class=tok)
        assert (trainer.cpu_threads and trainer.cpu_threads.max_threads) == adapted


def test_head_learning_rate_puts_the_score_head_in_groups_of_its_own(tmp_path):
    """`head_learning_rate`: the new head (weight and bias) trains at its own rate, on the same schedule."""
    tok = make_tokenizer("bert")
    model = make_model("bert", tok)
    args = config(tmp_path, learning_rate=1e-3, head_learning_rate=0.1, weight_decay=0.01, warmup_steps=1)
    trainer = RewardTrainer(model, args=args, train_dataset=pairs(8), processing_class=tok)
    optimizer = trainer.create_optimizer()
    head = {id(p) for p in model.classifier.parameters()}
    for group in optimizer.param_groups:
        ids = {id(p) for p in group["params"]}
        assert ids <= head if group["lr"] == 0.1 else not ids & head
    head_groups = [g for g in optimizer.param_groups if g["lr"] == 0.1]
    assert sorted(g["weight_decay"] for g in head_groups) == [0.0, 0.01]  # the bias does not decay, as in Trainer
    assert trainer.create_optimizer() is optimizer and len(optimizer.param_groups) == 4
    trainer.train()
    assert trainer.lr_scheduler.base_lrs == pytest.approx([1e-3, 1e-3, 0.1, 0.1])  # one schedule scales them all
    with pytest.raises(ValueError, match="head_learning_rate must be >= 0"):
        RewardConfig(output_dir=str(tmp_path), head_learning_rate=-1.0, report_to=[])
