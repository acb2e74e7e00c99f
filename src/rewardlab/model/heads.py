"""Reward-model ensembles: N linear score heads on one shared trunk.

The heads see the same final hidden state h, so their mean `(1/N) sum_k (w_k . h + b_k)` is itself one linear head,
`mean(w) . h + mean(b)`. The checkpoint stores that mean as the ordinary `num_labels=1` head (`score.weight`, or
`classifier.weight`/`.bias` for encoders): plain `transformers`, `pipeline("text-classification")`, vLLM or any RL
trainer loading the checkpoint get the ensemble's mean reward exactly, with no rewardlab code. The N heads are stored
next to it (`<head>.heads`, `<head>.heads_bias`), which plain `transformers` reports as unused keys and ignores, and
`config.rewardlab_ensemble_heads = N` tells rewardlab to load them, so `RewardModel` also gives each reward's standard
deviation across heads, its uncertainty.

Diversity between heads comes from their independent random initialisations and, optionally, from bootstrap
resampling (`rewardlab.train.bagging`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from rewardlab._compat import checkpoint_file
from rewardlab.errors import RewardlabError
from rewardlab.model.parts import score_head_name, unwrap_reward_model

CONFIG_KEY = "rewardlab_ensemble_heads"


class EnsembleHead(nn.Module):
    """N linear heads `in_features -> 1`, evaluated together: the output's last dimension is N.

    `weight` (1, in_features) and `bias` (1,) are buffers kept equal to the heads' mean whenever the state dict is
    read, so a saved checkpoint holds the single head plain `transformers` loads.
    """

    def __init__(self, heads: torch.Tensor, heads_bias: torch.Tensor | None = None):
        super().__init__()
        self.heads = nn.Parameter(heads)
        self.heads_bias = None if heads_bias is None else nn.Parameter(heads_bias)
        self.register_buffer("weight", heads.detach().mean(0, keepdim=True).clone())
        if heads_bias is not None:
            self.register_buffer("bias", heads_bias.detach().mean(0, keepdim=True).clone())
        else:
            self.bias = None

    @property
    def num_heads(self) -> int:
        return self.heads.shape[0]

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return F.linear(hidden, self.heads, self.heads_bias)

    def _save_to_state_dict(self, destination, prefix, keep_vars):
        # Every save (checkpoints, save_pretrained, state_dict) refreshes the mean head first.
        with torch.no_grad():
            self.weight.copy_(self.heads.mean(0, keepdim=True))
            if self.bias is not None:
                self.bias.copy_(self.heads_bias.mean(0, keepdim=True))
        super()._save_to_state_dict(destination, prefix, keep_vars)

    def extra_repr(self) -> str:
        return f"num_heads={self.num_heads}, in_features={self.heads.shape[1]}, bias={self.heads_bias is not None}"


def _head_owner(model: nn.Module) -> tuple[nn.Module, str]:
    """The `*ForSequenceClassification` module holding the score head, and the head's attribute name."""
    inner = unwrap_reward_model(model)
    return inner, score_head_name(inner)


def trained_head(model: nn.Module) -> nn.Module:
    """The score head that trains and scores: the model's own, or PEFT's trained copy of it."""
    inner, name = _head_owner(model)
    head = getattr(inner, name)
    if hasattr(head, "modules_to_save"):  # PEFT's wrapper around the trained copy of the head
        head = head.modules_to_save["default"]
    return head


def num_heads(model: nn.Module) -> int:
    """How many reward heads `model` has: N for an ensemble, 1 for an ordinary reward model."""
    head = trained_head(model)
    return head.num_heads if isinstance(head, EnsembleHead) else 1


def install_ensemble_head(model: nn.Module, n: int, seed: int = 0) -> EnsembleHead:
    """Replace the model's `num_labels=1` linear head by `n` freshly initialised heads (different random draws from
    the model's own initialisation, normal with std `config.initializer_range`; biases start at 0)."""
    if n < 2:
        raise RewardlabError(f"an ensemble needs at least 2 heads, got {n}")
    inner, name = _head_owner(model)
    head = getattr(inner, name)
    if isinstance(head, EnsembleHead):
        raise RewardlabError(f"the model already has an ensemble of {head.num_heads} heads")
    if not isinstance(head, nn.Linear) or head.out_features != 1:
        raise RewardlabError(f"the score head `{name}` must be a Linear layer with one output, got {head}")
    std = getattr(inner.config.get_text_config(), "initializer_range", 0.02)
    generator = torch.Generator().manual_seed(seed)
    heads = torch.randn(n, head.in_features, generator=generator) * std
    heads = heads.to(device=head.weight.device, dtype=head.weight.dtype)
    bias = None if head.bias is None else torch.zeros(n, device=head.weight.device, dtype=head.weight.dtype)
    ensemble = EnsembleHead(heads, bias)
    setattr(inner, name, ensemble)
    inner.config.rewardlab_ensemble_heads = n
    return ensemble


