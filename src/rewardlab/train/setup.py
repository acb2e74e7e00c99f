"""Setting up a training run's model and tokenizer, as plain functions the trainer calls in order: the arguments
checked, the model loaded (with its ensemble or length head), the tokenizer's eos and chat template, LoRA or
another PEFT method around the model, then what scoring needs of it (no dropout, a pad token, no KV cache)."""

from __future__ import annotations

import importlib.util
import logging
from typing import Any

from datasets import Dataset, IterableDataset
from transformers import PreTrainedTokenizerBase

from rewardlab._compat import name_or_path
from rewardlab.choices import NO_GATE, ODIN
from rewardlab.config import RewardConfig
from rewardlab.errors import RewardlabError, RewardlabTypeError
from rewardlab.model.gate import has_gate, install_gate
from rewardlab.model.heads import install_ensemble_head, num_heads
from rewardlab.model.length_head import has_length_head, install_length_head
from rewardlab.model.load import (
    check_num_labels,
    disable_dropout,
    fix_peft_config,
    is_peft_model,
    load_model,
    load_tokenizer,
    require_peft,
    set_chat_template,
    set_eos_token,
    set_pad_token,
)
from rewardlab.train.engines import init_kwargs_for_processes, peft_model_kwargs

logger = logging.getLogger(__name__)


def check_arguments(model: Any, args: RewardConfig | None, train_dataset: Any) -> RewardConfig:
    """The run's config (TRL's default when None), after the checks that need no model."""
    if args is None:
        name = model if isinstance(model, str) else name_or_path(model) or "model"
        args = RewardConfig(f"{name.rstrip('/').split('/')[-1]}-Reward")
    elif not isinstance(args, RewardConfig):
        raise RewardlabTypeError(f"`args` must be a `rewardlab.RewardConfig`, got `{type(args).__name__}`")
    if train_dataset is None:
        raise RewardlabError("`train_dataset` is required")
    if isinstance(train_dataset, IterableDataset):
        if args.max_steps is None or args.max_steps <= 0:
            raise RewardlabError(
                "a streaming (IterableDataset) train_dataset has no length: set max_steps to bound training"
            )
        # Accelerate's dispatch mode concatenates batches across processes, which fails for iterable datasets.
        if args.accelerator_config.dispatch_batches is True:
            logger.warning("dispatch_batches=True does not work with a streamed train_dataset: set to False")
        args.accelerator_config.dispatch_batches = False
    elif not isinstance(train_dataset, Dataset):
        raise RewardlabTypeError(
            f"`train_dataset` must be a `Dataset` or `IterableDataset`, got `{type(train_dataset).__name__}`"
        )
    if args.objectives is None:
        args.objectives = objectives_in(train_dataset)
    if args.batch_eval_metrics:
        raise RewardlabError("batch_eval_metrics is not supported: rewardlab's evaluation metrics are already exact")
    if args.use_liger_kernel:
        check_liger(args)
    return args


# Liger's kernels a reward model uses: RMSNorm, SwiGLU and RoPE. Its cross-entropy kernels fuse a language-model
# head's loss, which a reward model does not have, and would patch the `*ForCausalLM` class of the process (a policy
# trained beside the reward model) rather than this model.
LIGER_REWARD_MODEL_KERNELS = {
    "rms_norm": True,
    "swiglu": True,
    "rope": True,
    "cross_entropy": False,
    "fused_linear_cross_entropy": False,
}


def check_liger(args: RewardConfig) -> None:
    """`use_liger_kernel` runs where Liger can (its kernels are Triton, CUDA only), with the kernels a reward model
    uses unless `liger_kernel_config` names its own."""
    if args.device.type != "cuda":
        raise RewardlabError(
            f"use_liger_kernel needs a CUDA GPU (Liger's kernels are written in Triton); this run is on "
            f"{args.device.type}: drop --use_liger_kernel"
        )
    if importlib.util.find_spec("liger_kernel") is None:
        raise RewardlabError("use_liger_kernel needs the liger-kernel package: pip install liger-kernel")
    if args.liger_kernel_config is None:
        args.liger_kernel_config = dict(LIGER_REWARD_MODEL_KERNELS)


def objectives_in(train_dataset: Any) -> list[str] | None:
    """The objectives a training set names in its `objective` column, sorted (None without the column)."""
    columns = train_dataset.column_names
    if columns is None and isinstance(train_dataset, IterableDataset):  # a stream whose columns are not declared
        columns = list(next(iter(train_dataset), {}))
    if "objective" not in (columns or []):
        return None
    if isinstance(train_dataset, IterableDataset):
        raise RewardlabError(
            "a streamed training set that names objectives needs them listed (in head order): set objectives, e.g. "
            "--objectives helpful,harmless"
        )
    names = sorted({name for name in train_dataset.unique("objective") if isinstance(name, str) and name.strip()})
    if len(names) < 2:
        raise RewardlabError(
            f"the training data names {len(names)} objective{'' if len(names) == 1 else 's'} "
            f"({', '.join(names) or 'none'}); a multi-objective model needs two or more: drop the `objective` column "
            "for an ordinary reward model"
        )
    logger.warning("objectives, one head each: %s", ", ".join(names))
    return names


