"""The `rewardlab` command: flag and YAML parsing, one-line errors, and end-to-end training on tiny models."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from rewardlab.cli import main
from rewardlab.cli.train import parse_train_args
from rewardlab.errors import RewardlabError
from rewardlab.train.arguments import lora_config, quantization_config

REQUIRED = ["--model_name_or_path", "org/model", "--dataset_name", "pairs.jsonl"]


def write_yaml(tmp_path, text: str) -> str:
    path = tmp_path / "config.yaml"
    path.write_text(text)
    return str(path)


def write_pairs(path, n: int = 16) -> str:
    with open(path, "w", encoding="utf-8") as f:
        for i in range(n):
            # Distinguishable pairs: the chosen answer is always "blue", so a model can learn them.
            f.write(json.dumps({"prompt": f"what color is the sky {i}?", "chosen": " blue", "rejected": " green"}))
            f.write("\n")
    return str(path)


def run_main(capsys, argv):
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def assert_one_line_error(code: int, err: str) -> str:
    assert code == 2
    assert "Traceback" not in err
    # Progress bars and log lines may come before it; the error itself is exactly one line, the last.
    lines = [line for line in err.splitlines() if line.strip()]
    errors = [line for line in lines if "error" in line.lower()]
    assert len(errors) == 1, err
    assert lines[-1] == errors[0] and errors[0].startswith("rewardlab: error: ")
    return errors[0]


# --- parsing ----------------------------------------------------------------------------------------------------


def test_defaults():
    script, model, training = parse_train_args(REQUIRED)
    assert script.dataset_train_split == "train" and script.dataset_test_split == "test"
    assert script.eval_fraction == 0.0 and script.streaming is False
    assert model.dtype == "float32" and model.use_peft is False
    assert training.output_dir == "model-Reward"  # TRL's <model-name>-Reward
    assert training.learning_rate == 1e-4  # RewardConfig's (TRL's) default, not TrainingArguments'


def test_any_training_arguments_flag_works():
    argv = REQUIRED + ["--gradient_accumulation_steps", "3", "--lr_scheduler_type", "cosine", "--max_length", "64"]
    argv += ["--overlength_policy", "drop", "--skip_invalid_rows", "--output_dir", "out"]
    _, _, training = parse_train_args(argv)
    assert training.gradient_accumulation_steps == 3
    assert training.lr_scheduler_type == "cosine"
    assert (training.max_length, training.overlength_policy, training.skip_invalid_rows) == (64, "drop", True)
    assert training.output_dir == "out"


def test_output_dir_default_from_a_local_path():
    _, _, training = parse_train_args(["--model_name_or_path", "/x/y/tiny-llama/", "--dataset_name", "d.jsonl"])
    assert training.output_dir == "tiny-llama-Reward"


def test_yaml_values_are_defaults_and_flags_override_them(tmp_path):
    config = write_yaml(
        tmp_path,
        "model_name_or_path: org/model\n"
        "dataset_name: pairs.jsonl\n"
        "learning_rate: 3e-5\n"  # YAML 1.1 reads this as a string; argparse converts it like a flag
        "per_device_train_batch_size: 4\n"
        "use_peft: true\n"
        "lora_target_modules: [q_proj, v_proj]\n"
        "max_length: null\n"
        "model_init_kwargs: {attn_implementation: eager}\n"
        "disable_dropout: false\n"
        "output_dir: from-yaml\n",
    )
    script, model, training = parse_train_args(["--config", config, "--learning_rate", "0.001", "--lora_r", "4"])
    assert training.learning_rate == 0.001  # command line wins
    assert training.per_device_train_batch_size == 4  # from the file
    assert model.use_peft is True and model.lora_r == 4
    assert model.lora_target_modules == ["q_proj", "v_proj"]
    assert training.max_length is None
    assert training.model_init_kwargs == {"attn_implementation": "eager"}
    assert training.disable_dropout is False
    assert training.output_dir == "from-yaml"
    assert script.dataset_name == "pairs.jsonl"


def test_yaml_with_equals_form_and_list_override(tmp_path):
    config = write_yaml(tmp_path, "lora_target_modules: [q_proj, v_proj]\n")
    _, model, _ = parse_train_args([f"--config={config}", *REQUIRED, "--lora_target_modules", "k_proj"])
    assert model.lora_target_modules == ["k_proj"]


def test_dataset_streaming_alias():
    script, _, _ = parse_train_args(REQUIRED + ["--dataset_streaming"])
    assert script.streaming is True


def test_lora_config_is_for_sequence_classification():
    _, model, _ = parse_train_args(REQUIRED + ["--use_peft", "--lora_r", "4", "--lora_target_modules", "all-linear"])
    config = lora_config(model)
    assert str(config.task_type) in ("SEQ_CLS", "TaskType.SEQ_CLS")
    assert config.r == 4 and config.target_modules == "all-linear"
    _, plain, _ = parse_train_args(REQUIRED)
    assert lora_config(plain) is None


def test_quantization_needs_peft():
    _, model, _ = parse_train_args(REQUIRED + ["--load_in_4bit"])
    with pytest.raises(RewardlabError, match="--use_peft"):
        quantization_config(model)


# --- one-line errors --------------------------------------------------------------------------------------------


def test_unknown_flag(capsys):
    code, _, err = run_main(capsys, ["train", *REQUIRED, "--learning_rat", "1e-5"])
    assert "--learning_rat" in assert_one_line_error(code, err)


def test_bad_flag_value(capsys):
    code, _, err = run_main(capsys, ["train", *REQUIRED, "--learning_rate", "fast"])
    assert "learning_rate" in assert_one_line_error(code, err)


def test_bad_choice(capsys):
    code, _, err = run_main(capsys, ["train", *REQUIRED, "--overlength_policy", "shorten"])
    assert "overlength_policy" in assert_one_line_error(code, err)


def test_unknown_yaml_key(tmp_path, capsys):
    config = write_yaml(tmp_path, "learning_rate: 1.0e-5\nbatch_size: 8\n")
    code, _, err = run_main(capsys, ["train", "--config", config, *REQUIRED])
    line = assert_one_line_error(code, err)
    assert "'batch_size'" in line and "config.yaml" in line


def test_bad_yaml_value_blames_the_file(tmp_path, capsys):
    config = write_yaml(tmp_path, "num_train_epochs: many\n")
    code, _, err = run_main(capsys, ["train", "--config", config, *REQUIRED])
    line = assert_one_line_error(code, err)
    assert "config.yaml" in line and "num_train_epochs" in line


def test_yaml_that_is_not_a_mapping(tmp_path, capsys):
    config = write_yaml(tmp_path, "- learning_rate\n")
    code, _, err = run_main(capsys, ["train", "--config", config, *REQUIRED])
    assert "mapping" in assert_one_line_error(code, err)


def test_missing_config_file(tmp_path, capsys):
    code, _, err = run_main(capsys, ["train", "--config", str(tmp_path / "none.yaml"), *REQUIRED])
    assert "none.yaml" in assert_one_line_error(code, err)


def test_missing_required_flags(capsys):
    code, _, err = run_main(capsys, ["train", "--dataset_name", "d.jsonl"])
    assert "--model is required" in assert_one_line_error(code, err)


def test_invalid_training_arguments_combination(capsys):
    # TrainingArguments' own __post_init__ check, reported as one line too.
    code, _, err = run_main(capsys, ["train", *REQUIRED, "--load_best_model_at_end", "--eval_strategy", "no"])
    assert_one_line_error(code, err)


def test_unknown_command(capsys):
    code, _, err = run_main(capsys, ["trian"])
    assert "trian" in assert_one_line_error(code, err)


def test_help_exits_zero(capsys):
    code, out, _ = run_main(capsys, ["train", "--help"])
    assert code == 0
    assert "--dataset_name" in out and "--per_device_train_batch_size" in out and "--config" in out


def test_wrong_dataset_path(tiny_dirs, tmp_path, capsys):
    argv = ["train", "--model_name_or_path", tiny_dirs["bert"], "--dataset_name", str(tmp_path / "missing.jsonl")]
    code, _, err = run_main(capsys, argv + ["--output_dir", str(tmp_path / "out")])
    assert "missing.jsonl" in assert_one_line_error(code, err)


def test_wrong_model_path(tmp_path, capsys):
    data = write_pairs(tmp_path / "pairs.jsonl")
    argv = ["train", "--model_name_or_path", str(tmp_path / "no-model"), "--dataset_name", data]
    code, _, err = run_main(capsys, argv + ["--output_dir", str(tmp_path / "out")])
    assert "no-model" in assert_one_line_error(code, err)


def test_eval_strategy_without_eval_data(tiny_dirs, tmp_path, capsys):
    data = write_pairs(tmp_path / "pairs.jsonl")
    argv = ["train", "--model_name_or_path", tiny_dirs["bert"], "--dataset_name", data, "--eval_strategy", "steps"]
    code, _, err = run_main(capsys, argv + ["--output_dir", str(tmp_path / "out")])
    assert "--eval_fraction" in assert_one_line_error(code, err)


def test_python_dash_m_entry_point():
    result = subprocess.run(
        [sys.executable, "-m", "rewardlab", "--version"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0 and "rewardlab" in result.stdout


# --- end to end -------------------------------------------------------------------------------------------------


def tiny_train_argv(model_dir: str, data: str, output_dir: str) -> list[str]:
    return [
        "train",
        "--model_name_or_path",
        model_dir,
        "--dataset_name",
        data,
        "--output_dir",
        output_dir,
        "--max_steps",
        "2",
        "--per_device_train_batch_size",
        "4",
        "--eval_fraction",
        "0.25",
        "--learning_rate",
        "1e-3",
        "--save_strategy",
        "no",
        "--report_to",
        "none",
        "--dataloader_pin_memory",
        "false",
    ]


def test_train_end_to_end(tiny_dirs, tmp_path, capsys):
    from transformers import AutoModelForSequenceClassification

    data = write_pairs(tmp_path / "pairs.jsonl")
    out = str(tmp_path / "out")
    code, stdout, err = run_main(capsys, tiny_train_argv(tiny_dirs["llama"], data, out))
    assert code == 0, err
    assert "eval accuracy" in stdout and out in stdout
    assert os.path.isfile(os.path.join(out, "rewardlab_run.json"))
    with open(os.path.join(out, "rewardlab_run.json"), encoding="utf-8") as f:
        record = json.load(f)
    assert record["data"]["train"]["rows_in"] == 12 and record["data"]["eval"]["rows_in"] == 4
    model = AutoModelForSequenceClassification.from_pretrained(out)
    assert model.config.num_labels == 1


def test_train_end_to_end_with_lora(tiny_dirs, tmp_path, capsys):
    import torch
    from transformers import AutoModelForSequenceClassification

    from rewardlab.model.load import is_adapter_dir, load_trained_model

    data = write_pairs(tmp_path / "pairs.jsonl")
    out = str(tmp_path / "lora")
    argv = tiny_train_argv(tiny_dirs["qwen3"], data, out) + ["--use_peft", "--lora_r", "4", "--lora_alpha", "8"]
    code, stdout, err = run_main(capsys, argv)
    assert code == 0, err
    assert is_adapter_dir(out)
    assert os.path.isfile(os.path.join(out, "rewardlab_run.json"))
    model, tokenizer = load_trained_model(out)
    # Plain transformers loads the adapter directory too (base model + adapter + trained score head).
    plain = AutoModelForSequenceClassification.from_pretrained(out).eval()
    batch = tokenizer(["what color is the sky 1? blue"], return_tensors="pt")
    with torch.no_grad():
        assert torch.allclose(model(**batch).logits, plain(**batch).logits)


def test_train_with_yaml_config(tiny_dirs, tmp_path, capsys):
    data = write_pairs(tmp_path / "pairs.jsonl")
    out = tmp_path / "yaml-run"
    config = write_yaml(
        tmp_path,
        f"model_name_or_path: {tiny_dirs['bert']}\ndataset_name: {data}\noutput_dir: {out}\n"
        "max_steps: 1\nper_device_train_batch_size: 4\nreport_to: none\nsave_strategy: 'no'\n",
    )
    code, stdout, err = run_main(capsys, ["train", "--config", config, "--dataloader_pin_memory", "false"])
    assert code == 0, err
    assert "no eval set" in stdout
    assert (out / "rewardlab_run.json").is_file()


def test_train_with_length_debias_end_to_end(tiny_dirs, tmp_path, capsys):
    """`--length_debias odin`: the run logs each head's correlation with length, records the option, and the
    report after training gives the length statistics of the saved (quality) reward and of the length head."""
    data = write_pairs(tmp_path / "pairs.jsonl")
    out = str(tmp_path / "out")
    argv = tiny_train_argv(tiny_dirs["qwen3"], data, out) + ["--length_debias", "odin"]
    argv += ["--length_head_coefficient", "0.5", "--logging_steps", "1"]
    code, stdout, err = run_main(capsys, argv)
    assert code == 0, err
    record = json.loads(Path(out, "rewardlab_run.json").read_text())
    assert record["args"]["length_debias"] == "odin" and record["args"]["length_head_coefficient"] == 0.5
    logged = [e for e in record["log_history"] if "loss" in e and "eval_loss" not in e]
    assert logged and {"length_correlation", "length_head_correlation"} <= set(logged[-1])
    results = json.loads(Path(out, "report.json").read_text())["results"]["trained model"]["evaluation split"]
    assert set(results["length_head"]) >= {"pearson", "spearman", "chosen_shorter"} and results["length_bias"]
    assert "Trained with `length_debias=odin`" in Path(out, "README.md").read_text()


def test_train_rankings_with_an_ensemble_end_to_end(tiny_dirs, tmp_path, capsys):
    """RM-Bench's own layout (lists of chosen and of rejected responses) trains through the CLI as rankings; the
    report and `rewardlab eval` read the same file as all its comparisons, with the ensemble's uncertainty."""
    from rewardlab.score.reward_model import RewardModel

    data = tmp_path / "tiers.jsonl"
    with open(data, "w", encoding="utf-8") as f:
        for i in range(16):
            row = {
                "prompt": f"what color is the sky {i}?",
                "chosen": [" blue", " blue sky", " it is blue"],
                "rejected": [" green", " green sky", " it is green"],
            }
            f.write(json.dumps(row) + "\n")
    out = str(tmp_path / "out")
    argv = tiny_train_argv(tiny_dirs["llama"], str(data), out)
    argv += ["--ensemble_heads", "3", "--ensemble_bootstrap", "true", "--ranking_loss", "plackett_luce"]
    code, stdout, err = run_main(capsys, argv)
    assert code == 0, err
    assert "eval accuracy" in stdout and "on 36 held-out pairs" in stdout  # 4 rankings x 9 comparisons
    assert "top-1 accuracy" in stdout and "on 4 held-out rankings" in stdout
    record = json.loads(Path(out, "rewardlab_run.json").read_text())
    assert record["data"]["train"]["kind"] == "rankings" and record["data"]["train"]["comparisons_out"] == 12 * 9
    assert record["args"]["ranking_loss"] == "plackett_luce" and record["args"]["ensemble_heads"] == 3
    report = json.loads(Path(out, "report.json").read_text())
    results = report["results"]["trained model"]["evaluation split"]
    assert results["n_evaluated"] == 36 and set(results["ensemble"]) >= {"ensemble_std_auroc"}
    assert "ensemble: AUROC" in Path(out, "report.html").read_text()

    code, _, err = run_main(
        capsys,
        ["eval", "--model", out, "--dataset", str(data), "--output_dir", str(tmp_path / "eval"), "--n_bootstrap", "50"],
    )
    assert code == 0, err
    evaluated = json.loads(Path(tmp_path, "eval", "report.json").read_text())
    first = next(iter(evaluated["results"][out].values()))
    assert first["n_evaluated"] == 16 * 9
    scores = RewardModel.from_pretrained(out).score_pairs([" blue"], [" green"], prompts=["what color is the sky 0?"])
    assert scores.std_margin is not None


