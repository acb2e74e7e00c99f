"""A training run from its parsed flags, top to bottom: check the cheap things, load the data (a file, a hub
dataset or a `datasets:` mixture, through a label mapping when given), split it, build the `RewardTrainer`, train,
evaluate and save. `rewardlab train` parses the flags and calls `train_from_arguments`."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Any

import torch
from datasets import Dataset, DatasetDict

from rewardlab._compat import ignore_in_ddp
from rewardlab.config import RewardConfig
from rewardlab.data.apply_mapping import apply_mapping
from rewardlab.data.loading import describe, load_preference_data, looks_like_local_path, split_train_eval
from rewardlab.data.mixture import describe_mixture, load_mixture
from rewardlab.errors import RewardlabError, UsageError
from rewardlab.model.load import load_tokenizer
from rewardlab.train.arguments import (
    ModelArguments,
    ScriptArguments,
    lora_config,
    model_init_kwargs,
    quantization_config,
)
from rewardlab.train.trainer import RewardTrainer

logger = logging.getLogger(__name__)


@dataclass
class TrainingRun:
    """What a finished run leaves: the trainer (its model trained and saved), the final evaluation's metrics (empty
    without an evaluation set), that set, and the data's name for reports."""

    trainer: RewardTrainer
    metrics: dict[str, Any]
    eval_dataset: Any
    source: str


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


def map_splits(data: Any, mapping: str, skip_invalid_rows: bool) -> DatasetDict:
    """Every split of `data` through the label `mapping` into pairs (`rewardlab.data.apply_mapping`), what the
    mapping could not use counted and logged, as `rewardlab eval` reads a third-party layout."""
    if not isinstance(data, DatasetDict):
        raise UsageError("--mapping reads whole splits: it cannot be used with --streaming")
    mapped = {}
    for split, rows in data.items():
        pairs, stats = apply_mapping(rows, mapping, skip_invalid=skip_invalid_rows, dataset_name=split)
        if not pairs:
            raise RewardlabError(f"the {split} split gives no pairs through the mapping: {stats.summary()}")
        logger.warning("%s split through the mapping: %s", split, stats.summary())
        mapped[split] = Dataset.from_list(pairs)
    return DatasetDict(mapped)


def ignore_bool_buffers(model: Any) -> None:
    """DDP broadcasts buffers at every forward; for boolean ones (causal masks) that fails on some architectures
    (transformers#22482), and they never change, so DDP is told to leave them."""
    ignore_in_ddp(model, [name for name, b in model.named_buffers() if b.dtype == torch.bool])


def train_from_arguments(
    script_args: ScriptArguments, model_args: ModelArguments, training_args: RewardConfig
) -> TrainingRun:
    """Train, evaluate and save as the flags say; the caller reports (on the main process) and calls `trainer.end()`."""
    # Check the cheap things (flags, paths, data, splits) before paying for the model.
    check_model_path(model_args.model_name_or_path)
    peft_config = lora_config(model_args)
    quantization = quantization_config(model_args)
    data, source = load_training_data(script_args, training_args.seed)
    if script_args.mapping is not None:
        data = map_splits(data, script_args.mapping, training_args.skip_invalid_rows)
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
    return TrainingRun(trainer, metrics, eval_dataset, source)
