"""`rewardlab train`: every RewardConfig / TrainingArguments field as a flag, plus the data and model flags of TRL's
reward script, optionally from a YAML file (`--config`, as `trl reward` takes one)."""

from __future__ import annotations

import argparse
import logging
import os
from collections.abc import Sequence
from dataclasses import fields
from pathlib import Path
from typing import Any

from transformers import TrainingArguments

from rewardlab.cli.common import versus_content_blind
from rewardlab.cli.parser import ArgumentParser, dataclass_parser
from rewardlab.config import TRL_REWARD_CONFIG_FIELDS, RewardConfig
from rewardlab.errors import UsageError
from rewardlab.eval.leaderboard import headline_of
from rewardlab.eval.trained import write_training_report
from rewardlab.files import read_settings_file
from rewardlab.train.arguments import ModelArguments, ScriptArguments
from rewardlab.train.run import train_from_arguments

logger = logging.getLogger(__name__)


CONFIG_HELP = (
    "A YAML file whose keys are any of these flags without the dashes (e.g. `learning_rate: 3.0e-5`), and "
    "optionally, as in TRL's config files, `datasets:` (a list of datasets to train on as one mixture) and `env:` "
    "(environment variables to set). Its values replace the defaults; flags given on the command line override them."
)
# Keys of the config file that are no flag: `datasets` (see ScriptArguments.datasets) and `env`.
YAML_ONLY_KEYS = ("datasets", "env")
# The flags every run names, listed first.
FIRST_FLAGS = ("model_name_or_path", "dataset_name", "output_dir")
# The TrainingArguments flags `--help` lists; `--help_all` lists them all.
COMMON_TRAINING_FLAGS = (
    "per_device_train_batch_size",
    "per_device_eval_batch_size",
    "gradient_accumulation_steps",
    "learning_rate",
    "num_train_epochs",
    "max_steps",
    "lr_scheduler_type",
    "warmup_steps",
    "bf16",
    "eval_strategy",
    "eval_steps",
    "save_strategy",
    "save_steps",
    "logging_steps",
    "seed",
    "report_to",
    "resume_from_checkpoint",
    "push_to_hub",
)


def build_parser(help_all: bool = False) -> argparse.ArgumentParser:
    """HfArgumentParser over (ScriptArguments, ModelArguments, RewardConfig): every TrainingArguments flag works.
    Its help is grouped (`group_train_flags`); with `help_all` it lists every TrainingArguments flag."""
    parser = dataclass_parser(
        (ScriptArguments, ModelArguments, RewardConfig),
        prog="rewardlab train",
        usage="rewardlab train --model MODEL --dataset DATASET [--config FILE.yaml] [--output_dir DIR] [flags]",
        description="Train a Bradley-Terry reward model on preference data. The flags follow TRL's reward script; "
        "every RewardConfig / TrainingArguments field is a flag.",
    )
    parser.add_argument("--config", metavar="FILE.yaml", help=CONFIG_HELP)
    parser.add_argument(
        "--help_all",
        nargs=0,
        action=_PrintFullHelp,
        help="Show every flag, all TrainingArguments fields included, and exit.",
    )
    # Unset means <model-name>-Reward (TRL's convention), decided once the model is known.
    parser.set_defaults(output_dir=None)
    parser._option_string_actions["--output_dir"].help += " Unset: <model name>-Reward (TRL's convention)."
    group_train_flags(parser, help_all)
    return parser


class _PrintFullHelp(argparse.Action):
    def __call__(self, parser, namespace, values, option_string=None):
        build_parser(help_all=True).print_help()
        parser.exit()


