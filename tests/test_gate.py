"""The prompt gate of a multi-objective reward model: its losses, the prompts a batch adds for it in every layout,
what it learns, how it is saved and loaded, and every way of using the model with it."""

import json

import numpy as np
import pytest
import torch
from datasets import Dataset
from test_objectives import first_batch_loss, lora_trained
from test_trainer import config
from tiny import make_model, make_tokenizer
from transformers import AutoModelForSequenceClassification

from rewardlab import RewardConfig, RewardTrainer
from rewardlab.errors import RewardlabError
from rewardlab.layout import Layout
from rewardlab.layout.collate import DataCollatorForPreference, DataCollatorForRanking, add_prompts
from rewardlab.losses import ObjectiveOptions, bradley_terry_loss, evaluated_rewards, reward_objective
from rewardlab.losses.gate import combined_rewards, gate_loss
from rewardlab.model.gate import GatedHeads, gate_of, has_gate

WORDS = {"helpful": "please help with python code", "harmless": "make a prank"}


def rows(n: int) -> list[dict]:
    """Pairs whose objective shows in the prompt; 'helpful' prefers 'sure', 'harmless' 'sorry'."""
    out = []
    for i in range(n):
        objective = ("helpful", "harmless")[i % 2]
        sure, sorry = f" sure here {i % 5}", f" sorry no {i % 3}"
        chosen, rejected = (sure, sorry) if objective == "helpful" else (sorry, sure)
        prompt = f"{WORDS[objective]} {i % 4} ?"
        out.append({"prompt": prompt, "chosen": chosen, "rejected": rejected, "objective": objective})
    return out


def test_the_combined_reward_weighs_each_responses_heads_by_its_prompts_gate():
    rewards = torch.tensor([[1.0, -1.0], [2.0, 0.0], [0.0, 1.0], [0.0, 0.0]])  # 2 pairs: chosen, chosen, rej, rej
    gate_logits = torch.tensor([[0.0, 0.0], [10.0, -10.0]])
    combined = combined_rewards(rewards, gate_logits, {})
    assert torch.allclose(combined, torch.tensor([0.0, 2.0, 0.5, 0.0]), atol=1e-4)
    ranking = {"group_sizes": torch.tensor([3, 1])}  # a ranking of 3, then 1
    assert torch.allclose(combined_rewards(rewards, gate_logits, ranking), torch.tensor([0.0, 1.0, 0.5, 0.0]))


def test_the_gate_learns_from_labels_or_from_the_combined_preference_with_the_heads_held():
    rewards = torch.tensor([[1.0, -1.0], [0.0, 2.0], [0.0, 1.0], [0.5, 0.0]], requires_grad=True)
    gate_logits = torch.tensor([[0.3, -0.2], [0.1, 0.4]], requires_grad=True)
    batch = {"objective_id": torch.tensor([0, 1])}
    labels = gate_loss(rewards, gate_logits, batch, "labels", None)
    assert torch.allclose(labels, torch.nn.functional.cross_entropy(gate_logits, batch["objective_id"]))

    def bt(r):
        return bradley_terry_loss(*r.chunk(2))

    preference = gate_loss(rewards, gate_logits, batch, "preference", bt)
    assert torch.allclose(preference, bt(combined_rewards(rewards, gate_logits, batch)))
    preference.backward()
    assert rewards.grad is None and gate_logits.grad.abs().sum() > 0  # the heads are held fixed in it
    both = gate_loss(rewards, gate_logits, batch, "both", bt)
    assert torch.allclose(both, labels + preference)