# The keys of an ensemble checkpoint's N heads. Plain `from_pretrained` loads their mean head and reports these as
# unexpected ("not ok if you expect identical arch"), right for plain transformers but misleading when rewardlab
# restores them next (`restore_ensemble_head`).
ENSEMBLE_HEAD_KEYS = (r"\.heads$", r"\.heads_bias$")


def is_ensemble_config(config: Any) -> bool:
    """Whether a checkpoint's config says it holds an ensemble of heads."""
    return bool(getattr(config, CONFIG_KEY, None))


def _weights_file(name_or_path: str, key: str) -> str:
    index = checkpoint_file(name_or_path, "model.safetensors.index.json")
    if index is not None:
        with open(index, encoding="utf-8") as f:
            filename = json.load(f)["weight_map"][key]
    else:
        filename = "model.safetensors"
    path = checkpoint_file(name_or_path, filename)
    if path is None:
        raise OSError(f"no {filename}")
    return path


def read_saved_tensors(directory: str, keys: list[str]) -> dict[str, torch.Tensor]:
    """The tensors of `keys` that a saved checkpoint (one safetensors file or a sharded index) holds."""
    from safetensors import safe_open

    tensors = {}
    for key in keys:
        try:
            with safe_open(_weights_file(directory, key), framework="pt") as f:
                if key in f.keys():  # noqa: SIM118 (safe_open has no __contains__)
                    tensors[key] = f.get_tensor(key)
        except KeyError:  # not in the shard index
            continue
        except OSError as e:
            raise RewardlabError(f"{directory}: {key} cannot be read ({e})") from None
    return tensors


def saved_head_tensors(
    model: nn.Module, directory: str, names: Sequence[str], what: str
) -> tuple[nn.Module, str, nn.Module, dict[str, torch.Tensor]]:
    """For a head saved with tensors of its own next to the plain head's (a length head's `length_weight`, a gate's
    `gate_weight`, ...): the module holding the score head, the head's attribute name, the head as plain
    `from_pretrained` loaded it, and the saved tensors `names` (those found), on the head's device and dtype. The
    first of `names` must be saved: a `RewardlabError` naming `what` otherwise."""
    inner, name = _head_owner(model)
    head = getattr(inner, name)
    saved = read_saved_tensors(directory, [f"{name}.{key}" for key in names])
    if f"{name}.{names[0]}" not in saved:
        raise RewardlabError(f"{directory}: config says it has {what}, but no `{name}.{names[0]}` is saved")
    like = head.weight
    tensors = {
        key: saved[f"{name}.{key}"].to(device=like.device, dtype=like.dtype)
        for key in names
        if f"{name}.{key}" in saved
    }
    return inner, name, head, tensors


def restore_ensemble_head(model: nn.Module, directory: str) -> None:
    """Give a model loaded by plain `from_pretrained` (which kept only the mean head) its saved ensemble heads back.

    Does nothing for an ordinary checkpoint (no `rewardlab_ensemble_heads` in its config).
    """
    n = getattr(model.config, CONFIG_KEY, None)
    if not n:
        return
    inner, name = _head_owner(model)
    head = getattr(inner, name)
    # A head without bias (causal LMs) saves no heads_bias.
    saved = read_saved_tensors(directory, [f"{name}.heads", f"{name}.heads_bias"])
    heads, bias = saved.get(f"{name}.heads"), saved.get(f"{name}.heads_bias")
    if heads is None or heads.shape[0] != n:
        raise RewardlabError(f"{directory}: config says {n} ensemble heads, but the weights hold no `{name}.heads`")
    like = head.weight
    setattr(
        inner,
        name,
        EnsembleHead(
            heads.to(device=like.device, dtype=like.dtype),
            None if bias is None else bias.to(device=like.device, dtype=like.dtype),
        ),
    )


def objective_names(model: nn.Module) -> list[str] | None:
    """The objectives of a multi-objective reward model, one per output in head order (its `id2label`), or None for
    a model with one output."""
    return objectives_in_config(unwrap_reward_model(model).config)


def objectives_in_config(config: Any) -> list[str] | None:
    """`objective_names` read from a model's config (a loaded model's, or a checkpoint's `AutoConfig`)."""
    if getattr(config, "num_labels", 1) == 1:
        return None
    names = getattr(config, "id2label", None) or {}
    return [str(names.get(k, names.get(str(k), f"LABEL_{k}"))) for k in range(config.num_labels)]


def objective_labels(objectives: Sequence[str]) -> dict[str, dict]:
    """The config fields that name a model's heads after its objectives, in head order."""
    return {"id2label": dict(enumerate(objectives)), "label2id": {name: k for k, name in enumerate(objectives)}}
