"""The `rewardlab` command: `rewardlab train` (every RewardConfig flag, plus data and model flags) and `rewardlab demo`.

User errors (bad flags, paths, data, models) are printed as one line, `rewardlab: error: <message>`, with exit code 2;
anything else is a bug and keeps its traceback. torch and transformers are imported only by the command that needs
them, so `rewardlab --help` is instant.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from rewardlab import __version__
from rewardlab.errors import RewardlabError

logger = logging.getLogger("rewardlab.cli")


class UsageError(RewardlabError):
    """A bad command line or config file."""


class _RaisingParserMixin:
    """argparse prints usage and calls sys.exit on a bad flag; raise instead, so `main` reports it as one line."""

    def error(self, message: str):
        raise UsageError(f"{message} (see `{self.prog} --help`)")


class ArgumentParser(_RaisingParserMixin, argparse.ArgumentParser):
    def __init__(self, *args: Any, **kwargs: Any):
        kwargs.setdefault("allow_abbrev", False)  # a typo must not silently match a longer flag
        super().__init__(*args, **kwargs)


def add_reward_model_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags that say how `rewardlab eval`, `score` and `serve` load a saved reward model."""
    parser.add_argument(
        "--dtype", default=None, choices=["auto", "float32", "bfloat16", "float16"], help="Weights dtype (float32)."
    )
    parser.add_argument("--device", default=None, help="e.g. cpu, cuda, cuda:1 (default: cuda when available).")
    parser.add_argument("--base_model", default=None, help="Base model of a LoRA adapter, if not the one it names.")
    parser.add_argument(
        "--max_length", type=int, default=None, help="Longest sequence in tokens (default: the training run's)."
    )


def load_reward_model(source: str | list[str], args: argparse.Namespace, **kwargs: Any) -> Any:
    """`RewardModel.from_pretrained(source)` with the flags of `add_reward_model_arguments`; for a list of several
    sources (a `--model` flag taking many), `RewardEnsemble.from_pretrained` (a deep ensemble)."""
    from rewardlab.deep_ensemble import RewardEnsemble
    from rewardlab.scoring import RewardModel

    if not isinstance(source, str) and len(source) == 1:
        source = source[0]
    if args.max_length is not None:
        kwargs["max_length"] = args.max_length
    load = RewardModel.from_pretrained if isinstance(source, str) else RewardEnsemble.from_pretrained
    return load(source, dtype=args.dtype, device=args.device, base_model=args.base_model, **kwargs)


# ---------------------------------------------------------------------------------------------------------------------
# `rewardlab train` arguments. RewardConfig (all of TrainingArguments) is the third dataclass of the parser.


@dataclass
class ScriptArguments:
    """Where the preference data comes from, and which part of it trains and which evaluates."""

    dataset_name: str | None = field(
        default=None,
        metadata={
            "help": "The preference data: a file (.jsonl, .jsonl.gz, .json, .json.gz, .parquet, .csv), a directory "
            "(written by save_to_disk, or holding data files named after their splits, e.g. train.jsonl and "
            "test.jsonl), or a Hugging Face Hub dataset id. Required."
        },
    )
    dataset_config: str | None = field(
        default=None, metadata={"help": "Configuration name of a Hub dataset (the `name` of datasets.load_dataset)."}
    )
    dataset_train_split: str = field(default="train", metadata={"help": "Split to train on."})
    dataset_test_split: str = field(
        default="test", metadata={"help": "Split to evaluate on, used when the data has it."}
    )
    eval_fraction: float = field(
        default=0.0,
        metadata={
            "help": "When the data has no test split, hold out this fraction of the training rows (chosen at random "
            "with --seed) for evaluation. 0: use the test split if there is one, else do not evaluate."
        },
    )
    resume: bool = field(
        default=False,
        metadata={
            "help": "Continue from the newest completely written checkpoint in --output_dir (same data order, random "
            "state, optimizer and scheduler). --resume_from_checkpoint DIR names one instead."
        },
    )
    streaming: bool = field(
        default=False,
        metadata={
            "help": "Read the data as a stream instead of loading it into memory (needs --max_steps).",
            "aliases": ["--dataset_streaming"],
        },
    )


