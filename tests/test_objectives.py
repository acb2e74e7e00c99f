"""Reward models for several objectives: an `objective` per row, one head per objective, each trained on its own
pairs; each objective's evaluation metrics; the errors that name the row and the field."""

import numpy as np
import pytest
import torch
from datasets import Dataset, IterableDataset
from test_trainer import config
from tiny import make_model, make_tokenizer
from transformers import AutoModelForSequenceClassification

from rewardlab import RewardConfig, RewardTrainer
from rewardlab.data.mixture import load_mixture
from rewardlab.data.prepare import prepare_preference_dataset
from rewardlab.data.validate import BAD_OBJECTIVE, NULL
from rewardlab.errors import InvalidRowError, RewardlabError, UsageError
from rewardlab.layout import Layout
from rewardlab.layout.collate import DataCollatorForPreference
from rewardlab.losses import ObjectiveOptions, bradley_terry_loss, reward_objective


def rows(n: int, objectives=("helpful", "harmless")) -> list[dict]:
    """Pairs whose preferred answer depends on the objective: 'helpful' prefers 'sure', 'harmless' 'sorry'."""
    out = []
    for i in range(n):
        objective = objectives[i % len(objectives)]
        sure, sorry = f" sure here {i % 5}", f" sorry no {i % 3}"
        chosen, rejected = (sure, sorry) if objective == "helpful" else (sorry, sure)
        out.append(
            {"prompt": f"make a {i % 4} prank ?", "chosen": chosen, "rejected": rejected, "objective": objective}
        )
    return out


def test_a_pair_is_fitted_on_its_own_objectives_head_only():
    rewards = torch.tensor([[1.0, -2.0], [0.5, 3.0], [0.0, 1.0], [2.0, -1.0]], requires_grad=True)  # 2 pairs, 2 heads
    batch = {"objective_id": torch.tensor([0, 1]), "margin": torch.tensor([0.5, 0.0])}
    objective = reward_objective(rewards, batch, ObjectiveOptions(center_rewards_coefficient=0.1))
    chosen, rejected = torch.tensor([1.0, 3.0]), torch.tensor([0.0, -1.0])  # pair 0 on head 0, pair 1 on head 1
    assert torch.allclose(objective.loss, bradley_terry_loss(chosen, rejected, batch["margin"], 0.1))
    objective.loss.backward()
    assert rewards.grad[0, 1] == 0 and rewards.grad[1, 0] == 0 and rewards.grad[0, 0] != 0 and rewards.grad[1, 1] != 0


def test_rankings_take_their_prompts_objective():
    rewards = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.2, 0.3], [0.9, 0.1], [0.5, 0.5]])
    batch = {"scores": torch.tensor([2.0, 1.0, 3.0, 1.0, 0.0]), "group_sizes": torch.tensor([2, 3])}
    batch["objective_id"] = torch.tensor([1, 0])
    objective = reward_objective(rewards, batch, ObjectiveOptions())
    assert torch.equal(objective.saved, torch.tensor([0.0, 1.0, 0.2, 0.9, 0.5]))


def test_prepared_rows_carry_their_objectives_head_and_the_collator_batches_it():
    tok = make_tokenizer("qwen3")
    args = RewardConfig("unused", objectives="harmless,helpful", report_to=[])
    prepared, _ = prepare_preference_dataset(Dataset.from_list(rows(4)), tok, args, "train")
    assert prepared["objective_id"] == [1, 0, 1, 0]
    batch = DataCollatorForPreference(pad_token_id=0, layout=Layout.SHARED_PREFIX)(prepared.to_list())
    assert batch["objective_id"].tolist() == [1, 0, 1, 0]


