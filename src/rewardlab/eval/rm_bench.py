"""RM-Bench (THU-KEG/RM-Bench, `README.md` and `scripts/utils.py`), scored by its own rules.

Each row has a `prompt`, three `chosen` and three `rejected` responses in the styles concise, detailed, and detailed
with markdown, and its domain (a `domain` column on the Hub; locally the file name, e.g. `chat_filtered.jsonl`).
Every chosen style is compared with every rejected style (the `rm-bench` label mapping), each response scored as the
chat `[user: prompt, assistant: response]`; `rewardlab.metrics.style_matrix` turns the comparisons into the easy /
normal / hard accuracies. The paper reports the domains chat, code, math and safety (safety-refuse and
safety-response together); the overall accuracy and easy / normal / hard are the means over the domains present.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from rewardlab.data.apply_mapping import MappingStats, get_path
from rewardlab.data.mapping import LabelMapping
from rewardlab.errors import InvalidRowError
from rewardlab.metrics.baselines import Statistic, compare_with_baselines, drop_unscored, masked_mean, mean_of, negated
from rewardlab.metrics.style_matrix import DIFFICULTIES, difficulty_accuracies, style_correct, unit_values

NAME = "rm-bench"
STYLES = 3
STYLE_COUNT = "not 3 styles"  # the reason code of a row without 3 chosen and 3 rejected responses


def domain(name: Any) -> str:
    """The RM-Bench domain of a `domain` value or a file / split name: "chat_filtered" is chat, "safety-refuse" and
    "safety-response" are safety."""
    text = str(name).strip().lower().removesuffix("_filtered").removesuffix("_dataset")
    return "safety" if text.startswith("safety") else text


def check_styles(
    rows: list[dict[str, Any]],
    mapping: LabelMapping,
    pairs: list[dict[str, Any]],
    stats: MappingStats,
    skip_invalid: bool,
    name: str,
) -> list[dict[str, Any]]:
    """RM-Bench's matrix compares 3 chosen with 3 rejected styles: a row with another count is invalid. Returns the
    pairs without such rows' (which, with `skip_invalid`, are counted as skipped; else the first raises)."""
    bad = set()
    for index in sorted({pair["row_index"] for pair in pairs}):
        for path in (mapping.chosen, mapping.rejected):
            count = len(get_path(rows[index], path))
            if count != STYLES:
                error = InvalidRowError(
                    index,
                    path,
                    f"has {count} responses; RM-Bench compares {STYLES} styles (concise, detailed, detailed "
                    "with markdown)",
                    STYLE_COUNT,
                )
                if not skip_invalid:
                    raise error.at(dataset=name)
                stats.record_invalid(error, rows[index])
                stats.rows_used -= 1
                bad.add(index)
                break
    kept = [pair for pair in pairs if pair["row_index"] not in bad]
    stats.pairs_out = len(kept)
    return kept


def _statistics(correct: np.ndarray, domains: np.ndarray, cells: str) -> Statistic:
    """The mean over domains of each domain's accuracy over `cells`, as a statistic of prompt weights."""
    values = unit_values(correct, cells)
    members = [np.flatnonzero(domains == d) for d in np.unique(domains)]
    return mean_of([(index, masked_mean(values[index])) for index in members if np.isfinite(values[index]).any()])


def summarize(
    pairs: Sequence[Mapping[str, Any]],
    rewards_chosen: Any,
    rewards_rejected: Any,
    lengths_chosen: Any,
    lengths_rejected: Any,
    *,
    n_bootstrap: int = 1000,
    seed: int = 0,
) -> dict[str, Any]:
    """The `"rm_bench"` section of a report from the scored comparisons: `pairs` with `row_index`, `chosen_index`,
    `rejected_index` and `domain` (a pair without one is in the domain "all"). Returns `{"easy", "normal", "hard",
    "accuracy", "prompts", "dropped", "domains": {name: {"easy", "normal", "hard", "accuracy", "matrix",
    "prompts"}}, "baselines", "difficulty_baselines", "domain_baselines"}`."""
    rows = sorted({int(p["row_index"]) for p in pairs})
    position = {row: k for k, row in enumerate(rows)}
    prompt = np.array([position[int(p["row_index"])] for p in pairs], dtype=np.int64)
    names = [""] * len(rows)
    for p, k in zip(pairs, prompt.tolist(), strict=True):
        names[k] = domain(p.get("domain") or "all")
    domains = np.asarray(names, dtype=object)
    i = [int(p["chosen_index"]) for p in pairs]
    j = [int(p["rejected_index"]) for p in pairs]

    def correct_of(chosen: Any, rejected: Any) -> np.ndarray:
        return style_correct(prompt, i, j, chosen, rejected, len(rows))

    # A NaN in one comparison leaves its whole prompt out of the matrix, for the model and for every rule.
    rewards, (lc, lr), _ = drop_unscored((rewards_chosen, rewards_rejected), (lengths_chosen, lengths_rejected))
    model = correct_of(*rewards)
    dropped = ~np.isfinite(model).all((1, 2))
    chance = np.where(dropped[:, None, None], math.nan, np.full((len(rows), STYLES, STYLES), 0.5))
    rules = {"longer_wins": correct_of(lc, lr), "shorter_wins": correct_of(negated(lc), negated(lr)), "chance": chance}
    strata = np.unique(domains, return_inverse=True)[1] if len(rows) else None

    def compare(cells: str, keep: np.ndarray) -> dict[str, Any]:
        index = np.flatnonzero(keep)
        statistics = {
            who: _statistics(c[index], domains[index], cells) for who, c in [("model", model), *rules.items()]
        }
        scored = np.isfinite(model[index]).all((1, 2)).any()
        return compare_with_baselines(
            statistics.pop("model"),
            statistics,
            len(index) if scored else 0,
            strata=None if strata is None else strata[index],
            n_bootstrap=n_bootstrap,
            seed=seed,
        )

    everything = np.ones(len(rows), dtype=bool)
    per_domain = {}
    for name in sorted(set(names)):
        members = domains == name
        per_domain[name] = difficulty_accuracies(model[members]) | {"prompts": int(np.sum(members & ~dropped))}
    scored = [d for d in per_domain.values() if d["prompts"]]
    means = {key: float(np.mean([d[key] for d in scored])) if scored else None for key in (*DIFFICULTIES, "accuracy")}
    return means | {
        "prompts": int(np.sum(~dropped)),
        "dropped": int(np.sum(dropped)),
        "domains": per_domain,
        "baselines": compare("accuracy", everything),
        "difficulty_baselines": {cells: compare(cells, everything) for cells in DIFFICULTIES},
        "domain_baselines": {name: compare("accuracy", domains == name) for name in per_domain},
    }