@dataclass
class ModelArguments:
    """Which model to start from and how to load it; LoRA and quantization."""

    model_name_or_path: str | None = field(
        default=None,
        metadata={
            "help": "The model to train: a Hub id or a local directory. Loaded with "
            "AutoModelForSequenceClassification and num_labels=1. Required."
        },
    )
    model_revision: str = field(
        default="main", metadata={"help": "Branch, tag or commit of the Hub model (and its tokenizer)."}
    )
    dtype: str = field(
        default="float32",
        metadata={
            "help": "dtype the model weights are loaded in ('auto': as stored in the checkpoint).",
            "choices": ["auto", "float32", "bfloat16", "float16"],
        },
    )
    attn_implementation: str | None = field(
        default=None, metadata={"help": "Attention implementation, e.g. sdpa, eager or flash_attention_2."}
    )
    tokenizer_name_or_path: str | None = field(
        default=None, metadata={"help": "Tokenizer to use, if not the model's own (a Hub id or a directory)."}
    )
    use_peft: bool = field(
        default=False, metadata={"help": "Train LoRA adapters (and the score head) instead of all weights."}
    )
    lora_r: int = field(default=16, metadata={"help": "LoRA rank."})
    lora_alpha: int = field(default=32, metadata={"help": "LoRA alpha (the update is scaled by alpha / r)."})
    lora_dropout: float = field(default=0.05, metadata={"help": "Dropout on the LoRA layers' input."})
    lora_target_modules: list[str] | None = field(
        default=None,
        metadata={
            "help": "Names of the modules that get LoRA adapters, e.g. q_proj v_proj, or all-linear. Default: PEFT's "
            "choice for the architecture."
        },
    )
    lora_modules_to_save: list[str] | None = field(
        default=None,
        metadata={
            "help": "Modules trained in full and saved with the adapter. The score head is always added to them."
        },
    )
    lora_task_type: str = field(
        default="SEQ_CLS",
        metadata={
            "help": "PEFT task type. Accepted for TRL configs; a reward model is always SEQ_CLS.",
            "choices": ["SEQ_CLS"],
        },
    )
    use_rslora: bool = field(
        default=False, metadata={"help": "Rank-stabilised LoRA: scale the update by alpha / sqrt(r)."}
    )
    use_dora: bool = field(
        default=False, metadata={"help": "DoRA: learn each weight's magnitude apart from its LoRA direction."}
    )
    load_in_4bit: bool = field(
        default=False, metadata={"help": "Load the base model in 4 bits (bitsandbytes, CUDA). Needs --use_peft."}
    )
    load_in_8bit: bool = field(
        default=False, metadata={"help": "Load the base model in 8 bits (bitsandbytes, CUDA). Needs --use_peft."}
    )
    bnb_4bit_quant_type: str = field(
        default="nf4", metadata={"help": "4-bit quantization type.", "choices": ["nf4", "fp4"]}
    )
    use_bnb_nested_quant: bool = field(
        default=False, metadata={"help": "Quantize the 4-bit quantization constants too (saves ~0.4 bit/weight)."}
    )


CONFIG_HELP = (
    "A YAML file whose keys are any of these flags without the dashes (e.g. `learning_rate: 3.0e-5`). "
    "Its values replace the defaults; flags given on the command line override them."
)


def build_train_parser() -> argparse.ArgumentParser:
    """HfArgumentParser over (ScriptArguments, ModelArguments, RewardConfig): every TrainingArguments flag works."""
    from transformers import HfArgumentParser

    from rewardlab.config import RewardConfig

    parser_class = type("TrainArgumentParser", (_RaisingParserMixin, HfArgumentParser), {})
    parser = parser_class(
        (ScriptArguments, ModelArguments, RewardConfig),
        prog="rewardlab train",
        description="Train a Bradley-Terry reward model on preference data. The flags follow TRL's reward script; "
        "every RewardConfig / TrainingArguments field is a flag.",
        allow_abbrev=False,  # a typo must not silently match a longer flag
    )
    parser.add_argument("--config", metavar="FILE.yaml", help=CONFIG_HELP)
    # Unset means <model-name>-Reward (TRL's convention), decided once the model is known.
    parser.set_defaults(output_dir=None)
    return parser


def split_config_flag(argv: list[str]) -> tuple[str | None, list[str]]:
    """Take `--config FILE` / `--config=FILE` out of argv: the file is read before the other flags are parsed."""
    rest, path, i = [], None, 0
    while i < len(argv):
        arg = argv[i]
        if arg == "--config":
            if i + 1 >= len(argv):
                raise UsageError("--config needs a file name")
            path, i = argv[i + 1], i + 2
            continue
        if arg.startswith("--config="):
            path = arg.split("=", 1)[1]
        else:
            rest.append(arg)
        i += 1
    return path, rest


