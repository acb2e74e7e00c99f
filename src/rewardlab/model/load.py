"""Build the sequence-classification reward model and its tokenizer: from an id/path/object, pad token, dropout, PEFT.

Every function here returns something plain `transformers` can save and reload; nothing wraps the model in a
rewardlab-only class, so a checkpoint never depends on rewardlab to be used.
"""

from __future__ import annotations

import copy
import importlib.util
import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from transformers import (
    MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING,
    AutoConfig,
    AutoModelForSequenceClassification,
    AutoTokenizer,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)

from rewardlab._compat import ignoring_load_keys
from rewardlab.choices import NO_GATE, ODIN
from rewardlab.errors import MissingExtraError, RewardlabError, RewardlabTypeError, first_line
from rewardlab.files import check_complete, read_run_record
from rewardlab.model.gate import CONFIG_KEY as GATE_CONFIG_KEY
from rewardlab.model.gate import GATE_KEYS, install_gate, restore_gate
from rewardlab.model.heads import (
    ENSEMBLE_HEAD_KEYS,
    install_ensemble_head,
    is_ensemble_config,
    objective_labels,
    objectives_in_config,
    restore_ensemble_head,
)
from rewardlab.model.length_head import CONFIG_KEY as LENGTH_HEAD_CONFIG_KEY
from rewardlab.model.length_head import LENGTH_HEAD_KEYS, install_length_head, restore_length_head
from rewardlab.model.parts import score_head_name

logger = logging.getLogger(__name__)


def resolve_dtype(value: Any) -> Any:
    """Accept torch dtypes, their names ('bfloat16', 'torch.float16') and 'auto'; default float32."""
    if value is None:
        return torch.float32
    if isinstance(value, torch.dtype) or value == "auto":
        return value
    name = str(value).removeprefix("torch.")
    dtype = getattr(torch, name, None)
    if not isinstance(dtype, torch.dtype):
        raise RewardlabError(f"unknown dtype {value!r}: use float32, bfloat16, float16 or auto")
    return dtype


def loading_class(name_or_path: str, new_head: bool = False, **config_kwargs: Any) -> type:
    """`AutoModelForSequenceClassification`, or the checkpoint's own class told which weights not to report:

    - an ensemble's N heads, restored next by `restore_ensemble_head`, a length head (`restore_length_head`) and
      a multi-objective model's gate (`restore_gate`);
    - with `new_head` (a base model starting reward training), the score head transformers reports as newly
      initialised and a causal LM's `lm_head` it reports as unused: both are the point of loading it, and TRL hides
      the same report.
    """
    try:
        config = AutoConfig.from_pretrained(name_or_path, **config_kwargs)
    except (OSError, ValueError):
        return AutoModelForSequenceClassification  # whose own loading call reports the problem
    model_class = MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING.get(type(config), None)
    unexpected = list(ENSEMBLE_HEAD_KEYS) if is_ensemble_config(config) else []
    if getattr(config, LENGTH_HEAD_CONFIG_KEY, False):
        unexpected += LENGTH_HEAD_KEYS
    if getattr(config, GATE_CONFIG_KEY, False):
        unexpected += GATE_KEYS
    missing = []
    if new_head:
        unexpected.append(r"^lm_head\.")
        missing.append(r"^(score|classifier)\.")
    if model_class is None or not (unexpected or missing):
        return AutoModelForSequenceClassification
    return ignoring_load_keys(model_class, unexpected, missing)


def hub_id_of(name_or_path: str) -> str:
    """How a run names its base model: the repository of a Hugging Face cache snapshot
    (`.../models--org--name/snapshots/<revision>`, a copy of `org/name`), anything else as given."""
    parts = Path(name_or_path).parts
    for i, part in enumerate(parts[:-2]):
        if part.startswith("models--") and parts[i + 1] == "snapshots":
            return part.removeprefix("models--").replace("--", "/")
    return name_or_path