def test_training_gives_a_head_per_objective_and_each_objectives_metrics(tmp_path):
    tok = make_tokenizer("qwen3")
    model = make_model("qwen3", tok, num_labels=2)
    trainer = RewardTrainer(
        model=model,
        args=config(tmp_path, eval_strategy="no"),
        train_dataset=Dataset.from_list(rows(16)),
        eval_dataset=Dataset.from_list(rows(8)),
        processing_class=tok,
    )
    assert trainer.args.objectives == ["harmless", "helpful"]  # from the data, sorted
    head = trainer.model.score.weight.detach().clone()
    trainer.train()
    metrics = trainer.evaluate()
    assert metrics["eval_num_pairs"] == 8
    for name in ("harmless", "helpful"):
        assert metrics[f"eval_num_pairs_{name}"] == 4 and 0 <= metrics[f"eval_accuracy_{name}"] <= 1
    assert not torch.equal(trainer.model.score.weight, head)
    trainer.save_model(str(tmp_path / "saved"))
    saved = AutoModelForSequenceClassification.from_pretrained(tmp_path / "saved")
    assert saved.config.num_labels == 2 and saved.config.id2label == {0: "harmless", 1: "helpful"}


def test_a_model_loaded_by_name_gets_a_head_per_objective(tiny_dirs, tmp_path):
    trainer = RewardTrainer(
        model=tiny_dirs["llama"],
        args=config(tmp_path, objectives="helpful,harmless", max_steps=1),
        train_dataset=Dataset.from_list(rows(8)),
    )
    assert trainer.model.config.num_labels == 2
    assert trainer.model.config.id2label == {0: "helpful", 1: "harmless"}  # the order given
    trainer.train()


def test_bad_objectives_are_named(tmp_path):
    tok = make_tokenizer("qwen3")
    data = rows(8)

    def train(train_rows, model=None, **kw):
        model = model or make_model("qwen3", tok, num_labels=2)
        return RewardTrainer(
            model, config(tmp_path, **kw), train_dataset=Dataset.from_list(train_rows), processing_class=tok
        )

    unknown = [dict(r, objective="funny") if i == 3 else r for i, r in enumerate(data)]
    with pytest.raises(InvalidRowError) as e:
        train(unknown, objectives="helpful,harmless")
    assert (e.value.index, e.value.field, e.value.code) == (3, "objective", BAD_OBJECTIVE) and "funny" in str(e.value)

    some = [dict(r, objective=None) if i == 5 else r for i, r in enumerate(data)]
    with pytest.raises(InvalidRowError) as e:
        train(some)
    assert (e.value.index, e.value.field, e.value.code) == (5, "objective", NULL)

    with pytest.raises(RewardlabError, match="names 1 objective \\(helpful\\)"):
        train(rows(8, objectives=("helpful",)))
    with pytest.raises(RewardlabError, match="'extra' has no training pairs"):
        train(data, make_model("qwen3", tok, num_labels=3), objectives="helpful,harmless,extra")
    with pytest.raises(RewardlabError, match="num_labels=1.*2 objectives"):
        train(data, make_model("qwen3", tok))
    named = make_model("qwen3", tok, num_labels=2, id2label={0: "helpful", 1: "harmless"})
    with pytest.raises(RewardlabError, match="heads are helpful, harmless, not the run's objectives"):
        train(data, named)  # the data's objectives, sorted: harmless, helpful
    with pytest.raises(RewardlabError, match="no `objective` column"):
        train([{k: v for k, v in r.items() if k != "objective"} for r in data], objectives="helpful,harmless")
    with pytest.raises(ValueError, match="two objectives or more"):
        config(tmp_path, objectives="helpful")
    with pytest.raises(ValueError, match="ensemble"):
        config(tmp_path, objectives="a,b", ensemble_heads=2)
    stream = IterableDataset.from_generator(lambda: iter(data))
    with pytest.raises(RewardlabError, match="streamed .* set objectives"):
        RewardTrainer(
            make_model("qwen3", tok, num_labels=2), config(tmp_path), train_dataset=stream, processing_class=tok
        )


