"""One flag vocabulary across the commands: a concept has one flag name, booleans take one syntax, dashes work
everywhere, renamed flags still work (saying their new name), and every help shows defaults and required flags."""

from __future__ import annotations

import argparse
import logging
from dataclasses import fields

import pytest

from rewardlab.cli import COMMANDS, build_command_parser
from rewardlab.cli.parser import BooleanFlag, UsageError
from rewardlab.cli.train import build_parser, parse_train_args

# concept -> its flag, and the names it must not have in any command (old names, and other tools' names).
CONCEPTS = {
    "the model": ("--model", ["--model_path", "--reward_model"]),
    "the data": ("--dataset", ["--input", "--data", "--dataset_path"]),
    "where a model or report is written": ("--output_dir", ["--out_dir", "--save_dir"]),
    "the token budget of one forward pass": ("--max_tokens_per_batch", ["--max_batch_tokens"]),
    "pairs per training step": ("--per_device_train_batch_size", ["--batch_size", "--train_batch_size"]),
    "passes over the data": ("--num_train_epochs", ["--epochs"]),
    "longest sequence in tokens": ("--max_length", ["--max_len", "--max_seq_length"]),
    "rows that fail validation": ("--skip_invalid_rows", ["--skip_invalid", "--skip_bad_rows"]),
}
# Which commands have which concept's flag.
HAS = {
    "--model": ["train", "eval", "score", "serve", "export"],
    "--dataset": ["train", "eval", "score"],
    "--output_dir": ["train", "demo", "eval", "export"],
    "--max_tokens_per_batch": ["train", "eval", "score", "serve"],
    "--per_device_train_batch_size": ["train", "demo"],
    "--num_train_epochs": ["train", "demo"],
    "--max_length": ["train", "demo", "eval", "score", "serve"],
    "--skip_invalid_rows": ["train", "eval", "score"],
}


@pytest.fixture(scope="module")
def parsers() -> dict[str, argparse.ArgumentParser]:
    return {name: build_command_parser(name) for name in COMMANDS}


def visible_flags(parser: argparse.ArgumentParser) -> set[str]:
    return {s for a in parser._actions if a.help != argparse.SUPPRESS for s in a.option_strings}


def all_flags(parser: argparse.ArgumentParser) -> set[str]:
    return set(parser._option_string_actions)


@pytest.mark.parametrize("concept", CONCEPTS)
def test_a_concept_has_one_flag_name_in_every_command(parsers, concept):
    flag, other_names = CONCEPTS[concept]
    for command, parser in parsers.items():
        assert (flag in all_flags(parser)) == (command in HAS[flag]), (command, flag)
        assert not set(other_names) & visible_flags(parser), (command, other_names)


def test_booleans_take_one_syntax_everywhere(parsers):
    for command, parser in parsers.items():
        for action in parser._actions:
            if action.option_strings and action.dest not in ("help", "version", "help_all"):
                kind = type(action).__name__
                assert kind not in ("_StoreTrueAction", "_StoreFalseAction"), (command, action.option_strings)
                if isinstance(action, BooleanFlag):
                    assert f"--no_{action.option_strings[0][2:]}" in action.option_strings


@pytest.mark.parametrize("command", ["train", "eval", "score"])
def test_every_boolean_form_parses(parsers, command, tmp_path):
    parser = parsers[command]
    required = {
        "train": ["--model", "m", "--dataset", "d.jsonl"],
        "eval": ["--model", "m", "--dataset", "d.jsonl"],
        "score": ["--model", "m", "--dataset", "d.jsonl", "--output", "o.jsonl"],
    }[command]
    for given, expected in (
        ([], False),
        (["--skip_invalid_rows"], True),
        (["--skip_invalid_rows", "true"], True),
        (["--skip_invalid_rows=false"], False),
        (["--skip-invalid-rows", "yes"], True),
        (["--skip_invalid_rows", "--no_skip_invalid_rows"], False),
        (["--no-skip-invalid-rows"], False),
    ):
        namespace, _ = parser.parse_known_args(required + given)
        assert namespace.skip_invalid_rows is expected, given
    with pytest.raises(UsageError, match="expected true or false"):
        parser.parse_known_args(required + ["--skip_invalid_rows", "maybe"])
    with pytest.raises(UsageError, match="takes no value"):
        parser.parse_known_args(required + ["--no_skip_invalid_rows=true"])


