"""The per-pair arrays every evaluation metric takes, checked and aligned, and the notation they share.

Notation used in every docstring of `rewardlab.metrics`: an evaluation set of `N` pairs; `r_c` and `r_r` are the
rewards of the chosen and the rejected response of a pair; `d = r_c − r_r` is the pair's reward margin;
`σ(x) = 1 / (1 + exp(−x))`; `p = σ(d)` is the model's probability that the chosen response wins and
`q = 1 − p = σ(−d)`.

Dropped pairs: a reward that is NaN (or ±inf) marks an item the scorer could not score (too long, failed). Such a
pair is left out of every metric and counted in `n_dropped`; it is never averaged in. `n` is the number of evaluated
pairs (both rewards finite) and every mean is over those `n` pairs.

Inputs are whole numpy arrays (or sequences), outputs plain Python numbers, lists and dicts, so they serialise with
`json.dumps` as they are. NaN appears only where a value is undefined (the accuracy of zero pairs, the correlation of
constant data, the mean prediction of an empty reliability bin); `json_safe` turns those into `None` for strict JSON.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

from rewardlab.errors import RewardlabError
from rewardlab.losses import pair_losses

SECTION_WEIGHTINGS = ("examples", "uniform")
LENGTH_GROUPS = ("chosen_longer", "chosen_shorter", "equal_length")


def log_loss_terms(x: np.ndarray) -> np.ndarray:
    """Per-pair `−log σ(x)` of margins `x` (reward margins less any dataset margin), as float64: the Bradley–Terry
    term of `rewardlab.losses.pair_losses` itself, exact for any |x| (no overflow to inf, no log(0))."""
    x = torch.as_tensor(np.asarray(x, dtype=np.float64))
    return pair_losses(x, torch.zeros((), dtype=torch.float64)).numpy()


def check_positive_int(value: Any, name: str, minimum: int = 1) -> int:
    """`value` as an int when it is an integer (not a bool) of at least `minimum`, else a `RewardlabError`."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        kind = "positive" if minimum == 1 else "non-negative" if minimum == 0 else f">= {minimum}"
        raise RewardlabError(f"{name} must be a {kind} integer, got {value!r}")
    return int(value)


def ratio(numerator: float, denominator: float) -> float:
    return numerator / denominator if denominator else math.nan


def as_vector(values: Any, name: str) -> np.ndarray:
    try:
        array = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as e:
        raise RewardlabError(f"{name} must be numbers: {e}") from None
    if array.ndim != 1:
        raise RewardlabError(f"{name} must be a 1-D array (one value per pair), got shape {array.shape}")
    return array


def check_same_length(reference: np.ndarray, array: np.ndarray, name: str) -> None:
    if len(array) != len(reference):
        raise RewardlabError(
            f"{name} has {len(array)} values but rewards_chosen has {len(reference)}; give one per pair"
        )


def evaluated_pairs(rewards_chosen: Any, rewards_rejected: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Both reward vectors and the mask of evaluated pairs (both rewards finite)."""
    rc = as_vector(rewards_chosen, "rewards_chosen")
    rr = as_vector(rewards_rejected, "rewards_rejected")
    check_same_length(rc, rr, "rewards_rejected")
    return rc, rr, np.isfinite(rc) & np.isfinite(rr)


def check_margins(margins: Any, reference: np.ndarray) -> np.ndarray | None:
    if margins is None:
        return None
    m = as_vector(margins, "margins")
    check_same_length(reference, m, "margins")
    if not np.all(np.isfinite(m)):
        bad = int(np.flatnonzero(~np.isfinite(m))[0])
        raise RewardlabError(f"margins must be finite numbers; pair {bad} has margin {m[bad]}")
    return m


def check_lengths(chosen_lengths: Any, rejected_lengths: Any, reference: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    if (chosen_lengths is None) != (rejected_lengths is None):
        raise RewardlabError("give both chosen_lengths and rejected_lengths, or neither")
    lc = as_vector(chosen_lengths, "chosen_lengths")
    lr = as_vector(rejected_lengths, "rejected_lengths")
    check_same_length(reference, lc, "chosen_lengths")
    check_same_length(reference, lr, "rejected_lengths")
    for name, values in (("chosen_lengths", lc), ("rejected_lengths", lr)):
        if not np.all(np.isfinite(values)):
            bad = int(np.flatnonzero(~np.isfinite(values))[0])
            raise RewardlabError(f"{name} must be finite numbers; pair {bad} has {values[bad]}")
    return lc, lr


def check_categories(categories: Any, reference: np.ndarray) -> list[str]:
    if isinstance(categories, (str, bytes)):
        raise RewardlabError("categories must be a sequence with one category name per pair, not a single string")
    names = [str(c) for c in categories]
    if len(names) != len(reference):
        raise RewardlabError(
            f"categories has {len(names)} values but rewards_chosen has {len(reference)}; give one per pair"
        )
    return names


def check_bins(n_bins: int) -> int:
    return check_positive_int(n_bins, "n_bins")


def check_sections(sections: Any) -> dict[str, list[str]]:
    if not isinstance(sections, Mapping) or not sections:
        raise RewardlabError("sections must be a non-empty mapping {section: [category, ...]}")
    out = {}
    for section, members in sections.items():
        if isinstance(members, (str, bytes)) or not isinstance(members, Sequence) or not members:
            raise RewardlabError(f"section {section!r} must list its categories, got {members!r}")
        out[str(section)] = [str(c) for c in members]
    return out


def check_weighting(weighting: str) -> str:
    if weighting not in SECTION_WEIGHTINGS:
        raise RewardlabError(f"section_weighting must be one of {', '.join(SECTION_WEIGHTINGS)}, got {weighting!r}")
    return weighting