def load_model(
    name_or_path: str,
    model_init_kwargs: dict[str, Any] | None = None,
    quantization_config: Any = None,
    trust_remote_code: bool = False,
    new_head: bool = False,
    objectives: Sequence[str] | None = None,
) -> PreTrainedModel:
    """Load `AutoModelForSequenceClassification` with one output (or one per objective, named in `id2label`);
    float32 unless `model_init_kwargs` names a dtype. `new_head`: the checkpoint is a base model whose score head
    training creates (see `loading_class`)."""
    if os.path.isdir(name_or_path):
        check_complete(name_or_path)
    kwargs = dict(model_init_kwargs or {})
    if quantization_config is not None:
        if "quantization_config" in kwargs:
            raise RewardlabError(
                "You set `quantization_config` both as a trainer argument and in `model_init_kwargs`: set it in one "
                "place"
            )
        kwargs["quantization_config"] = quantization_config
    outputs = len(objectives) if objectives else 1
    if "num_labels" in kwargs and kwargs["num_labels"] != outputs:
        raise RewardlabError(
            f"a reward model has num_labels={outputs} (one per objective); model_init_kwargs sets "
            f"{kwargs['num_labels']}"
        )
    if objectives:  # one head per objective, named; a one-output head in the checkpoint is replaced by a new one
        kwargs.pop("num_labels", None)
        kwargs.update(objective_labels(objectives))
        kwargs.setdefault("ignore_mismatched_sizes", True)
    else:
        kwargs["num_labels"] = 1
    kwargs["dtype"] = resolve_dtype(kwargs.pop("dtype", kwargs.pop("torch_dtype", None)))
    kwargs.setdefault("trust_remote_code", trust_remote_code)
    try:
        config_kwargs = {k: kwargs[k] for k in ("revision", "trust_remote_code", "token") if k in kwargs}
        model = loading_class(name_or_path, new_head, **config_kwargs).from_pretrained(name_or_path, **kwargs)
    except OSError as e:
        raise RewardlabError(f"cannot load model {name_or_path!r}: {first_line(e)}") from e
    except ValueError as e:
        if "Unrecognized configuration class" in str(e):
            raise RewardlabError(
                f"model {name_or_path!r} has no sequence-classification variant in transformers: {first_line(e)}"
            ) from e
        raise
    # Plain transformers loaded the ensemble's mean head (the quality head, the objective heads) only; rewardlab also
    # wants every head, and the gate.
    restore_ensemble_head(model, name_or_path)
    restore_length_head(model, name_or_path)
    restore_gate(model, name_or_path)
    return model


def load_tokenizer(
    name_or_path: str, revision: str | None = None, trust_remote_code: bool = False
) -> PreTrainedTokenizerBase:
    try:
        return AutoTokenizer.from_pretrained(name_or_path, revision=revision, trust_remote_code=trust_remote_code)
    except OSError as e:
        raise RewardlabError(f"cannot load tokenizer {name_or_path!r}: {first_line(e)}") from e


def check_num_labels(model: PreTrainedModel, objectives: Sequence[str] | None = None) -> None:
    """A reward model has one output, or one per objective (`id2label` naming them in order)."""
    config = getattr(model, "config", None)
    found = getattr(config, "num_labels", None)
    if not objectives:
        if found != 1:
            raise RewardlabError(
                f"the model has `num_labels={found}`, but reward models require `num_labels=1` (one scalar per "
                "sequence): load it with num_labels=1, or pass its name/path as a string and rewardlab will"
            )
        return
    if found != len(objectives):
        raise RewardlabError(
            f"the model has `num_labels={found}`, but the run has {len(objectives)} objectives "
            f"({', '.join(objectives)}): pass its name/path as a string and rewardlab loads it with one head each"
        )
    names = objectives_in_config(config)
    if names != list(objectives) and any(not name.startswith("LABEL_") for name in names):
        raise RewardlabError(f"the model's heads are {', '.join(names)}, not the run's objectives")
    for key, value in objective_labels(objectives).items():
        setattr(config, key, value)