def test_a_mixture_names_each_datasets_objective(tmp_path):
    import json

    files = []
    for name in ("helpful", "harmless"):
        path = tmp_path / f"{name}.jsonl"
        path.write_text("".join(json.dumps({k: v for k, v in r.items() if k != "objective"}) + "\n" for r in rows(4)))
        files.append({"path": str(path), "objective": name})
    train = load_mixture(files)["train"]
    assert train["objective"] == ["helpful"] * 4 + ["harmless"] * 4
    with pytest.raises(RewardlabError, match="all datasets of the mixture or none"):
        load_mixture([files[0], {"path": files[1]["path"]}])
    with pytest.raises(RewardlabError, match="objective must be an objective's name"):
        load_mixture([{"path": files[0]["path"], "objective": 3}])
    assert np.array_equal(np.unique(train["objective"]), ["harmless", "helpful"])


def test_rankings_train_and_evaluate_per_objective(tmp_path):
    tok = make_tokenizer("qwen3")
    ranked = [
        {
            "prompt": r["prompt"],
            "responses": [r["chosen"], r["rejected"], " maybe"],
            "scores": [2.0, 0.0, 1.0],
            "objective": r["objective"],
        }
        for r in rows(12)
    ]
    trainer = RewardTrainer(
        make_model("qwen3", tok, num_labels=2),
        config(tmp_path, max_steps=2, per_device_eval_batch_size=1),
        train_dataset=Dataset.from_list(ranked),
        eval_dataset=Dataset.from_list(ranked[:6]),  # K of 2 and 3: batches of different widths
        processing_class=tok,
    )
    trainer.train()
    metrics = trainer.evaluate()
    assert metrics["eval_num_prompts"] == 6
    assert metrics["eval_num_prompts_helpful"] == metrics["eval_num_prompts_harmless"] == 3
    assert "eval_top1_accuracy_helpful" in metrics


def test_a_saved_multi_objective_model_scores_one_objective_or_weighed_heads(tmp_path):
    from rewardlab import RewardModel
    from rewardlab.score.objectives import parse_weights

    tok = make_tokenizer("qwen3")
    model = make_model("qwen3", tok, num_labels=2, id2label={0: "harmless", 1: "helpful"})
    model.save_pretrained(tmp_path / "m")
    tok.save_pretrained(tmp_path / "m")
    texts = ["make a prank ? sure here", "make a prank ? sorry no", "hi"]
    plain = AutoModelForSequenceClassification.from_pretrained(tmp_path / "m").eval()
    with torch.no_grad():
        heads = np.array([plain(**tok(t + tok.eos_token, return_tensors="pt")).logits[0].tolist() for t in texts])

    helpful = RewardModel.from_pretrained(str(tmp_path / "m"), objective="helpful")
    assert helpful.objectives == ["harmless", "helpful"]
    np.testing.assert_allclose(helpful.score_texts(texts), heads[:, 1], atol=1e-5)
    mixed = RewardModel.from_pretrained(str(tmp_path / "m"), weights="helpful=0.7,harmless=0.3")
    np.testing.assert_allclose(mixed.score_texts(texts), heads @ [0.3, 0.7], atol=1e-5)
    pairs = mixed.score_pairs([" sure here"], [" sorry no"], prompts=["make a prank ?"])
    np.testing.assert_allclose([pairs.rewards_chosen[0], pairs.rewards_rejected[0]], heads[:2] @ [0.3, 0.7], atol=1e-5)

    with pytest.raises(RewardlabError, match="head per objective \\(harmless, helpful\\): choose one"):
        RewardModel.from_pretrained(str(tmp_path / "m"))
    with pytest.raises(RewardlabError, match="no objective 'funny'"):
        RewardModel.from_pretrained(str(tmp_path / "m"), weights={"funny": 1.0})
    with pytest.raises(RewardlabError, match="not name=number"):
        parse_weights("helpful=lots")
    with pytest.raises(RewardlabError, match="this one has one"):
        RewardModel(make_model("qwen3", tok), tok, objective="helpful")