def read_yaml_config(path: str) -> dict[str, Any]:
    import yaml

    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as e:
        raise UsageError(f"cannot read the config file {path}: {e.strerror or e}") from e
    try:
        config = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise UsageError(f"config file {path} is not valid YAML: {' '.join(str(e).split())}") from e
    if config is None:
        return {}
    if not isinstance(config, dict):
        raise UsageError(f"config file {path} must be a mapping of flag names to values, not a {type(config).__name__}")
    return config


def _yaml_value_text(value: Any) -> str:
    """Render a YAML value as the command-line text argparse expects (bools as true/false, dicts as JSON)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        return json.dumps(value)
    return str(value)


def config_to_argv(parser: argparse.ArgumentParser, config: dict[str, Any], path: str) -> list[str]:
    """Turn the YAML mapping into flags that go before the command line's, so the command line wins.

    Going through argparse (rather than setting defaults directly) gives YAML values the same type conversion and
    `choices` checks as flags.
    """
    tokens: list[str] = []
    for key, value in config.items():
        action = parser._option_string_actions.get(f"--{key}")
        if action is None or key in ("config", "help"):
            raise UsageError(f"unknown key '{key}' in the config file {path} (see `rewardlab train --help`)")
        if value is None or (isinstance(value, list) and action.nargs not in ("+", "*")):
            # argparse cannot read "None" back, and a single-value flag cannot take a list; both can only be
            # defaults. Fields such as report_to accept a list in Python.
            parser.set_defaults(**{action.dest: value})
        elif action.nargs == 0:  # a flag without a value, e.g. --no_disable_dropout
            if value:
                tokens.append(f"--{key}")
        elif isinstance(value, list):
            tokens += [f"--{key}", *(_yaml_value_text(v) for v in value)]
        else:
            # `--key=value`, so a value that starts with '-' is not taken for a flag.
            tokens.append(f"--{key}={_yaml_value_text(value)}")
    # Parse the file's flags alone first, so an error in a value is blamed on the file.
    try:
        parser.parse_known_args(tokens)
    except UsageError as e:
        raise UsageError(f"in the config file {path}: {e}") from e
    return tokens


def default_output_dir(model_name_or_path: str) -> str:
    """TRL's convention: `<model-name>-Reward` in the current directory."""
    name = Path(model_name_or_path.rstrip("/\\")).name or "model"
    return f"{name}-Reward"


def parse_train_args(argv: Sequence[str]) -> tuple[ScriptArguments, ModelArguments, Any]:
    """Parse `rewardlab train` flags (and the YAML file of --config) into the three dataclasses."""
    parser = build_train_parser()
    config_path, argv = split_config_flag(list(argv))
    tokens = config_to_argv(parser, read_yaml_config(config_path), config_path) if config_path else []
    namespace, unknown = parser.parse_known_args(tokens + argv)
    if unknown:
        flag = next((u for u in unknown if u.startswith("-")), unknown[0])
        what = "unknown flag" if flag.startswith("-") else "unexpected argument"
        raise UsageError(f"{what} '{flag}' (see `rewardlab train --help`)")
    if namespace.model_name_or_path is None:
        raise UsageError("--model_name_or_path is required (a Hub model id or a local directory)")
    if namespace.dataset_name is None:
        raise UsageError("--dataset_name is required (a data file, a directory or a Hub dataset id)")
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
    return tuple(outputs)


def model_init_kwargs(model_args: ModelArguments, training_args: Any) -> dict[str, Any]:
    """from_pretrained arguments from the model flags; an explicit --model_init_kwargs wins over them."""
    kwargs: dict[str, Any] = {"dtype": model_args.dtype, "revision": model_args.model_revision}
    if model_args.attn_implementation:
        kwargs["attn_implementation"] = model_args.attn_implementation
    kwargs.update(training_args.model_init_kwargs or {})
    return kwargs