def test_a_trl_config_with_a_datasets_mixture_trains(tiny_dirs, tmp_path, capsys):
    first, second = write_pairs(tmp_path / "a.jsonl", 12), write_pairs(tmp_path / "b.jsonl", 8)
    out = tmp_path / "mixture-run"
    config = write_yaml(
        tmp_path,
        f"model_name_or_path: {tiny_dirs['bert']}\noutput_dir: {out}\nmax_steps: 1\nper_device_train_batch_size: 4\n"
        "report_to: none\nsave_strategy: 'no'\ntest_split_size: 0.25\n"
        f"datasets:\n  - path: {first}\n    fraction: 1\n  - path: {second}\n    columns: [prompt, chosen, rejected]\n"
        "    fraction: 1\n",
    )
    code, stdout, err = run_main(capsys, ["train", "--config", config, "--dataloader_pin_memory", "false"])
    assert code == 0, err
    record = json.loads((out / "rewardlab_run.json").read_text())
    # 8 + 8 rows (equal shares, the smaller set caps them), a quarter held out as the test split.
    assert record["data"]["train"]["rows_in"] == 12 and record["data"]["eval"]["rows_in"] == 4
    assert "eval accuracy" in stdout


def test_test_split_size_needs_a_mixture(capsys):
    code, _, err = run_main(capsys, ["train", *REQUIRED, "--test_split_size", "0.1"])
    assert "for --dataset use --eval_fraction" in assert_one_line_error(code, err)