def test_rewardlab_score_takes_an_objective(tmp_path, capsys):
    import json

    from rewardlab.cli import main

    tok = make_tokenizer("qwen3")
    make_model("qwen3", tok, num_labels=2, id2label={0: "harmless", 1: "helpful"}).save_pretrained(tmp_path / "m")
    tok.save_pretrained(tmp_path / "m")
    data = tmp_path / "rows.jsonl"
    data.write_text("".join(json.dumps({k: r[k] for k in ("prompt", "chosen", "rejected")}) + "\n" for r in rows(4)))
    base = ["score", "--model", str(tmp_path / "m"), "--dataset", str(data), "--device", "cpu"]
    assert main([*base, "--output", str(tmp_path / "h.jsonl"), "--objective", "helpful"]) == 0
    assert main([*base, "--output", str(tmp_path / "w.jsonl"), "--weights", "helpful=1"]) == 0
    helpful = [json.loads(line)["reward_chosen"] for line in (tmp_path / "h.jsonl").read_text().splitlines()]
    weighed = [json.loads(line)["reward_chosen"] for line in (tmp_path / "w.jsonl").read_text().splitlines()]
    assert helpful == weighed and len(helpful) == 4


def lora_trained(tmp_path, data: list[dict]):
    """A RewardTrainer that trained a LoRA adapter (and the heads) for helpful and harmless on `data`, from a tiny
    Llama saved with one output: the run gives it a head per objective."""
    from peft import LoraConfig

    tok = make_tokenizer("llama")
    base_dir = str(tmp_path / "base")
    make_model("llama", tok).save_pretrained(base_dir)
    tok.save_pretrained(base_dir)
    trainer = RewardTrainer(
        base_dir,
        args=config(tmp_path, objectives="helpful,harmless", learning_rate=1e-2),
        train_dataset=Dataset.from_list(data),
        peft_config=LoraConfig(r=4, lora_alpha=8),
    )
    trainer.train()
    return trainer


def test_lora_trains_every_objectives_head_and_the_adapter_scores_the_same(tmp_path):

    from rewardlab import RewardModel

    trainer = lora_trained(tmp_path, rows(16))
    texts = ["make a 1 prank ? sure here 1", "make a 2 prank ? sorry no 2"]
    live = RewardModel.from_trainer(trainer, objective="harmless").score_texts(texts)
    trainer.save_model(str(tmp_path / "adapter"))
    loaded = RewardModel.from_pretrained(str(tmp_path / "adapter"), objective="harmless", device="cpu")
    assert loaded.objectives == ["helpful", "harmless"]
    np.testing.assert_allclose(loaded.score_texts(texts), live, atol=1e-5)


def first_batch_loss(trainer, n: int, micro_batches: bool = False) -> float:
    """The loss of the trainer's first `n` training examples as its collator lays them out (`micro_batches`: over
    the token budget, the micro-batches' shares summed)."""
    batch = trainer.data_collator([trainer.train_dataset[i] for i in range(n)])
    if micro_batches:
        assert batch["layout"] is Layout.MICRO_BATCHES
        return sum(trainer.compute_loss(trainer.model, micro) for micro in batch["micro_batches"]).item()
    return trainer.compute_loss(trainer.model, batch).item()


@pytest.mark.parametrize("arch", ["qwen3", "bert"])
def test_every_layout_gives_the_padded_loss(arch, tmp_path):
    tok = make_tokenizer(arch)
    data = [dict(r, chosen=r["chosen"] + " ok" * (i % 4)) for i, r in enumerate(rows(8))]  # lengths that vary
    losses = {}
    for name, kw in {
        "padded": {"padding_free": False},
        "fast": {},
        "micro-batches": {"max_tokens_per_batch": 40},
        "length debiased": {"length_debias": "correlation"},
    }.items():
        trainer = RewardTrainer(
            make_model(arch, tok, num_labels=2),
            config(tmp_path, **kw),
            train_dataset=Dataset.from_list(data),
            processing_class=tok,
        )
        losses[name] = first_batch_loss(trainer, 6, micro_batches=name == "micro-batches")
    assert losses["fast"] == pytest.approx(losses["padded"], abs=1e-5)
    assert losses["micro-batches"] == pytest.approx(losses["padded"], abs=1e-5)
    assert losses["length debiased"] > losses["padded"]  # plus |corr(own reward, length)|