def lora_config(model_args: ModelArguments) -> Any:
    """The LoraConfig of the LoRA flags, or None without --use_peft."""
    if not model_args.use_peft:
        return None
    try:
        from peft import LoraConfig
    except ImportError as e:
        raise RewardlabError("--use_peft needs the peft package: pip install 'rewardlab[peft]'") from e
    targets = model_args.lora_target_modules
    # PEFT reads a string as a regex over module names; only the special value all-linear must be passed as one.
    if targets == ["all-linear"]:
        targets = "all-linear"
    return LoraConfig(
        task_type=model_args.lora_task_type,
        r=model_args.lora_r,
        lora_alpha=model_args.lora_alpha,
        lora_dropout=model_args.lora_dropout,
        target_modules=targets,
        modules_to_save=model_args.lora_modules_to_save,
        use_rslora=model_args.use_rslora,
        use_dora=model_args.use_dora,
    )


def quantization_config(model_args: ModelArguments) -> Any:
    """A BitsAndBytesConfig for --load_in_4bit / --load_in_8bit, or None."""
    if not (model_args.load_in_4bit or model_args.load_in_8bit):
        return None
    if model_args.load_in_4bit and model_args.load_in_8bit:
        raise UsageError("choose one of --load_in_4bit and --load_in_8bit")
    if not model_args.use_peft:
        raise UsageError("a quantized model cannot be trained in full: add --use_peft")
    import torch
    from transformers import BitsAndBytesConfig

    compute_dtype = torch.float32 if model_args.dtype in ("auto", "float32") else getattr(torch, model_args.dtype)
    return BitsAndBytesConfig(
        load_in_4bit=model_args.load_in_4bit,
        load_in_8bit=model_args.load_in_8bit,
        bnb_4bit_compute_dtype=compute_dtype,
        bnb_4bit_quant_type=model_args.bnb_4bit_quant_type,
        bnb_4bit_use_double_quant=model_args.use_bnb_nested_quant,
    )


def check_model_path(name_or_path: str) -> None:
    """A path that does not exist is a typo, not a Hub id: say so before transformers tries the Hub."""
    from rewardlab.data.loading import looks_like_local_path

    if not os.path.exists(os.path.expanduser(name_or_path)) and looks_like_local_path(name_or_path):
        raise RewardlabError(f"no such model directory: {name_or_path}; check --model_name_or_path")


def run_train(script_args: ScriptArguments, model_args: ModelArguments, training_args: Any) -> int:
    from rewardlab.data.loading import describe, load_preference_data, split_train_eval

    # Check the cheap things (flags, paths, data, splits) before paying for the model.
    check_model_path(model_args.model_name_or_path)
    peft_config = lora_config(model_args)
    quantization = quantization_config(model_args)
    data = load_preference_data(
        script_args.dataset_name, config_name=script_args.dataset_config, streaming=script_args.streaming
    )
    logger.info("Loaded %s (%s)", script_args.dataset_name, describe(data))
    train_dataset, eval_dataset = split_train_eval(
        data,
        train_split=script_args.dataset_train_split,
        eval_split=script_args.dataset_test_split,
        eval_fraction=script_args.eval_fraction,
        seed=training_args.seed,
    )
    if eval_dataset is None and training_args.eval_strategy != "no":
        strategy = getattr(training_args.eval_strategy, "value", training_args.eval_strategy)
        raise UsageError(
            f"--eval_strategy {strategy} needs an eval set, and the data has no "
            f"'{script_args.dataset_test_split}' split: set --eval_fraction or --dataset_test_split"
        )
    tokenizer = None
    if model_args.tokenizer_name_or_path:
        from rewardlab.model import load_tokenizer

        tokenizer = load_tokenizer(
            model_args.tokenizer_name_or_path,
            revision=model_args.model_revision,
            trust_remote_code=training_args.trust_remote_code,
        )
    training_args.model_init_kwargs = model_init_kwargs(model_args, training_args)

    from rewardlab.trainer import RewardTrainer

    trainer = RewardTrainer(
        model=model_args.model_name_or_path,
        args=training_args,
        train_dataset=train_dataset,
        eval_dataset=eval_dataset,
        processing_class=tokenizer,
        peft_config=peft_config,
        quantization_config=quantization,
    )
    trainer.train(resume_from_checkpoint=True if script_args.resume else training_args.resume_from_checkpoint)
    metrics = trainer.evaluate() if eval_dataset is not None else {}
    trainer.save_model(training_args.output_dir)
    if training_args.push_to_hub:
        trainer.push_to_hub()
    if trainer.is_world_process_zero():
        report = write_eval_report(trainer, eval_dataset, script_args.dataset_name) if metrics else None
        print(train_summary(metrics, training_args.output_dir))
        if report:
            print(f"  evaluation report: {report}")
    if hasattr(trainer, "end"):  # transformers >= 5.18: close trackers and the process group
        trainer.end()
    return 0


