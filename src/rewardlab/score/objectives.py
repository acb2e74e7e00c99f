"""How the heads of a multi-objective reward model become the one reward a caller gets: one objective's head, a
weighted sum of the heads with fixed weights (`--objective NAME`, `--weights helpful=0.7,harmless=0.3`), or, by
default for a model with a prompt gate, the heads weighed by the gate."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

from rewardlab.errors import RewardlabError


def parse_weights(text: str) -> dict[str, float]:
    """`name=weight,...` (the command line's spelling) as a dict, e.g. "helpful=0.7,harmless=0.3"."""
    weights = {}
    for part in (p.strip() for p in text.split(",")):
        name, sep, value = part.partition("=")
        try:
            weight = float(value)
        except ValueError:
            weight = math.nan
        if not sep or not name.strip() or not math.isfinite(weight):
            raise RewardlabError(f"weights: {part!r} is not name=number (e.g. helpful=0.7,harmless=0.3)")
        if name.strip() in weights:
            raise RewardlabError(f"weights: {name.strip()!r} is given twice")
        weights[name.strip()] = weight
    return weights


def objective_weights(
    objectives: Sequence[str] | None,
    objective: str | None = None,
    weights: Mapping[str, float] | str | None = None,
    gated: bool = False,
) -> np.ndarray | None:
    """(K,) the weight of each head in the reward, for a model whose heads are `objectives` (None: one head, and so
    None). `objective` picks one head; `weights` weigh several (objectives not named weigh 0); neither, for a model
    with a prompt gate (`gated`): None, the gate weighs them."""
    if objective is not None and weights is not None:
        raise RewardlabError("give objective or weights, not both")
    if objectives is None:
        if objective is not None or weights is not None:
            raise RewardlabError(
                "objective and weights choose among the heads of a multi-objective model; this one has one"
            )
        return None
    if objective is not None:
        weights = {objective: 1.0}
    if weights is None and gated:
        return None
    if weights is None:
        raise RewardlabError(
            f"the model has a head per objective ({', '.join(objectives)}): choose one (objective='{objectives[0]}', "
            f"--objective {objectives[0]}) or weigh them (e.g. --weights "
            f"{','.join(f'{name}={1 / len(objectives):.2g}' for name in objectives)})"
        )
    if isinstance(weights, str):
        weights = parse_weights(weights)
    unknown = [name for name in weights if name not in objectives]
    if unknown:
        raise RewardlabError(f"no objective {unknown[0]!r}: the model's objectives are {', '.join(objectives)}")
    return np.array([float(weights.get(name, 0.0)) for name in objectives])