def group_train_flags(parser: argparse.ArgumentParser, help_all: bool) -> None:
    """Sort the flags into groups for `--help`: the ones every run names and --config, rewardlab's own options, the
    data and model flags of TRL's reward script, TRL's RewardConfig fields, then TrainingArguments' (without
    `help_all`, only the most used of those are listed; all of them still work)."""
    training = {f.name for f in fields(TrainingArguments)}
    script = {f.name for f in fields(ScriptArguments)}
    model = {f.name for f in fields(ModelArguments)}
    reward_config = {f.name for f in fields(RewardConfig)} - training
    groups = {
        "rewardlab's options (RewardConfig)": lambda n: n in reward_config and n not in TRL_REWARD_CONFIG_FIELDS,
        "data (ScriptArguments)": lambda n: n in script,
        "model, LoRA and quantization (ModelArguments)": lambda n: n in model,
        "TRL's RewardConfig options": lambda n: n in TRL_REWARD_CONFIG_FIELDS,
        "training (transformers.TrainingArguments"
        + (")" if help_all else "; the most used, `--help_all` lists all)"): lambda n: n in training,
    }
    top = parser._optionals  # argparse has no public way to move a flag between groups
    top.title = "options"
    moved = {title: parser.add_argument_group(title) for title in groups}
    for action in list(top._group_actions):
        if action.dest in FIRST_FLAGS or action.dest in ("help", "help_all", "config"):
            continue
        title = next(title for title, holds in groups.items() if holds(action.dest))
        top._group_actions.remove(action)
        moved[title]._group_actions.append(action)
        if title.startswith("training") and not help_all and action.dest not in COMMON_TRAINING_FLAGS:
            action.help = argparse.SUPPRESS
    order = {dest: k for k, dest in enumerate(("help", "help_all", "config", *FIRST_FLAGS))}
    top._group_actions.sort(key=lambda action: order.get(action.dest, len(order)))


def apply_config_file(parser: argparse.ArgumentParser, path: str) -> dict[str, Any]:
    """Make the values of the YAML file at `path` the parser's defaults, so that flags on the command line override
    them (TRL's `TrlParser` does the same). A key must be a flag's name; a value gets the flag's checks and type
    conversion, and an error in it is blamed on the file. Returns the values of `YAML_ONLY_KEYS`."""
    config = read_settings_file(path, "the config file", error=UsageError)
    yaml_only = {key: config.pop(key) for key in YAML_ONLY_KEYS if key in config}
    by_key = {}  # config key -> (dataclass field, whether the key is the field's `no_` flag)
    for dataclass_type in parser.dataclass_types:
        for f in fields(dataclass_type):
            if f.init:
                by_key[f.name] = (f, False)
                if "flag" in f.metadata:
                    by_key[f.metadata["flag"].lstrip("-")] = (f, False)
                by_key.update({alias.lstrip("-"): (f, False) for alias in f.metadata.get("aliases", ())})
                if f.type in (bool, "bool") and f.default is True:
                    by_key[f"no_{f.name}"] = (f, True)
    defaults = {}
    for key, value in config.items():
        if key not in by_key:
            raise UsageError(f"unknown key '{key}' in the config file {path} (see `rewardlab train --help`)")
        f, negated = by_key[key]
        choices = f.metadata.get("choices")
        if choices is not None and value is not None and value not in choices:
            raise UsageError(f"in the config file {path}: {key} is {value!r}, not one of {', '.join(choices)}")
        defaults[f.name] = (not value) if negated else value
    parser.set_defaults(**defaults)
    try:  # string values are converted by the flags' types now, so that an error names the file
        parser.parse_known_args([])
    except UsageError as e:
        raise UsageError(f"in the config file {path}: {e}") from e
    return yaml_only


