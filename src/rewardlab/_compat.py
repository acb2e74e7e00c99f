"""Every touch of another library's private API, and every difference between supported versions, in one place,
each with the condition that makes it removable.

rewardlab builds on `transformers` and `torch` rather than forking them; where a public API does not (yet) say what
is needed, the private one is used here and only here, and so is any check of which version's signature is
installed, so that an upgrade starts by reading this file.
`tests/test_compat.py` checks that each of these still exists in the installed versions, so one that goes away
fails a test instead of a user's run.
"""

from __future__ import annotations

import functools
import inspect
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

# `transformers.Trainer` methods that `rewardlab.train.RewardTrainer` overrides or calls. They are private in
# transformers, but overriding them is how every Trainer subclass (TRL's included) adds per-step behaviour:
# - `_set_signature_columns_if_needed`: keep the prepared columns (`chosen_ids`, ...) that `forward` does not name;
# - `_prepare_inputs`: move a batch to the device in `prediction_step`, as `Trainer` itself does;
# - `_save_checkpoint`, `_get_output_dir`: mark a checkpoint directory as incomplete while it is written;
# - `_load_callback_state`: restore the counts of pairs and tokens seen when resuming.
# Removable when transformers offers public hooks for these (none is planned as of 5.24).
TRAINER_HOOKS = (
    "_set_signature_columns_if_needed",
    "_prepare_inputs",
    "_save_checkpoint",
    "_get_output_dir",
    "_load_callback_state",
)


def dict_fields_of(arguments_class: type) -> list[str]:
    """The `TrainingArguments` fields that accept a JSON string on the command line (TRL extends the same list).

    Removable when transformers makes `_VALID_DICT_FIELDS` public or accepts dicts for every `dict`-typed field.
    """
    return list(arguments_class._VALID_DICT_FIELDS)


def attention_implementation(model: torch.nn.Module) -> str | None:
    """The `attn_implementation` a loaded model runs (there is a public setter, `set_attn_implementation`, but no
    getter). Removable when `PreTrainedConfig` gets a public `attn_implementation` property."""
    return getattr(model.config, "_attn_implementation", None)


def name_or_path(model: torch.nn.Module) -> str | None:
    """The hub id or directory a model was loaded from, as `from_pretrained` records it in its config (None or "" for
    a model built from a config). Removable when `PreTrainedConfig` gets a public `name_or_path` property."""
    return getattr(model.config, "_name_or_path", None)


def set_signature_columns(trainer: Any, columns: list[str]) -> None:
    """Make `Trainer` keep the dataset `columns` (it drops those its model's `forward` does not name), for
    `_set_signature_columns_if_needed` to call. Removable when `Trainer` takes the columns to keep as an argument
    (`remove_unused_columns` only switches the dropping off for every column)."""
    if trainer._signature_columns is None:
        trainer._signature_columns = columns


def ignore_in_ddp(model: torch.nn.Module, names: list[str]) -> None:
    """Tell `DistributedDataParallel` not to broadcast or reduce the parameters and buffers `names` of `model`.

    `_ddp_params_and_buffers_to_ignore` is the attribute DDP reads (there is a static
    `DistributedDataParallel._set_params_and_buffers_to_ignore_for_model` that sets it, private as well).
    Removable when DDP takes the names as a constructor argument reachable through `accelerate`.
    """
    model._ddp_params_and_buffers_to_ignore = names


def checkpoint_file(name_or_path: str, filename: str) -> str | None:
    """A file of a local model directory or a hub model (from the cache, downloading it if needed), or None when the
    model has no such file.

    `transformers.utils.cached_file` resolves revisions, tokens and offline mode as `from_pretrained` does; only its
    private `_raise_exceptions_for_missing_entries` turns "no such file" into None instead of an exception.
    Removable when `cached_file` has a public equivalent.
    """
    from transformers.utils import cached_file

    return cached_file(name_or_path, filename, _raise_exceptions_for_missing_entries=False)


def ignoring_load_keys(model_class: type, unexpected: list[str] = (), missing: list[str] = ()) -> type:
    """A subclass of `model_class` (same name) whose `from_pretrained` does not report the checkpoint's weights
    matching `unexpected` as unused, nor the model's weights matching `missing` as newly initialised.

    `_keys_to_ignore_on_load_unexpected` / `_missing` are the class attributes transformers' own models use for
    this. Removable when `from_pretrained` accepts the patterns as an argument.
    """
    ignored = {
        "_keys_to_ignore_on_load_unexpected": [*(model_class._keys_to_ignore_on_load_unexpected or []), *unexpected],
        "_keys_to_ignore_on_load_missing": [*(model_class._keys_to_ignore_on_load_missing or []), *missing],
    }
    return type(model_class.__name__, (model_class,), ignored)


@functools.cache
def varlen_attn_takes_enable_gqa() -> bool:
    """Whether `torch.nn.attention.varlen.varlen_attn` has `enable_gqa` (torch 2.13 added it). Before that, keys and
    values with fewer heads than the queries are repeated to the query heads first, at the cost of their memory.
    Removable when rewardlab's torch floor is 2.13."""
    from torch.nn.attention.varlen import varlen_attn

    return "enable_gqa" in inspect.signature(varlen_attn).parameters


def check_installed_versions() -> list[str]:
    """What of the above is missing from the installed libraries (empty when everything is there)."""
    from transformers import PreTrainedModel, Trainer, TrainingArguments
    from transformers.configuration_utils import PretrainedConfig

    missing = [f"transformers.Trainer.{name}" for name in TRAINER_HOOKS if not hasattr(Trainer, name)]
    if not hasattr(TrainingArguments, "_VALID_DICT_FIELDS"):
        missing.append("transformers.TrainingArguments._VALID_DICT_FIELDS")
    for name in ("_attn_implementation", "_name_or_path"):
        if not hasattr(PretrainedConfig(), name):
            missing.append(f"transformers.PretrainedConfig.{name}")
    if "self._signature_columns" not in inspect.getsource(Trainer):
        missing.append("transformers.Trainer._signature_columns")
    from torch.nn.parallel import DistributedDataParallel

    if "_ddp_params_and_buffers_to_ignore" not in inspect.getsource(DistributedDataParallel):
        missing.append("torch.nn.parallel.DistributedDataParallel reads _ddp_params_and_buffers_to_ignore")
    for name in ("_keys_to_ignore_on_load_unexpected", "_keys_to_ignore_on_load_missing"):
        if not hasattr(PreTrainedModel, name):
            missing.append(f"transformers.PreTrainedModel.{name}")
    return missing
