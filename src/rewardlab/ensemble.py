"""Reward-model ensembles: N linear score heads on one shared trunk.

The heads see the same final hidden state h, so their mean `(1/N) sum_k (w_k . h + b_k)` is itself one linear head,
`mean(w) . h + mean(b)`. The checkpoint stores that mean as the ordinary `num_labels=1` head (`score.weight`, or
`classifier.weight`/`.bias` for encoders): plain `transformers`, `pipeline("text-classification")`, vLLM or any RL
trainer loading the checkpoint get the ensemble's mean reward exactly, with no rewardlab code. The N heads are stored
next to it (`<head>.heads`, `<head>.heads_bias`), which plain `transformers` reports as unused keys and ignores, and
`config.rewardlab_ensemble_heads = N` tells rewardlab to load them, so `RewardModel` also gives each reward's standard
deviation across heads, its uncertainty.

Diversity between heads comes from their independent random initialisations and, optionally, from bootstrap
resampling: each head weighs each training example by its own Poisson(1) draw (the online bootstrap of Oza & Russell),
fixed per example by hashing its token ids, so an example keeps its weights in every epoch and on every process.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from rewardlab.errors import RewardlabError

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
    from rewardlab.model import score_head_name
    from rewardlab.rewards import unwrap_reward_model

    inner = unwrap_reward_model(model)
    return inner, score_head_name(inner)


def num_heads(model: nn.Module) -> int:
    """How many reward heads `model` has: N for an ensemble, 1 for an ordinary reward model."""
    inner, name = _head_owner(model)
    head = getattr(inner, name)
    if hasattr(head, "modules_to_save"):  # PEFT's wrapper around the trained copy of the head
        head = head.modules_to_save["default"]
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


def ensemble_loading_class(name_or_path: str, **config_kwargs) -> type | None:
    """For an ensemble checkpoint: its `*ForSequenceClassification` class, told to expect the heads' keys.

    Plain `from_pretrained` loads the mean head and reports the N heads as unexpected keys ("not ok if you expect
    identical arch"), which is right for plain transformers but misleading when rewardlab restores them next. None
    for any other checkpoint (or a class transformers does not map), which then loads as usual.
    """
    from transformers import AutoConfig, AutoModelForSequenceClassification

    try:
        config = AutoConfig.from_pretrained(name_or_path, **config_kwargs)
    except (OSError, ValueError):
        return None  # the real loading call reports the problem
    model_class = AutoModelForSequenceClassification._model_mapping.get(type(config), None)
    if not getattr(config, CONFIG_KEY, None) or model_class is None:
        return None
    ignored = [r"\.heads$", r"\.heads_bias$"]
    return type(model_class.__name__, (model_class,), {"_keys_to_ignore_on_load_unexpected": ignored})


def _checkpoint_file(name_or_path: str, filename: str) -> str | None:
    """A file of a local checkpoint directory or of a hub model (from the cache, downloading it if needed)."""
    if os.path.isdir(name_or_path):
        path = os.path.join(name_or_path, filename)
        return path if os.path.isfile(path) else None
    from transformers.utils import cached_file

    return cached_file(name_or_path, filename, _raise_exceptions_for_missing_entries=False)


def _weights_file(name_or_path: str, key: str) -> str:
    index = _checkpoint_file(name_or_path, "model.safetensors.index.json")
    if index is not None:
        with open(index, encoding="utf-8") as f:
            filename = json.load(f)["weight_map"][key]
    else:
        filename = "model.safetensors"
    path = _checkpoint_file(name_or_path, filename)
    if path is None:
        raise OSError(f"no {filename}")
    return path


def restore_ensemble_head(model: nn.Module, directory: str) -> None:
    """Give a model loaded by plain `from_pretrained` (which kept only the mean head) its saved ensemble heads back.

    Does nothing for an ordinary checkpoint (no `rewardlab_ensemble_heads` in its config).
    """
    n = getattr(model.config, CONFIG_KEY, None)
    if not n:
        return
    from safetensors import safe_open

    inner, name = _head_owner(model)
    head = getattr(inner, name)
    tensors = {}
    for suffix in ("heads", "heads_bias"):  # a head without bias (causal LMs) saves no heads_bias
        key = f"{name}.{suffix}"
        try:
            with safe_open(_weights_file(directory, key), framework="pt") as f:
                if key in f.keys():  # noqa: SIM118 (safe_open has no __contains__)
                    tensors[suffix] = f.get_tensor(key)
        except KeyError:  # not in the shard index
            continue
        except OSError as e:
            raise RewardlabError(f"{directory} is an ensemble of {n} heads but {key} cannot be read ({e})") from None
    if "heads" not in tensors or tensors["heads"].shape[0] != n:
        raise RewardlabError(f"{directory}: config says {n} ensemble heads, but the weights hold no `{name}.heads`")
    like = head.weight
    bias = tensors.get("heads_bias")
    setattr(
        inner,
        name,
        EnsembleHead(
            tensors["heads"].to(device=like.device, dtype=like.dtype),
            None if bias is None else bias.to(device=like.device, dtype=like.dtype),
        ),
    )


def head_mean(rewards: torch.Tensor) -> torch.Tensor:
    """The ensemble's reward: the mean over heads of rewards shaped (..., N); an ordinary model's (...) unchanged."""
    return rewards.mean(-1) if rewards.dim() >= 2 else rewards


def example_key(sequences: Sequence[Sequence[int]]) -> bytes:
    """Bytes identifying a tokenized example (its sequences, in order), for per-example bootstrap weights."""
    parts = [np.asarray(list(s) + [-1], dtype=np.int64) for s in sequences]
    return np.concatenate(parts).tobytes()


def bootstrap_weights(keys: Sequence[bytes], n: int, seed: int) -> torch.Tensor:
    """Poisson(1) weights, shape (len(keys), n): how many times each head sees each example in its resample.

    Each example's draws depend only on its key, `n` and `seed`, not on batch order, epoch or process.
    """
    rows = []
    for key in keys:
        digest = int.from_bytes(hashlib.blake2b(key, digest_size=8).digest(), "little")
        rows.append(np.random.default_rng([seed, digest]).poisson(1.0, n))
    return torch.tensor(np.array(rows), dtype=torch.float32).reshape(len(keys), n)


def pair_uncertainty(rewards_chosen: np.ndarray, rewards_rejected: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For (P, N) per-head rewards of P pairs: each pair's uncertainty, the std across heads of its reward difference
    `r_chosen - r_rejected`, and whether the ensemble's mean ranks it wrong (ties count as wrong)."""
    rc, rr = np.asarray(rewards_chosen, dtype=np.float64), np.asarray(rewards_rejected, dtype=np.float64)
    return (rc - rr).std(axis=1, ddof=1), rc.mean(1) <= rr.mean(1)


def uncertainty_metrics(std: np.ndarray, wrong: np.ndarray) -> dict[str, float]:
    """How an ensemble's disagreement relates to its mistakes, given each pair's uncertainty and whether it is wrong
    (see `pair_uncertainty`; pairs with a NaN uncertainty, e.g. dropped for length, are left out).

    Returns the mean uncertainty of the pairs ranked right and of those ranked wrong, and the AUROC of the
    uncertainty as a detector of wrong pairs (0.5: no relation; 1: every wrong pair is more uncertain than every
    right one; NaN when there are no right or no wrong pairs).
    """
    std, wrong = np.asarray(std, dtype=np.float64), np.asarray(wrong, dtype=bool)
    keep = np.isfinite(std)
    std, wrong = std[keep], wrong[keep]
    return {
        "ensemble_std_right": float(std[~wrong].mean()) if (~wrong).any() else float("nan"),
        "ensemble_std_wrong": float(std[wrong].mean()) if wrong.any() else float("nan"),
        "ensemble_std_auroc": auroc(std, wrong),
    }


def auroc(scores: np.ndarray, positive: np.ndarray) -> float:
    """P(score of a random positive > score of a random negative), ties counting one half (Mann-Whitney U)."""
    scores, positive = np.asarray(scores, dtype=np.float64), np.asarray(positive, dtype=bool)
    n_pos, n_neg = int(positive.sum()), int((~positive).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    _, inverse, counts = np.unique(scores, return_inverse=True, return_counts=True)
    ranks = (np.cumsum(counts) - (counts - 1) / 2)[inverse]  # 1-based ranks, ties sharing their average
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


class BootstrapCollator:
    """Wrap a collator so that each batch (and each of its micro-batches) carries `bootstrap_weights` (B, N): the
    Poisson(1) weight of every example for every head (`bootstrap_weights`), keyed on its token ids; (B,) for a
    single head, shaped like its rewards."""

    def __init__(self, collator, num_heads: int, seed: int):
        self.collator, self.num_heads, self.seed = collator, num_heads, seed

    def __call__(self, examples: list[dict]) -> dict:
        batch = self.collator(examples)
        keys = [
            example_key(e["response_ids"] if "response_ids" in e else [e["chosen_ids"], e["rejected_ids"]])
            for e in examples
        ]
        weights = bootstrap_weights(keys, self.num_heads, self.seed)
        if self.num_heads == 1:
            weights = weights[:, 0]
        batch["bootstrap_weights"] = weights
        for micro in batch.get("micro_batches", ()):
            micro["bootstrap_weights"] = weights[micro["example_index"]]
        return batch
