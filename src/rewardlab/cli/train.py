"""`rewardlab train`: every RewardConfig / TrainingArguments field as a flag, plus the data and model flags of TRL's
reward script, optionally from a YAML file (`--config`, as `trl reward` takes one)."""

from __future__ import annotations

import argparse
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import torch
from datasets import Dataset

from rewardlab._compat import ignore_in_ddp
from rewardlab.cli.common import ArgumentParser, dataclass_parser, versus_content_blind
from rewardlab.config import RewardConfig
from rewardlab.data.loading import describe, load_preference_data, looks_like_local_path, split_train_eval
from rewardlab.data.mixture import describe_mixture, load_mixture
from rewardlab.errors import RewardlabError, UsageError
from rewardlab.eval.report import evaluate, write_report
from rewardlab.eval.sets import eval_set_from_rows
from rewardlab.files import read_settings_file
from rewardlab.model.load import load_tokenizer, require_peft
from rewardlab.score.reward_model import RewardModel
from rewardlab.train.trainer import RewardTrainer

logger = logging.getLogger(__name__)


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
    test_split_size: float | None = field(
        default=None,
        metadata={
            "help": "With a `datasets:` mixture in the --config file: hold out this fraction (or, above 1, this "
            "many rows) of the mixture at random with --seed as its test split (TRL's option)."
        },
    )
    ignore_bias_buffers: bool = field(
        default=False,
        metadata={
            "help": "Under DDP, do not broadcast the model's boolean buffers (e.g. causal-mask buffers), which "
            "fails for some architectures (transformers issue 22482); TRL's flag."
        },
    )
    # A list of dicts cannot be a flag: it is read from the `datasets:` section of the --config file.
    datasets: list[dict[str, Any]] = field(
        default_factory=list,
        init=False,
        metadata={
            "help": "YAML only: a mixture of datasets (path, name, data_dir, data_files, split, columns, fraction)."
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
    lora_target_parameters: list[str] | None = field(
        default=None,
        metadata={"help": "Names of parameters (not modules) that get LoRA adapters, e.g. the experts of an MoE."},
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
    bnb_4bit_quant_storage: str | None = field(
        default=None, metadata={"help": "dtype the 4-bit weights are stored in, e.g. bfloat16 (for FSDP with QLoRA)."}
    )


CONFIG_HELP = (
    "A YAML file whose keys are any of these flags without the dashes (e.g. `learning_rate: 3.0e-5`), and "
    "optionally, as in TRL's config files, `datasets:` (a list of datasets to train on as one mixture) and `env:` "
    "(environment variables to set). Its values replace the defaults; flags given on the command line override them."
)
# Keys of the config file that are no flag: `datasets` (see ScriptArguments.datasets) and `env`.
YAML_ONLY_KEYS = ("datasets", "env")


def build_train_parser() -> argparse.ArgumentParser:
    """HfArgumentParser over (ScriptArguments, ModelArguments, RewardConfig): every TrainingArguments flag works."""
    parser = dataclass_parser(
        (ScriptArguments, ModelArguments, RewardConfig),
        prog="rewardlab train",
        description="Train a Bradley-Terry reward model on preference data. The flags follow TRL's reward script; "
        "every RewardConfig / TrainingArguments field is a flag.",
    )
    parser.add_argument("--config", metavar="FILE.yaml", help=CONFIG_HELP)
    # Unset means <model-name>-Reward (TRL's convention), decided once the model is known.
    parser.set_defaults(output_dir=None)
    return parser


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
    parser = build_train_parser()
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
        raise UsageError("--model_name_or_path is required (a Hub model id or a local directory)")
    if namespace.dataset_name is None and not yaml_only.get("datasets"):
        raise UsageError(
            "--dataset_name is required (a data file, a directory or a Hub dataset id), or a `datasets:` list in "
            "the --config file"
        )
    if namespace.test_split_size is not None and not yaml_only.get("datasets"):
        raise UsageError("--test_split_size splits a `datasets:` mixture; for --dataset_name use --eval_fraction")
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
    require_peft("--use_peft")
    from peft import LoraConfig

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
        target_parameters=model_args.lora_target_parameters,
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
    from transformers import BitsAndBytesConfig

    compute_dtype = torch.float32 if model_args.dtype in ("auto", "float32") else getattr(torch, model_args.dtype)
    return BitsAndBytesConfig(
        load_in_4bit=model_args.load_in_4bit,
        load_in_8bit=model_args.load_in_8bit,
        bnb_4bit_compute_dtype=compute_dtype,
        bnb_4bit_quant_type=model_args.bnb_4bit_quant_type,
        bnb_4bit_use_double_quant=model_args.use_bnb_nested_quant,
        bnb_4bit_quant_storage=model_args.bnb_4bit_quant_storage,
    )


def check_model_path(name_or_path: str) -> None:
    """A path that does not exist is a typo, not a Hub id: say so before transformers tries the Hub."""
    if not os.path.exists(os.path.expanduser(name_or_path)) and looks_like_local_path(name_or_path):
        raise RewardlabError(f"no such model directory: {name_or_path}; check --model_name_or_path")


def load_training_data(script_args: ScriptArguments, seed: int) -> tuple[Any, str]:
    """The data (a `datasets:` mixture from the config file, else --dataset_name) and its name for logs and reports."""
    if not script_args.datasets:
        data = load_preference_data(
            script_args.dataset_name, config_name=script_args.dataset_config, streaming=script_args.streaming
        )
        return data, script_args.dataset_name
    if script_args.dataset_name:
        logger.warning("the config file's `datasets:` mixture is used; --dataset_name is ignored (as in TRL)")
    test_size = script_args.test_split_size
    if test_size is not None and test_size > 1:
        test_size = int(test_size)  # a row count, as datasets' train_test_split reads an int
    data = load_mixture(script_args.datasets, streaming=script_args.streaming, test_split_size=test_size, seed=seed)
    return data, describe_mixture(script_args.datasets)


def ignore_bool_buffers(model: Any) -> None:
    """DDP broadcasts buffers at every forward; for boolean ones (causal masks) that fails on some architectures
    (transformers issue 22482), and they never change, so DDP is told to leave them."""
    ignore_in_ddp(model, [name for name, b in model.named_buffers() if b.dtype == torch.bool])


def run_train(script_args: ScriptArguments, model_args: ModelArguments, training_args: RewardConfig) -> int:
    # Check the cheap things (flags, paths, data, splits) before paying for the model.
    check_model_path(model_args.model_name_or_path)
    peft_config = lora_config(model_args)
    quantization = quantization_config(model_args)
    data, source = load_training_data(script_args, training_args.seed)
    logger.info("Loaded %s (%s)", source, describe(data))
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
        tokenizer = load_tokenizer(
            model_args.tokenizer_name_or_path,
            revision=model_args.model_revision,
            trust_remote_code=training_args.trust_remote_code,
        )
    training_args.model_init_kwargs = model_init_kwargs(model_args, training_args)
    trainer = RewardTrainer(
        model=model_args.model_name_or_path,
        args=training_args,
        train_dataset=train_dataset,
        eval_dataset=eval_dataset,
        processing_class=tokenizer,
        peft_config=peft_config,
        quantization_config=quantization,
    )
    if script_args.ignore_bias_buffers:
        ignore_bool_buffers(trainer.model)
    trainer.train(resume_from_checkpoint=True if script_args.resume else training_args.resume_from_checkpoint)
    metrics = trainer.evaluate() if eval_dataset is not None else {}
    trainer.save_model(training_args.output_dir)
    if training_args.push_to_hub:
        trainer.push_to_hub(dataset_name=script_args.dataset_name)  # named in the card's metadata, as TRL does
    if trainer.is_world_process_zero():
        written = write_eval_report(trainer, eval_dataset, source) if metrics else None
        print(train_summary(metrics, training_args.output_dir))
        if written:
            html, report = written
            print(f"  {versus_content_blind(headline_of(report))}")
            print(f"  evaluation report: {html}")
    trainer.end()  # close trackers and the process group
    return 0


def trained_reward_model(trainer: Any) -> RewardModel:
    """The trainer's model as a `RewardModel`, scoring as the run trained (its max_length, policy and eos)."""
    args = trainer.args
    return RewardModel(
        trainer.model,
        trainer.processing_class,
        max_length=args.max_length,
        overlength_policy=args.overlength_policy,
        eos_token=args.eos_token,
    )


def write_eval_report(trainer: Any, eval_dataset: Any, source: str) -> tuple[str, dict[str, Any]] | None:
    """The `rewardlab eval` report of the trained model on the evaluation split, written next to the model: the HTML
    page's path and the report."""
    if not isinstance(eval_dataset, Dataset):  # a streamed eval set cannot be read twice
        return None
    args = trainer.args
    model = trained_reward_model(trainer)
    # Rows the trainer skipped as invalid are skipped (and counted) here too.
    eval_set = eval_set_from_rows(
        eval_dataset.to_list(), "evaluation split", source, skip_invalid_rows=args.skip_invalid_rows
    )
    name = "trained model"
    report, figures = evaluate(
        {name: model},
        [eval_set],
        model_sources={name: args.output_dir},
        training_logs={name: trainer.state.log_history},
    )
    return str(write_report(report, figures, args.output_dir)), report


def headline_of(report: dict[str, Any]) -> dict[str, Any]:
    """The headline (score, best content-blind rule, lead) of a report's one model on its one data set."""
    (sets,) = report["results"].values()
    (result,) = sets.values()
    return result["headline"]


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