def write_eval_report(trainer: Any, eval_dataset: Any, source: str) -> str | None:
    """The `rewardlab eval` report of the trained model on the evaluation split, written next to the model."""
    from datasets import Dataset

    from rewardlab.evaluate import eval_set_from_rows, evaluate, write_report
    from rewardlab.scoring import RewardModel

    if not isinstance(eval_dataset, Dataset):  # a streamed eval set cannot be read twice
        return None
    args = trainer.args
    model = RewardModel(trainer.model, trainer.processing_class, max_length=args.max_length,
                        overlength_policy=args.overlength_policy, eos_token=args.eos_token)  # fmt: skip
    eval_set = eval_set_from_rows(eval_dataset.to_list(), "evaluation split", source)
    report, figures = evaluate({"trained model": model}, [eval_set], model_sources={"trained model": args.output_dir},
                               training_logs={"trained model": trainer.state.log_history})  # fmt: skip
    return str(write_report(report, figures, args.output_dir))


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


def train_command(argv: Sequence[str]) -> int:
    script_args, model_args, training_args = parse_train_args(argv)
    return run_train(script_args, model_args, training_args)


def demo_command(argv: Sequence[str]) -> int:
    from rewardlab import demo

    return demo.main(argv)


# name -> (one-line description, function taking the remaining argv).
def eval_command(argv: Sequence[str]) -> int:
    from rewardlab.evaluate import eval_command as run

    return run(argv)


def score_command(argv: Sequence[str]) -> int:
    from rewardlab.score_file import score_command as run

    return run(argv)


def serve_command(argv: Sequence[str]) -> int:
    from rewardlab.server import serve_command as run

    return run(argv)


COMMANDS: dict[str, tuple[str, Callable[[Sequence[str]], int]]] = {
    "train": ("Train a reward model (every RewardConfig / TrainingArguments flag works).", train_command),
    "demo": ("Train MiniLM on the bundled HH-RLHF pairs and print held-out accuracy before and after.", demo_command),
    "eval": ("Evaluate reward models on preference data; write report.json and report.html with plots.", eval_command),
    "score": (
        "Score a data file (texts, prompt/completion or pairs) and write it back with reward columns.",
        score_command,
    ),
    "serve": ("Serve a reward model over HTTP (POST /score, OpenRLHF's POST /get_reward, GET /health).", serve_command),
}


def build_main_parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(
        prog="rewardlab",
        description="Train Bradley-Terry reward models (a drop-in for TRL's RewardTrainer).",
        epilog="Run `rewardlab <command> --help` for a command's flags.",
    )
    parser.add_argument("--version", action="version", version=f"rewardlab {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="command")
    for name, (description, _) in COMMANDS.items():
        commands.add_parser(name, help=description, add_help=False)
    return parser


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever sys.stderr is at the time (so a replaced stderr, e.g. under pytest, still works)."""

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value):
        pass


@contextlib.contextmanager
def rewardlab_logging():
    """Show rewardlab's own INFO messages (data policy counts, ...) on stderr while a command runs; other libraries
    keep their levels. Undone afterwards, so calling `main` from Python leaves logging as it was."""
    root = logging.getLogger("rewardlab")
    handler = _StderrHandler()
    handler.setFormatter(logging.Formatter("rewardlab: %(message)s"))
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        yield
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


def one_line(error: BaseException) -> str:
    text = " ".join(part.strip() for part in str(error).splitlines() if part.strip())
    return text or type(error).__name__


def dispatch(argv: list[str]) -> int:
    if not argv or argv[0] not in COMMANDS:
        parser = build_main_parser()
        if not argv:
            parser.print_help()
            return 2
        parser.parse_args(argv)  # --help / --version exit here; an unknown command raises UsageError
        return 2
    with rewardlab_logging():
        return COMMANDS[argv[0]][1](argv[1:])


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `rewardlab` console script; returns the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        return dispatch(argv)
    except SystemExit as e:  # argparse's --help and --version
        return e.code if isinstance(e.code, int) else 0
    except (RewardlabError, OSError) as e:  # OSError includes FileNotFoundError and bad model paths
        print(f"rewardlab: error: {one_line(e)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("rewardlab: interrupted", file=sys.stderr)
        return 130