def test_the_objective_adds_the_gate_loss_and_saves_the_combined_reward():
    # 2 pairs (4 sequences) then their 2 prompts; outputs [heads (2), gate logits (2)]
    outputs = torch.tensor(
        [[1.0, -1.0, 9, 9], [0.0, 2.0, 9, 9], [0.0, 1.0, 9, 9], [0.5, 0.0, 9, 9], [9, 9, 2.0, 0.0], [9, 9, 0.0, 1.0]]
    )
    batch = {"objective_id": torch.tensor([0, 1]), "num_prompts": torch.tensor(2)}
    options = ObjectiveOptions(gate="labels", gate_coefficient=0.5)
    objective = reward_objective(outputs, batch, options)
    heads, gate_logits = outputs[:4, :2], outputs[4:, 2:]
    own = bradley_terry_loss(torch.tensor([1.0, 2.0]), torch.tensor([0.0, 0.0]))
    ce = torch.nn.functional.cross_entropy(gate_logits, batch["objective_id"])
    assert torch.allclose(objective.loss, own + 0.5 * ce)
    assert torch.allclose(objective.saved, combined_rewards(heads, gate_logits, batch))
    evaluated = evaluated_rewards(outputs, options, batch)  # [own head, combined, gate right]
    assert evaluated.shape == (4, 3)
    assert evaluated[:, 0].tolist() == [1.0, 2.0, 0.0, 0.0] and evaluated[:, 2].tolist() == [1.0, 1.0, 1.0, 1.0]


def test_add_prompts_puts_each_groups_prompt_last_and_sharing_costs_a_token_or_two():
    sequences, groups = add_prompts([[1, 2, 3, 4], [7, 8], [1, 2, 5]], [[0, 2], [1]])
    assert sequences[3:] == [[1, 2], [7, 8]] and groups == [[0, 2, 3], [1, 4]]
    assert add_prompts([[5, 6, 7]], [[0]], [2])[0][1] == [5, 6]  # a completion's prompt is given

    examples = [{"chosen_ids": [1, 2, 3, 4, 5], "rejected_ids": [1, 2, 3, 6]}] * 2
    plain = DataCollatorForPreference(pad_token_id=0, layout=Layout.SHARED_PREFIX, with_response_lengths=True)
    gated = DataCollatorForPreference(
        pad_token_id=0, layout=Layout.SHARED_PREFIX, with_response_lengths=True, with_prompts=True
    )
    a, b = plain(examples), gated(examples)
    assert b["input_ids"].shape[1] - a["input_ids"].shape[1] <= 2 * len(examples)
    assert b["num_prompts"] == 2 and len(b["readout_index"]) == 6
    assert torch.equal(a["response_lengths"], b["response_lengths"]) and a["num_real_tokens"] == b["num_real_tokens"]
    rankings = DataCollatorForRanking(pad_token_id=0, layout=Layout.PACKED, with_prompts=True)(
        [{"response_ids": [[1, 2, 3], [1, 2, 4], [1, 5]], "scores": [2.0, 1.0, 0.0]}]
    )
    assert rankings["num_prompts"] == 1 and len(rankings["first_index"]) == 4


@pytest.mark.parametrize("arch", ["qwen3", "bert"])
def test_every_layout_gives_the_padded_gate_and_loss(arch, tmp_path):
    tok = make_tokenizer(arch)
    data = [dict(r, chosen=r["chosen"] + " ok" * (i % 4)) for i, r in enumerate(rows(8))]
    losses = {}
    for name, kw in {
        "padded": {"padding_free": False},
        "fast": {},
        "micro-batches": {"max_tokens_per_batch": 40},
    }.items():
        torch.manual_seed(0)
        model = make_model(arch, tok, num_labels=2)
        trainer = RewardTrainer(
            model, config(tmp_path, gate="both", **kw), train_dataset=Dataset.from_list(data), processing_class=tok
        )
        with torch.no_grad():  # a gate that is not uniform yet
            gate_of(trainer.model).gate_weight.normal_(0, 0.5, generator=torch.Generator().manual_seed(1))
        losses[name] = first_batch_loss(trainer, 6, micro_batches=name == "micro-batches")
    assert losses["fast"] == pytest.approx(losses["padded"], abs=1e-5)
    assert losses["micro-batches"] == pytest.approx(losses["padded"], abs=1e-5)