def set_eos_token(tokenizer: PreTrainedTokenizerBase, model: PreTrainedModel, eos_token: str) -> None:
    if eos_token not in tokenizer.get_vocab():
        raise RewardlabError(
            f"The specified `eos_token` ({eos_token!r}) is not found in the vocabulary of the tokenizer "
            f"({type(tokenizer).__name__}): choose a token that exists"
        )
    tokenizer.eos_token = eos_token
    model.config.get_text_config().eos_token_id = tokenizer.eos_token_id


def set_pad_token(tokenizer: PreTrainedTokenizerBase, model: PreTrainedModel, pad_token: str | None = None) -> None:
    """Pad token: the given one, else the tokenizer's, else eos. The model config gets its id, because
    `*ForSequenceClassification` reads the reward at the rightmost token that is not `pad_token_id`."""
    pad = pad_token or tokenizer.pad_token or tokenizer.eos_token
    if pad is None:
        raise RewardlabError(
            "the tokenizer has neither a pad token nor an eos token: set tokenizer.pad_token "
            "(or RewardConfig.eos_token)"
        )
    if pad not in tokenizer.get_vocab():
        raise RewardlabError(
            f"The specified `pad_token` ({pad!r}) is not found in the vocabulary of the tokenizer "
            f"({type(tokenizer).__name__}): "
            "choose a token that exists, or add it and resize the model's embeddings"
        )
    tokenizer.pad_token = pad
    model.config.get_text_config().pad_token_id = tokenizer.pad_token_id
    model.config.pad_token_id = tokenizer.pad_token_id


def set_chat_template(tokenizer: PreTrainedTokenizerBase, model: PreTrainedModel, chat_template_path: str) -> list[int]:
    """Set the chat template from a Jinja file, or copy it (with its special tokens) from another tokenizer.

    Returns the ids of tokens that had to be added; the embedding matrix grows to hold them.
    """
    if os.path.isfile(chat_template_path) and chat_template_path.endswith((".jinja", ".j2")):
        tokenizer.chat_template = Path(chat_template_path).read_text(encoding="utf-8")
        return []
    source = load_tokenizer(chat_template_path)
    if not source.chat_template:
        raise RewardlabError(f"chat_template_path {chat_template_path!r} has no chat template")
    vocab = tokenizer.get_vocab()
    missing = [t for t in source.all_special_tokens if t not in vocab]
    if missing:
        tokenizer.add_special_tokens({"additional_special_tokens": missing}, replace_extra_special_tokens=False)
    tokenizer.chat_template = source.chat_template
    if source.eos_token:
        set_eos_token(tokenizer, model, source.eos_token)
    if len(tokenizer) > model.get_input_embeddings().weight.shape[0]:
        model.resize_token_embeddings(len(tokenizer), pad_to_multiple_of=64)
    added = tokenizer.convert_tokens_to_ids(missing)
    if added:
        logger.info("Chat template from %s added %d special tokens: %s", chat_template_path, len(added), missing)
    return added


def disable_dropout(model: torch.nn.Module) -> None:
    for module in model.modules():
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.0