def test_trl_model_flags_reach_lora_and_quantization():
    _, model_args, _ = parse_train_args(
        [*REQUIRED, "--use_peft", "--lora_target_parameters", "experts.gate_up_proj", "--load_in_4bit"]
        + ["--bnb_4bit_quant_storage", "bfloat16"]
    )
    assert lora_config(model_args).target_parameters == ["experts.gate_up_proj"]
    assert str(quantization_config(model_args).bnb_4bit_quant_storage) == "torch.bfloat16"


def test_ignore_bias_buffers_leaves_boolean_buffers_out_of_ddp():
    import torch

    from rewardlab.train.run import ignore_bool_buffers

    model = torch.nn.Linear(2, 2)
    model.register_buffer("mask", torch.ones(2, 2, dtype=torch.bool))
    model.register_buffer("scale", torch.ones(2))
    ignore_bool_buffers(model)
    assert model._ddp_params_and_buffers_to_ignore == ["mask"]
    script_args, _, _ = parse_train_args([*REQUIRED, "--ignore_bias_buffers"])
    assert script_args.ignore_bias_buffers


def test_the_env_section_of_a_trl_config_sets_environment_variables(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("REWARDLAB_TEST_VARIABLE", raising=False)
    config = write_yaml(tmp_path, "env:\n  REWARDLAB_TEST_VARIABLE: 7\nlearning_rate: 3.0e-5\n")
    _, _, training_args = parse_train_args([*REQUIRED, "--config", config])
    assert os.environ["REWARDLAB_TEST_VARIABLE"] == "7" and training_args.learning_rate == 3e-5
    monkeypatch.delenv("REWARDLAB_TEST_VARIABLE")
    bad = write_yaml(tmp_path, "env: [A, B]\n")
    code, _, err = run_main(capsys, ["train", *REQUIRED, "--config", bad])
    assert "env must map variable names to values" in assert_one_line_error(code, err)


def test_a_datasets_section_that_is_not_a_list(tmp_path, capsys):
    config = write_yaml(tmp_path, "model_name_or_path: org/model\ndatasets:\n  path: a.jsonl\n")
    code, _, err = run_main(capsys, ["train", "--config", config])
    assert "datasets must be a list of datasets" in assert_one_line_error(code, err)


def test_train_reads_a_third_party_layout_through_a_mapping(tiny_dirs, tmp_path, capsys):
    # AlpacaEval's layout: two outputs and a preference in [1, 2]; 1.5 is a tie, which the mapping skips and counts.
    rows = [
        {
            "instruction": f"q{i} colour?",
            "output_1": f"blue {i}",
            "output_2": f"red {i}",
            "preference": p,
            "dataset": "x",
        }
        for i, p in enumerate([1.0, 2.0, 1.5] * 6)
    ]
    data = tmp_path / "alpaca.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = str(tmp_path / "out")
    argv = [*tiny_train_argv(tiny_dirs["llama"], str(data), out), "--mapping", "alpaca-eval"]
    code, stdout, err = run_main(capsys, argv)
    assert code == 0, err
    assert "18 rows -> 12 pairs (skipped: 6 ties)" in err
    with open(os.path.join(out, "rewardlab_run.json"), encoding="utf-8") as f:
        record = json.load(f)
    assert record["data"]["train"]["rows_in"] + record["data"]["eval"]["rows_in"] == 12

    refused = run_main(capsys, [*tiny_train_argv(tiny_dirs["llama"], str(data), out), "--mapping", "hh-rlhf"])
    assert refused[0] != 0 and "chosen" in refused[2]