def trained(tmp_path, arch="qwen3", **kw):
    tok = make_tokenizer(arch)
    trainer = RewardTrainer(
        make_model(arch, tok, num_labels=2),
        args=config(tmp_path, **{"max_steps": 30, "learning_rate": 1e-2, "eval_strategy": "no", **kw}),
        train_dataset=Dataset.from_list(rows(32)),
        eval_dataset=Dataset.from_list(rows(16)),
        processing_class=tok,
    )
    trainer.train()
    return trainer, tok


def test_the_gate_learns_each_prompts_objective_and_evaluation_reports_it(tmp_path):
    trainer, _ = trained(tmp_path)
    assert has_gate(trainer.model) and isinstance(trainer.model.score, GatedHeads)
    metrics = trainer.evaluate()
    assert metrics["eval_gate_accuracy"] == 1.0
    assert metrics["eval_gate_accuracy_helpful"] == 1.0 and metrics["eval_gate_accuracy_harmless"] == 1.0
    assert metrics["eval_accuracy"] == 1.0  # the combined reward, on both objectives' pairs
    assert 0 <= metrics["eval_accuracy_helpful"] <= 1 and metrics["eval_num_pairs_harmless"] == 8


def test_a_saved_gated_model_loads_plainly_and_scores_the_gates_combination(tmp_path):
    from rewardlab import RewardFunction, RewardModel

    trainer, tok = trained(tmp_path, max_steps=3)
    path = str(tmp_path / "saved")
    trainer.save_model(path)
    assert json.loads((tmp_path / "saved" / "config.json").read_text())["rewardlab_gate"] is True

    plain = AutoModelForSequenceClassification.from_pretrained(path)  # the K heads, the gate ignored
    assert plain.config.num_labels == 2 and isinstance(plain.score, torch.nn.Linear)
    prompts, completions = ["please help with python code 1 ?", "make a prank 2 ?"], [" sure here 1", " sorry no 2"]
    ids = [tok(p + c)["input_ids"] + [tok.eos_token_id] for p, c in zip(prompts, completions, strict=True)]
    prompt_ids = [tok(p)["input_ids"] for p in prompts]
    with torch.no_grad():
        heads = torch.cat([plain(torch.tensor([i])).logits for i in ids])
        hidden = [plain.model(torch.tensor([p])).last_hidden_state[0, -1] for p in prompt_ids]
    saved = trainer.model.score
    gate = torch.stack([torch.softmax(saved.gate_weight @ h + saved.gate_bias, -1) for h in hidden]).detach()
    expected = (gate * heads).sum(-1).tolist()

    model = RewardModel.from_pretrained(path, device="cpu")
    assert model.objectives == ["harmless", "helpful"] and model.uses_gate
    np.testing.assert_allclose(model.score(prompts, completions), expected, atol=1e-5)
    np.testing.assert_allclose(RewardFunction(path)(prompts, completions), expected, atol=1e-5)
    helpful = RewardModel.from_pretrained(path, objective="helpful", device="cpu").score(prompts, completions)
    np.testing.assert_allclose(helpful, heads[:, 1].tolist(), atol=1e-5)
    fixed = RewardModel.from_pretrained(path, weights="helpful=0.5,harmless=0.5", device="cpu")
    np.testing.assert_allclose(fixed.score(prompts, completions), heads.mean(1).tolist(), atol=1e-5)

    pairs = model.score_pairs([" sure here 1"], [" sorry no 1"], prompts=[prompts[0]])
    assert len(pairs.gate_weights[0]) == 2 and sum(pairs.gate_weights[0]) == pytest.approx(1.0)
    chosen = np.array(pairs.objective_rewards_chosen[0]) @ np.array(pairs.gate_weights[0])
    assert pairs.rewards_chosen[0] == pytest.approx(chosen, abs=1e-6)
    with pytest.raises(RewardlabError, match="a plain text has none"):
        model.score_texts(["make a prank ? sorry"])


