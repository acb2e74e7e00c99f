"""The closed sets of option values that several layers check: the configuration, the data pipeline, the scorer
and the commands all take their choices from here, so a new value is added in one place."""

from __future__ import annotations

# What to do with a pair (or a ranking) longer than `max_length`; see `rewardlab.data.truncation`.
TRUNCATE_PROMPT, DROP, ERROR = "truncate_prompt", "drop", "error"
OVERLENGTH_POLICIES = (TRUNCATE_PROMPT, DROP, ERROR)

# The loss of ranked data (K responses per prompt); see `rewardlab.losses`.
PAIRWISE, PLACKETT_LUCE = "pairwise", "plackett_luce"
RANKING_LOSSES = (PAIRWISE, PLACKETT_LUCE)

# How training takes response length out of the reward; see `rewardlab.losses.length_decorrelation_loss`.
ODIN, CORRELATION = "odin", "correlation"
LENGTH_DEBIAS_METHODS = (ODIN, CORRELATION)
# Which responses its correlations compare: all those of a forward, or each with the others answering its prompt.
BATCH, PROMPT = "batch", "prompt"
LENGTH_DECORRELATION_SCOPES = (BATCH, PROMPT)

# How the prompt gate of a multi-objective model learns to weigh its heads; see `rewardlab.losses.gate`.
GATE_LABELS, GATE_PREFERENCE, GATE_BOTH, NO_GATE = "labels", "preference", "both", "none"
GATE_LOSSES = (GATE_LABELS, GATE_PREFERENCE, GATE_BOTH, NO_GATE)


def check_choice(name: str, value: str, choices: tuple[str, ...]) -> str:
    """`value` if it is one of `choices`, else a ValueError naming the option and every choice."""
    if value not in choices:
        raise ValueError(f"{name}={value!r} is not one of {', '.join(choices)}")
    return value