def fix_peft_config(peft_config: Any, model: torch.nn.Module, added_token_ids: list[int] = ()) -> Any:
    """Return a copy of `peft_config` that trains (and saves) the score head.

    With the default CAUSAL_LM task type PEFT wraps the model for generation, and without the head in
    `modules_to_save` the randomly initialised head stays frozen and is not saved, so a reloaded model scores at
    random. Both are fixed here and each change is logged.
    """
    require_peft("peft_config")
    from peft import PeftConfig, TaskType

    if not isinstance(peft_config, PeftConfig):
        raise RewardlabTypeError(
            f"`peft_config` must be a `peft.PeftConfig` instance (e.g. `peft.LoraConfig`), got "
            f"{type(peft_config).__name__}"
        )
    config = copy.deepcopy(peft_config)
    if config.task_type != TaskType.SEQ_CLS:
        logger.warning("peft_config.task_type was %s; set to SEQ_CLS for a reward model", config.task_type)
        config.task_type = TaskType.SEQ_CLS
    head = score_head_name(model)
    if hasattr(config, "modules_to_save"):
        modules = list(config.modules_to_save or [])
        if head not in modules:
            logger.warning("Added the score head '%s' to peft_config.modules_to_save so it is trained and saved", head)
            modules.append(head)
        config.modules_to_save = modules
    if added_token_ids and hasattr(config, "trainable_token_indices"):
        # New special tokens from a cloned chat template start untrained; make just those embedding rows trainable.
        indices = config.trainable_token_indices
        indices = dict(indices) if isinstance(indices, dict) else ({"embed_tokens": list(indices)} if indices else {})
        layer = next(iter(indices), "embed_tokens")
        indices[layer] = sorted(set(indices.get(layer, [])) | set(added_token_ids))
        config.trainable_token_indices = indices
    return config


def require_peft(purpose: str) -> None:
    """Raise `MissingExtraError` (an ImportError, as TRL raises) when `peft` is not installed."""
    if importlib.util.find_spec("peft") is None:
        raise MissingExtraError(f"{purpose} needs the peft package: pip install 'rewardlab[peft]'")


def is_peft_model(model: Any) -> bool:
    """Whether `model` is a `peft.PeftModel` (False when peft is not installed)."""
    try:
        from peft import PeftModel
    except ImportError:
        return False
    return isinstance(model, PeftModel)


def is_adapter_dir(path: str) -> bool:
    return os.path.isfile(os.path.join(path, "adapter_config.json"))


def saved_objectives(path: str) -> list[str] | None:
    """The objectives a saved full checkpoint has a head for (its config's `id2label`), or None for one output."""
    try:
        return objectives_in_config(AutoConfig.from_pretrained(path))
    except (OSError, ValueError):
        return None


def load_trained_model(
    path: str, dtype: Any = None, base_model: str | None = None
) -> tuple[torch.nn.Module, PreTrainedTokenizerBase]:
    """Load a saved reward model (a full checkpoint or a LoRA adapter directory with its score head) and tokenizer."""
    check_complete(path)
    tokenizer = load_tokenizer(path)
    trained = (read_run_record(path) or {}).get("args", {})
    if not is_adapter_dir(path):
        model = load_model(path, {"dtype": dtype}, objectives=saved_objectives(path) or trained.get("objectives"))
    else:
        require_peft(f"the LoRA adapter in {path}")
        from peft import PeftModel

        with open(os.path.join(path, "adapter_config.json"), encoding="utf-8") as f:
            base = base_model or json.load(f).get("base_model_name_or_path")
        if not base:
            raise RewardlabError(f"{path}/adapter_config.json names no base model: pass base_model")
        # A multi-objective adapter's head has an output per objective: the base model gets as many to load it into.
        model = load_model(base, {"dtype": dtype}, objectives=trained.get("objectives"))
        # The adapter's saved head may be an ensemble or have a length head: give the base model one to load it into.
        if (trained.get("ensemble_heads") or 1) > 1:
            install_ensemble_head(model, trained["ensemble_heads"])
        if trained.get("length_debias") == ODIN:
            install_length_head(model)
        if trained.get("objectives") and trained.get("gate", NO_GATE) != NO_GATE:
            install_gate(model, trained.get("gate_prompt_tokens"))
        model = PeftModel.from_pretrained(model, path)
    if tokenizer.pad_token_id is not None:
        model.config.pad_token_id = tokenizer.pad_token_id
        model.config.get_text_config().pad_token_id = tokenizer.pad_token_id
    model.eval()
    return model, tokenizer