def test_rewardlab_score_and_serve_give_the_combined_reward_by_default(tmp_path, capsys):
    from fastapi.testclient import TestClient

    from rewardlab import RewardModel
    from rewardlab.cli import main
    from rewardlab.cli.common import load_reward_model
    from rewardlab.cli.serve import parse_serve_args
    from rewardlab.serve import create_app

    trainer, _ = trained(tmp_path, max_steps=2)
    path = str(tmp_path / "saved")
    trainer.save_model(path)
    prompts, completions = ["please help with python code 1 ?", "make a prank 2 ?"], [" sure here 1", " sorry no 2"]
    expected = RewardModel.from_pretrained(path, device="cpu").score(prompts, completions)
    settings, args = parse_serve_args(["--model", path, "--device", "cpu"])
    with TestClient(create_app(load_reward_model(args.model, args), settings)) as client:
        response = client.post("/score", json={"prompts": prompts, "completions": completions})
    assert response.json()["rewards"] == pytest.approx(expected, abs=1e-6)

    data = tmp_path / "pairs.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows(4)))
    assert main(["score", "--model", path, "--dataset", str(data), "--output", str(tmp_path / "o.jsonl")]) == 0
    scored = [json.loads(line) for line in (tmp_path / "o.jsonl").read_text().splitlines()]
    direct = RewardModel.from_pretrained(path, device="cpu").score_pair_rows(rows(4))
    assert [s["reward_chosen"] for s in scored] == pytest.approx(direct.rewards_chosen, abs=1e-6)


def test_a_lora_adapter_keeps_its_gate(tmp_path):

    from rewardlab import RewardModel

    trainer = lora_trained(tmp_path, rows(16))
    assert gate_of(trainer.model).gate_weight.abs().sum() > 0  # trained and saved with the adapter's head
    prompts, completions = ["make a prank 1 ?"], [" sorry no 1"]
    live = RewardModel.from_trainer(trainer).score(prompts, completions)
    trainer.save_model(str(tmp_path / "adapter"))
    loaded = RewardModel.from_pretrained(str(tmp_path / "adapter"), device="cpu")
    assert loaded.uses_gate
    np.testing.assert_allclose(loaded.score(prompts, completions), live, atol=1e-5)


def test_gate_none_trains_heads_only_and_a_bad_gate_is_named(tmp_path):
    trainer, _ = trained(tmp_path, max_steps=1, gate="none")
    assert not has_gate(trainer.model)
    with pytest.raises(ValueError, match="gate='sometimes' is not one of labels, preference, both, none"):
        RewardConfig("out", gate="sometimes", report_to=[])


def test_export_fixes_the_weights_of_a_gated_model(tmp_path, capsys):
    from rewardlab import RewardModel
    from rewardlab.cli import main

    trainer, _ = trained(tmp_path, max_steps=2)
    path = str(tmp_path / "saved")
    trainer.save_model(path)
    out = str(tmp_path / "exported")
    assert main(["export", "--model", path, "--output_dir", out, "--objective", "helpful"]) == 0
    assert "rewardlab_gate" not in json.loads((tmp_path / "exported" / "config.json").read_text())
    record = json.loads((tmp_path / "exported" / "rewardlab_run.json").read_text())["args"]
    assert "gate" not in record and "objectives" not in record
    prompts, completions = ["make a prank 2 ?"], [" sorry no 2"]
    helpful = RewardModel.from_pretrained(path, objective="helpful", device="cpu").score(prompts, completions)
    exported = RewardModel.from_pretrained(out, device="cpu").score(prompts, completions)
    np.testing.assert_allclose(exported, helpful, atol=1e-5)