def setup_model(model: Any, args: RewardConfig, quantization_config: Any) -> tuple[Any, str, str | None]:
    """The model (loaded when given by name), its id or name for the run record, and the hub revision."""
    if isinstance(model, str):
        model_id = model
        init_kwargs = init_kwargs_for_processes(dict(args.model_init_kwargs or {}), args.world_size)
        model = load_model(
            model, init_kwargs, quantization_config, args.trust_remote_code, new_head=True, objectives=args.objectives
        )
        revision = init_kwargs.get("revision")
    else:
        model_id = name_or_path(model) or type(model).__name__
        revision = None
        if args.model_init_kwargs:
            logger.warning("model_init_kwargs is ignored: the model is already instantiated")
        if quantization_config is not None:
            logger.warning("quantization_config is ignored: the model is already instantiated")
    check_num_labels(model, args.objectives)
    setup_ensemble(model, args)
    setup_length_head(model, args)
    setup_gate(model, args)
    return model, model_id, revision


def setup_gate(model: Any, args: RewardConfig) -> None:
    """Give a multi-objective model the prompt gate `args.gate` trains, or keep training the one a checkpoint has."""
    if not args.objectives:
        if has_gate(model):
            raise RewardlabError("the model has a prompt gate over objective heads, but the run names no objectives")
        return
    if args.gate != NO_GATE:
        install_gate(model, args.gate_prompt_tokens)
    elif has_gate(model):
        raise RewardlabError(
            "the model has a prompt gate, but gate='none': train it with a gate loss (labels, preference, both), or "
            "start from a model without one"
        )


def setup_ensemble(model: Any, args: RewardConfig) -> None:
    """Give the model `args.ensemble_heads` heads, or keep the ensemble a loaded checkpoint already has."""
    existing = num_heads(model)
    if args.ensemble_heads > 1 and existing == 1:
        install_ensemble_head(model, args.ensemble_heads, seed=args.seed)
    elif args.ensemble_heads > 1 and existing != args.ensemble_heads:
        raise RewardlabError(
            f"the model already is an ensemble of {existing} heads, but ensemble_heads={args.ensemble_heads}"
        )
    elif existing > 1:
        logger.warning("the model is an ensemble of %d heads: training all of them", existing)
        args.ensemble_heads = existing


def setup_length_head(model: Any, args: RewardConfig) -> None:
    """Give the model a length head for `length_debias='odin'`, or keep training the one a checkpoint has."""
    if args.length_debias == ODIN:
        install_length_head(model, seed=args.seed)
    elif has_length_head(model):
        if args.length_debias is not None:
            raise RewardlabError(
                f"the model has a length head (trained with length_debias='odin'), but length_debias="
                f"{args.length_debias!r}: use 'odin', or start from a model without one"
            )
        logger.warning("the model has a length head: training it with length_debias='odin'")
        args.length_debias = ODIN


def setup_tokenizer(
    tokenizer: PreTrainedTokenizerBase | None, model: Any, model_id: str, revision: str | None, args: RewardConfig
) -> tuple[PreTrainedTokenizerBase, list[int]]:
    """The tokenizer (loaded from the model when None) with the run's eos token and chat template, and the ids
    of special tokens the chat template added."""
    if tokenizer is None:
        tokenizer = load_tokenizer(model_id, revision=revision, trust_remote_code=args.trust_remote_code)
    if args.eos_token is not None:
        set_eos_token(tokenizer, model, args.eos_token)
    added_tokens = []
    if args.chat_template_path is not None:
        added_tokens = set_chat_template(tokenizer, model, args.chat_template_path)
    return tokenizer, added_tokens


def setup_peft(model: Any, peft_config: Any, added_tokens: list[int], args: RewardConfig) -> Any:
    """LoRA (or another PEFT method) around the model, training and saving its score head."""
    if peft_config is None:
        return model
    require_peft("peft_config")
    if is_peft_model(model):
        raise RewardlabError(
            "You passed a `PeftModel` instance together with a `peft_config`: merge the adapter first, or pass "
            "the PeftModel without peft_config to keep training it"
        )
    from peft import get_peft_model, prepare_model_for_kbit_training

    quantized = getattr(model, "is_loaded_in_4bit", False) or getattr(model, "is_loaded_in_8bit", False)
    if quantized:
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=args.gradient_checkpointing)
    config = fix_peft_config(peft_config, model, added_tokens)
    model = get_peft_model(model, config, **peft_model_kwargs(args, quantized))
    model.print_trainable_parameters()
    return model


def finish_model(model: Any, tokenizer: PreTrainedTokenizerBase, args: RewardConfig) -> None:
    """Dropout off (stable rewards), the pad token the reward is read before, and no KV cache."""
    if args.disable_dropout:
        disable_dropout(model)
    set_pad_token(tokenizer, model, args.pad_token)
    # The KV cache is useless for scoring and conflicts with gradient checkpointing.
    if hasattr(model.config, "use_cache"):
        model.config.use_cache = False