def parse_train_args(argv: Sequence[str]) -> tuple[ScriptArguments, ModelArguments, Any]:
    """Parse `rewardlab train` flags (and the YAML file of --config) into the three dataclasses."""
    parser = build_parser()
    config_flag = ArgumentParser(add_help=False)
    config_flag.add_argument("--config")
    config, argv = config_flag.parse_known_args(list(argv))
    yaml_only = apply_config_file(parser, config.config) if config.config else {}
    set_environment(yaml_only.get("env"), config.config)
    if not isinstance(yaml_only.get("datasets", []), list):
        raise UsageError(f"in the config file {config.config}: datasets must be a list of datasets (- path: ...)")
    namespace, unknown = parser.parse_known_args(argv)
    if unknown:
        flag = next((u for u in unknown if u.startswith("-")), unknown[0])
        what = "unknown flag" if flag.startswith("-") else "unexpected argument"
        raise UsageError(f"{what} '{flag}' (see `rewardlab train --help`)")
    if namespace.model_name_or_path is None:
        raise UsageError("--model is required (a Hub model id or a local directory)")
    if namespace.dataset_name is None and not yaml_only.get("datasets"):
        raise UsageError(
            "--dataset is required (a data file, a directory or a Hub dataset id), or a `datasets:` list in "
            "the --config file"
        )
    if namespace.test_split_size is not None and not yaml_only.get("datasets"):
        raise UsageError("--test_split_size splits a `datasets:` mixture; for --dataset use --eval_fraction")
    if namespace.output_dir is None:
        namespace.output_dir = default_output_dir(namespace.model_name_or_path)
    values = vars(namespace)
    outputs = []
    for dataclass_type in parser.dataclass_types:
        kwargs = {f.name: values[f.name] for f in fields(dataclass_type) if f.init and f.name in values}
        try:
            outputs.append(dataclass_type(**kwargs))
        except ValueError as e:  # __post_init__ checks, e.g. TrainingArguments' incompatible options
            raise UsageError(str(e)) from e
    outputs[0].datasets = list(yaml_only.get("datasets") or [])
    return tuple(outputs)


def set_environment(env: Any, path: str | None) -> None:
    """The config file's `env:` section (TRL's), set before anything reads the environment."""
    if env is None:
        return
    if not isinstance(env, dict):
        raise UsageError(f"in the config file {path}: env must map variable names to values, got {env!r}")
    for key, value in env.items():
        os.environ[str(key)] = str(value)


def default_output_dir(model_name_or_path: str) -> str:
    """TRL's convention: `<model-name>-Reward` in the current directory."""
    name = Path(model_name_or_path.rstrip("/\\")).name or "model"
    return f"{name}-Reward"


def run_train(script_args: ScriptArguments, model_args: ModelArguments, training_args: RewardConfig) -> int:
    run = train_from_arguments(script_args, model_args, training_args)
    if run.trainer.is_world_process_zero():
        written = write_training_report(run.trainer, run.eval_dataset, run.source) if run.metrics else None
        print(train_summary(run.metrics, training_args.output_dir))
        if written:
            html, report = written
            print(f"  {versus_content_blind(headline_of(report))}")
            print(f"  evaluation report: {html}")
    run.trainer.end()  # close trackers and the process group
    return 0


def train_summary(metrics: dict[str, Any], output_dir: str) -> str:
    lines = ["Training finished."]
    if "eval_accuracy" in metrics:
        pairs = metrics.get("eval_num_pairs")
        on = f" on {int(pairs)} held-out pairs" if pairs is not None else ""
        loss = f" (eval loss {metrics['eval_loss']:.4f})" if "eval_loss" in metrics else ""
        lines.append(f"  eval accuracy {metrics['eval_accuracy']:.4f}{on}{loss}")
        if "eval_top1_accuracy" in metrics:  # rankings: comparisons above, prompts here
            prompts = int(metrics["eval_num_prompts"])
            lines.append(f"  eval top-1 accuracy {metrics['eval_top1_accuracy']:.4f} on {prompts} held-out rankings")
    else:
        lines.append("  no eval set (give the data a test split, or --eval_fraction)")
    lines.append(f"  model saved to {output_dir}")
    return "\n".join(lines)


def main(argv: Sequence[str]) -> int:
    script_args, model_args, training_args = parse_train_args(argv)
    return run_train(script_args, model_args, training_args)