def test_rewardlab_eval_reports_each_objectives_head_the_combined_reward_and_the_gate(tmp_path):
    from rewardlab.cli import main

    trainer, _ = trained(tmp_path)
    path = str(tmp_path / "saved")
    trainer.save_model(path)
    data = tmp_path / "pairs.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows(12)))
    out = tmp_path / "report"
    assert main(["eval", "--model", path, "--dataset", str(data), "--output_dir", str(out), "--n_bootstrap", "20"]) == 0
    report = json.loads((out / "report.json").read_text())
    metrics = next(iter(next(iter(report["results"].values())).values()))
    assert metrics["objectives"]["gate_accuracy"] == 1.0
    for name in ("helpful", "harmless"):
        entry = metrics["objectives"]["per_objective"][name]
        assert entry["pairs"] == 6 and entry["gate_accuracy"] == 1.0
        assert 0 <= entry["own_head"]["value"] <= 1 and entry["baselines"]["best"] in (
            "longer_wins",
            "shorter_wins",
            "chance",
        )
        assert metrics["categories"][name]["count"] == 6  # the combined reward on the objective's pairs
    html = (out / "report.html").read_text()
    assert "gate accuracy" in html and "helpful: own head accuracy" in html and "harmless: best content-blind" in html


def test_an_encoders_gate_reads_at_most_gate_prompt_tokens_and_scores_as_it_trained(tmp_path):
    from rewardlab import RewardModel

    sequences, _ = add_prompts([[101, 5, 6, 7, 8, 9, 10], [101, 5, 6, 7, 8, 11]], [[0, 1]], max_tokens=3)
    assert sequences[2] == [101, 7, 8]  # [CLS] and the prompt's last tokens

    trainer, _ = trained(tmp_path, arch="bert", max_steps=3, gate_prompt_tokens=4)
    assert trainer.data_collator.max_prompt_tokens == 4
    prompts, completions = ["please help with python code 1 ?", "make a prank 2 ?"], [" sure here 1", " sorry no 2"]
    live = RewardModel.from_trainer(trainer).score(prompts, completions)
    trainer.save_model(str(tmp_path / "saved"))
    loaded = RewardModel.from_pretrained(str(tmp_path / "saved"), device="cpu")
    np.testing.assert_allclose(loaded.score(prompts, completions), live, atol=1e-5)
    with pytest.raises(RewardlabError, match="caps the prompt an encoder's gate reads"):
        trained(tmp_path, max_steps=1, gate_prompt_tokens=4)  # a causal model reads its prompts nearly free


def test_the_gate_trains_at_its_own_learning_rate(tmp_path):
    trainer, _ = trained(tmp_path, max_steps=1, gate_learning_rate=0.5, head_learning_rate=0.25)
    gate = gate_of(trainer.model)
    rates = {lr for group in trainer.optimizer.param_groups for lr in [group["initial_lr"]] if group["params"]}
    assert {0.5, 0.25} <= rates
    by_param = {id(p): g["initial_lr"] for g in trainer.optimizer.param_groups for p in g["params"]}
    assert by_param[id(gate.gate_weight)] == 0.5 and by_param[id(gate.weight)] == 0.25


def test_the_model_card_names_the_objectives_and_the_gate(tmp_path):
    trainer, _ = trained(tmp_path, max_steps=1)
    trainer.save_model(str(tmp_path / "saved"))
    card = (tmp_path / "saved" / "README.md").read_text()
    assert "a head per objective (harmless, helpful)" in card and "A prompt gate" in card and "(`num_labels=2`)" in card


def test_a_completions_prompt_is_what_survives_truncation():
    from rewardlab.data.prepare_item import ItemRules, prepare_completion
    from rewardlab.data.truncation import OK, PROMPT_TRUNCATED, RESPONSE_TRUNCATED

    tok = make_tokenizer("llama")  # a BOS token leads every sequence
    prompt, completion = "make a prank 1 2 3 ?", " sorry no"

    def prepared(max_length=None):
        return prepare_completion(prompt, completion, ItemRules(tok, tok.eos_token_id, max_length))

    full = prepared()
    ids = full.sequences[0]
    assert full.status == OK and ids[: full.prompt_tokens] == tok(prompt)["input_ids"]
    cut = prepared(len(ids) - 2)  # the oldest prompt tokens go, the response stays whole
    assert cut.status == PROMPT_TRUNCATED and cut.prompt_tokens == full.prompt_tokens - 2
    short = prepared(3)  # the response is cut too: only BOS is left of the prompt
    assert short.status == RESPONSE_TRUNCATED and short.prompt_tokens == 1
