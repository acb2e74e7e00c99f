"""The flags of a training run beyond `RewardConfig`, as TRL's reward script has them: where the data comes from
(`ScriptArguments`) and how the model is loaded and adapted (`ModelArguments`), with the configs they make (LoRA,
quantization, `from_pretrained` arguments). `rewardlab train` parses them; `rewardlab.train.run` uses them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from rewardlab.errors import UsageError
from rewardlab.model.load import require_peft


@dataclass
class ScriptArguments:
    """Where the preference data comes from, and which part of it trains and which evaluates."""

    dataset_name: str | None = field(
        default=None,
        metadata={
            "help": "The preference data: a file (.jsonl, .jsonl.gz, .json, .json.gz, .parquet, .csv), a directory "
            "(written by save_to_disk, or holding data files named after their splits, e.g. train.jsonl and "
            "test.jsonl), or a Hugging Face Hub dataset id. Required (or a `datasets:` list in --config). TRL's "
            "--dataset_name works too.",
            "flag": "--dataset",
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
    mapping: str | None = field(
        default=None,
        metadata={
            "help": "How rows in a third-party layout become pairs, as `rewardlab eval --mapping` reads them: a preset "
            "(hh-rlhf, rmb, alpaca-eval, ultrafeedback, rewardbench, rm-bench, judgebench), a 'key=value,...' string "
            "or a JSON/YAML file. Unset: rows in one of the trainer's formats."
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
            "fails for some architectures (transformers#22482); TRL's flag."
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
            "AutoModelForSequenceClassification and num_labels=1. Required. TRL's --model_name_or_path works too.",
            "flag": "--model",
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
