"""Deep ensembles: separately trained reward models scored as one (`rewardlab.RewardEnsemble`)."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from test_scoring import train_and_save
from tiny import make_model, make_tokenizer

from rewardlab import RewardEnsemble, RewardFunction, RewardModel
from rewardlab.cli import main
from rewardlab.errors import RewardlabError
from rewardlab.metrics.intervals import uncertainty_gap
from rewardlab.metrics.pair_evaluation import json_safe
from rewardlab.metrics.uncertainty import auroc

TEXTS = ["the sky is blue", "what color is the sky ? green", "paris rome cold"]


@pytest.fixture(scope="module")
def members(tmp_path_factory) -> list[str]:
    """Two tiny llama reward models, each trained on its own bootstrap resample and seed, with eval statistics."""
    root = tmp_path_factory.mktemp("members")
    return [train_and_save("llama", root / f"m{k}", ensemble_bootstrap=True, seed=k)[0] for k in range(2)]


def test_rewards_are_the_mean_and_std_of_the_centred_members(members):
    ensemble = RewardEnsemble.from_pretrained(members, device="cpu")
    singles = [RewardModel.from_pretrained(path, device="cpu") for path in members]
    offsets = np.array([m.normalization["mean"] for m in singles])
    assert offsets[0] != offsets[1]

    per_member = np.array([m.score_texts(TEXTS) for m in singles]).T - offsets
    mean, std = ensemble.score_texts(TEXTS, return_std=True)
    np.testing.assert_allclose(mean, per_member.mean(1), atol=1e-6)
    np.testing.assert_allclose(std, per_member.std(1, ddof=1), atol=1e-6)
    assert ensemble.score_texts(TEXTS) == pytest.approx(mean)

    prompts, completions = ["the sky ?", "the sky ?"], [" blue", " green"]
    per_member = np.array([m.score(prompts, completions) for m in singles]).T - offsets
    mean, std = ensemble.score(prompts, completions, return_std=True)
    np.testing.assert_allclose(mean, per_member.mean(1), atol=1e-6)
    np.testing.assert_allclose(std, per_member.std(1, ddof=1), atol=1e-6)


def test_pairs_margins_and_probabilities(members):
    ensemble = RewardEnsemble.from_pretrained(members, device="cpu")
    singles = [
        RewardModel.from_pretrained(path, device="cpu").score_pairs(["a sky blue", "rome"], ["a sky green", "paris"])
        for path in members
    ]
    scores = ensemble.score_pairs(["a sky blue", "rome"], ["a sky green", "paris"])
    margins = np.array([np.subtract(s.rewards_chosen, s.rewards_rejected) for s in singles]).T
    # Centring moves both rewards of a pair alike: margins, and so their spread, are the members' own.
    np.testing.assert_allclose(np.subtract(scores.rewards_chosen, scores.rewards_rejected), margins.mean(1), atol=1e-6)
    np.testing.assert_allclose(scores.std_margin, margins.std(1, ddof=1), atol=1e-6)
    np.testing.assert_allclose(scores.prob_chosen, np.mean([s.prob_chosen for s in singles], axis=0), atol=1e-9)
    assert scores.chosen_tokens == singles[0].chosen_tokens
    assert all(s > 0 for s in scores.std_chosen + scores.std_rejected)


def test_an_offset_between_members_is_not_uncertainty():
    """Two members that differ only by a constant added to every reward (which Bradley-Terry cannot see) agree."""
    tok = make_tokenizer("bert")
    model = make_model("bert", tok)
    shifted = make_model("bert", tok)
    shifted.load_state_dict(model.state_dict())
    with torch.no_grad():
        shifted.classifier.bias += 5.0
    ensemble = RewardEnsemble(
        [
            RewardModel(model, tok, normalization={"mean": 0.0, "std": 1.0}),
            RewardModel(shifted, tok, normalization={"mean": 5.0, "std": 1.0}),
        ]
    )
    mean, std = ensemble.score_texts(TEXTS, return_std=True)
    np.testing.assert_allclose(std, 0.0, atol=1e-5)
    np.testing.assert_allclose(mean, RewardModel(model, tok).score_texts(TEXTS), atol=1e-5)
    raw = RewardEnsemble([RewardModel(model, tok), RewardModel(shifted, tok)], center=False)
    np.testing.assert_allclose(raw.score_texts(TEXTS, return_std=True)[1], 5.0 / np.sqrt(2), atol=1e-4)


def test_bad_ensembles_are_refused_with_the_reason(members):
    tok = make_tokenizer("llama")
    alone = RewardModel(make_model("llama", tok), tok)
    with pytest.raises(RewardlabError, match="at least 2"):
        RewardEnsemble([alone])
    with pytest.raises(RewardlabError, match="member 1 .*no saved mean reward"):
        RewardEnsemble([RewardModel.from_pretrained(members[0], device="cpu"), alone])
    with pytest.raises(RewardlabError, match="list of paths"):
        RewardEnsemble.from_pretrained(members[0])
    ensemble = RewardEnsemble.from_pretrained(members, device="cpu")
    with pytest.raises(RewardlabError, match="no reward statistics"):
        ensemble.normalize([1.0])
    with pytest.raises(RewardlabError, match="normalize=True"):
        RewardFunction(ensemble, normalize=True)


def test_reward_function_over_saved_members_is_conservative(members):
    prompts, completions = ["the sky ?", "the sky ?", "paris ?"], [" blue", " green", " rome"]
    mean, std = RewardEnsemble.from_pretrained(members, device="cpu").score(prompts, completions, return_std=True)
    conservative = RewardFunction(members, uncertainty_penalty=1.5, device="cpu")
    assert isinstance(conservative.reward_model, RewardEnsemble)
    assert conservative(prompts, completions) == pytest.approx([m - 1.5 * s for m, s in zip(mean, std, strict=True)])
    ensemble = RewardEnsemble.from_pretrained(members, device="cpu", normalization={"mean": 1.0, "std": 2.0})
    normalized = RewardFunction(ensemble, normalize=True, uncertainty_penalty=1.0)(prompts, completions)
    expected = [(m - 1.0) / 2.0 - s / 2.0 for m, s in zip(mean, std, strict=True)]
    assert normalized == pytest.approx(expected)


def test_eval_command_reports_the_ensembles_uncertainty(members, tmp_path, capsys):
    data = tmp_path / "pairs.jsonl"
    rows = [
        {"prompt": f"the sky {w} ?", "chosen": " it is blue", "rejected": f" green {w}"}
        for w in ["is", "city", "rome", "cold", "warm", "paris"]
    ]
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "report"
    argv = [
        "eval",
        "--ensemble",
        *members,
        "--dataset",
        str(data),
        "--output_dir",
        str(out),
        "--n_bootstrap",
        "50",
        "--device",
        "cpu",
    ]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "ensemble std of the margin: right" in printed
    report = json.loads(Path(out, "report.json").read_text())
    ((name, model),) = report["models"].items()
    assert name.startswith("ensemble of 2") and [m["source"] for m in model["members"]] == members
    (metrics,) = report["results"][name].values()
    scores = RewardEnsemble.from_pretrained(members, device="cpu").score_pair_rows(rows)
    wrong = np.array(scores.rewards_chosen) <= np.array(scores.rewards_rejected)
    assert metrics["accuracy"]["value"] == pytest.approx(1 - wrong.mean())
    gap = metrics["ensemble"]["std_wrong_minus_right"]
    expected = json_safe(uncertainty_gap(scores.std_margin, wrong, n_bootstrap=50, seed=0))
    assert gap["value"] == pytest.approx(expected["value"]) and gap["ci95"] == pytest.approx(expected["ci95"])
    margin = np.abs(np.subtract(scores.rewards_chosen, scores.rewards_rejected))
    assert metrics["ensemble"]["margin_auroc"] == pytest.approx(json_safe(auroc(-margin, wrong)))
    assert "member 1" in Path(out, "report.html").read_text()

    assert main(["eval", "--ensemble", members[0], "--dataset", str(data)]) == 2
    assert "--ensemble needs at least 2 models" in capsys.readouterr().err


def test_uncertainty_gap_by_hand():
    std, wrong = [1.0, 2.0, 3.0, 4.0, np.nan], [False, False, True, True, True]
    gap = uncertainty_gap(std, wrong, n_bootstrap=200, seed=1)
    assert gap["value"] == pytest.approx(3.5 - 1.5)
    low, high = gap["ci95"]
    assert low <= gap["value"] <= high and low >= 1.0 - 1e-9  # every resample's gap lies in [1, 3]
    assert gap == uncertainty_gap(std, wrong, n_bootstrap=200, seed=1)
    assert uncertainty_gap(std, wrong, n_bootstrap=0) == {"value": pytest.approx(2.0), "ci95": None}
    assert np.isnan(uncertainty_gap([1.0], [True], n_bootstrap=10)["value"])


def test_score_command_writes_the_ensembles_std_columns(members, tmp_path, capsys):
    pairs = [
        {"prompt": "the sky ?", "chosen": " blue", "rejected": " green"},
        {"prompt": "city ?", "chosen": " rome", "rejected": " paris"},
    ]
    (tmp_path / "pairs.jsonl").write_text("".join(json.dumps(r) + "\n" for r in pairs))
    (tmp_path / "texts.jsonl").write_text("".join(json.dumps({"text": t}) + "\n" for t in TEXTS))
    for name in ("pairs", "texts"):
        argv = [
            "score",
            "--model",
            *members,
            "--dataset",
            str(tmp_path / f"{name}.jsonl"),
            "--output",
            str(tmp_path / f"{name}-scored.jsonl"),
            "--device",
            "cpu",
        ]
        assert main(argv) == 0
    assert capsys.readouterr().out.count("; ") >= 2  # the inputs report of each member
    ensemble = RewardEnsemble.from_pretrained(members, device="cpu")
    read = [json.loads(line) for line in (tmp_path / "pairs-scored.jsonl").read_text().splitlines()]
    expected = ensemble.score_pair_rows(pairs)
    np.testing.assert_allclose([r["std_margin"] for r in read], expected.std_margin, atol=1e-6)
    np.testing.assert_allclose([r["reward_chosen"] for r in read], expected.rewards_chosen, atol=1e-6)
    read = [json.loads(line) for line in (tmp_path / "texts-scored.jsonl").read_text().splitlines()]
    mean, std = ensemble.score_texts(TEXTS, return_std=True)
    np.testing.assert_allclose([r["reward"] for r in read], mean, atol=1e-6)
    np.testing.assert_allclose([r["reward_std"] for r in read], std, atol=1e-6)


def test_server_serves_the_conservative_reward_and_the_stds(members):
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from rewardlab.cli.serve import parse_serve_args
    from rewardlab.serve import ServerSettings, create_app

    ensemble = RewardEnsemble.from_pretrained(members, device="cpu")
    mean, std = ensemble.score_texts(TEXTS, return_std=True)
    settings, _ = parse_serve_args(["--model", *members, "--uncertainty_penalty", "2"], {})
    assert settings.uncertainty_penalty == 2.0 and settings.model_name == ", ".join(members)
    with TestClient(create_app(ensemble, settings)) as client:
        body = client.post("/score", json={"texts": TEXTS}).json()
        assert body["rewards"] == pytest.approx([m - 2 * s for m, s in zip(mean, std, strict=True)], abs=1e-6)
        assert body["stds"] == pytest.approx(std, abs=1e-6)
        logs = client.post("/get_reward", json={"query": TEXTS}).json()["extra_logs"]
        assert logs["reward_std"] == pytest.approx(std, abs=1e-6)
        assert client.get("/health").json()["uncertainty_penalty"] == 2.0
    single = RewardModel.from_pretrained(members[0], device="cpu")
    with pytest.raises(RewardlabError, match="uncertainty_penalty needs an ensemble"):
        create_app(single, ServerSettings(uncertainty_penalty=1.0))
    with pytest.raises(RewardlabError, match="finite number >= 0"):
        ServerSettings(uncertainty_penalty=-1.0)