def test_export_folds_the_heads_into_one_that_plain_tools_load(tmp_path, capsys):
    from transformers import pipeline

    from rewardlab import RewardModel
    from rewardlab.cli import main

    tok = make_tokenizer("qwen3")
    model = make_model("qwen3", tok, num_labels=2, id2label={0: "harmless", 1: "helpful"})
    model.save_pretrained(tmp_path / "m")
    tok.save_pretrained(tmp_path / "m")
    texts = ["make a prank ? sure here", "make a prank ? sorry no"]
    expected = RewardModel.from_pretrained(str(tmp_path / "m"), weights="helpful=0.7,harmless=0.3").score_texts(texts)

    out = tmp_path / "exported"
    assert (
        main(
            [
                "export",
                "--model",
                str(tmp_path / "m"),
                "--output_dir",
                str(out),
                "--weights",
                "helpful=0.7,harmless=0.3",
            ]
        )
        == 0
    )
    assert "num_labels=1" in capsys.readouterr().out
    plain = AutoModelForSequenceClassification.from_pretrained(out)
    assert plain.config.num_labels == 1
    assert RewardModel.from_pretrained(str(out)).objectives is None
    np.testing.assert_allclose(RewardModel.from_pretrained(str(out)).score_texts(texts), expected, atol=1e-5)
    classify = pipeline("text-classification", model=str(out), function_to_apply="none")
    np.testing.assert_allclose([r["score"] for r in classify([t + tok.eos_token for t in texts])], expected, atol=1e-5)

    one = tmp_path / "harmless"
    assert main(["export", "--model", str(tmp_path / "m"), "--output_dir", str(one), "--objective", "harmless"]) == 0
    harmless = RewardModel.from_pretrained(str(tmp_path / "m"), objective="harmless").score_texts(texts)
    np.testing.assert_allclose(RewardModel.from_pretrained(str(one)).score_texts(texts), harmless, atol=1e-5)

    assert (
        main(["export", "--model", str(tmp_path / "m"), "--output_dir", str(tmp_path / "x"), "--objective", "funny"])
        == 2
    )
    assert "no objective 'funny'" in capsys.readouterr().err
    assert main(["export", "--model", str(one), "--output_dir", str(tmp_path / "y"), "--objective", "harmless"]) == 2
    assert "has one" in capsys.readouterr().err


def test_the_rl_reward_function_and_the_server_take_an_objective(tmp_path):
    from fastapi.testclient import TestClient

    from rewardlab import RewardFunction, RewardModel
    from rewardlab.cli.common import load_reward_model
    from rewardlab.cli.serve import parse_serve_args
    from rewardlab.serve import create_app

    tok = make_tokenizer("qwen3")
    make_model("qwen3", tok, num_labels=2, id2label={0: "harmless", 1: "helpful"}).save_pretrained(tmp_path / "m")
    tok.save_pretrained(tmp_path / "m")
    path = str(tmp_path / "m")
    prompts, completions = ["make a prank ?"] * 2, [" sure here", " sorry no"]
    expected = RewardModel.from_pretrained(path, objective="helpful").score(prompts, completions)

    assert RewardFunction(path, objective="helpful")(prompts, completions) == pytest.approx(expected, abs=1e-6)
    settings, args = parse_serve_args(["--model", path, "--objective", "helpful", "--device", "cpu"])
    with TestClient(create_app(load_reward_model(args.model, args), settings)) as client:
        response = client.post("/score", json={"prompts": prompts, "completions": completions})
    assert response.json()["rewards"] == pytest.approx(expected, abs=1e-6)
    with pytest.raises(UsageError, match="not allowed with argument --objective"):  # one or the other
        parse_serve_args(["--model", path, "--objective", "helpful", "--weights", "helpful=1"])