def test_an_unset_optional_boolean_stays_unset():
    *_, config = parse_train_args(["--model", "m", "--dataset", "d.jsonl"])
    assert config.share_prompt is None
    *_, config = parse_train_args(["--model", "m", "--dataset", "d.jsonl", "--no_share_prompt"])
    assert config.share_prompt is False


def test_dashes_work_everywhere_and_help_spells_flags_with_underscores(parsers):
    for command, parser in parsers.items():
        assert not [s for s in all_flags(parser) if "-" in s.lstrip("-")], command
    namespace, _ = parsers["eval"].parse_known_args(["--model", "m", "--dataset", "d", "--output-dir", "here"])
    assert namespace.output_dir == "here"
    script, model, config = parse_train_args(["--model", "m", "--dataset-name", "d.jsonl", "--learning-rate", "3e-5"])
    assert (script.dataset_name, config.learning_rate) == ("d.jsonl", 3e-5)


@pytest.mark.parametrize(
    ("command", "old", "new", "argv"),
    [
        ("score", "--input", "dataset", ["--model", "m", "--output", "o.jsonl"]),
        ("export", "--output", "output_dir", ["--model", "m", "--objective", "a"]),
        ("demo", "--batch_size", "per_device_train_batch_size", []),
        ("demo", "--epochs", "num_train_epochs", []),
        ("serve", "--max_batch_tokens", "max_tokens_per_batch", ["--model", "m"]),
    ],
)
def test_a_renamed_flag_still_works_and_says_its_new_name(parsers, caplog, command, old, new, argv):
    with caplog.at_level(logging.WARNING, logger="rewardlab"):
        namespace, _ = parsers[command].parse_known_args(argv + [old, "7"])
    assert str(getattr(namespace, new)) in ("7", "7.0")
    assert f"{old} is deprecated: use --{new}" in caplog.text
    assert old not in parsers[command].format_help().replace(f"--{new}", "")


def test_trl_flag_names_work_in_train_and_in_its_config_file(tmp_path):
    script, model, _ = parse_train_args(["--model_name_or_path", "m", "--dataset_name", "d.jsonl"])
    assert (model.model_name_or_path, script.dataset_name) == ("m", "d.jsonl")
    config = tmp_path / "run.yaml"
    config.write_text("model: m2\ndataset: d2.jsonl\n")
    script, model, _ = parse_train_args(["--config", str(config)])
    assert (model.model_name_or_path, script.dataset_name) == ("m2", "d2.jsonl")


def test_every_help_shows_defaults_and_marks_required_flags(parsers):
    for command, parser in parsers.items():
        text = parser.format_help()
        assert "(default: None)" not in text and "%%" not in text, command
        formatter = parser._get_formatter()
        for action in parser._actions:
            if action.required:
                assert "(required)" in formatter._get_help_string(action), (command, action.dest)

    def help_of(command: str) -> str:
        return " ".join(parsers[command].format_help().split())

    assert "(default: 1000)" in help_of("eval") and "95% intervals" in help_of("eval")
    assert "(default: false)" in help_of("score")
    assert "(default: 8192)" in help_of("serve")


def test_train_help_is_grouped_with_its_own_options_first(parsers):
    text = parsers["train"].format_help()
    titles = [g.title for g in parsers["train"]._action_groups if g._group_actions]
    assert titles[0] == "options"
    rewardlab, trl, training = (
        titles.index("rewardlab's options (RewardConfig)"),
        titles.index("TRL's RewardConfig options"),
        next(k for k, t in enumerate(titles) if t.startswith("training")),
    )
    assert rewardlab < trl < training
    first = parsers["train"]._optionals._group_actions
    assert [a.option_strings[0] for a in first[:5]] == ["-h", "--help_all", "--config", "--model", "--dataset"]
    full = build_parser(help_all=True).format_help()
    assert "--adam_beta1" in full and "--adam_beta1" not in text and "--learning_rate" in text
    assert len(text.splitlines()) < len(full.splitlines())
    # a flag listed only by --help_all still works
    *_, config = parse_train_args(["--model", "m", "--dataset", "d.jsonl", "--adam_beta1", "0.8"])
    assert config.adam_beta1 == 0.8


def test_trl_reward_config_fields_are_trls():
    trl = pytest.importorskip("trl")
    from transformers import TrainingArguments

    from rewardlab.config import TRL_REWARD_CONFIG_FIELDS

    training = {f.name for f in fields(TrainingArguments)}
    assert tuple(f.name for f in fields(trl.RewardConfig) if f.name not in training) == TRL_REWARD_CONFIG_FIELDS
