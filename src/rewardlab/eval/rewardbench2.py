"""RewardBench 2 (allenai/reward-bench, `scripts/run_v2.py` and `rewardbench/utils.py`), scored by its own rules.

Each row is one prompt with its completions: `id`, `prompt`, `chosen` (the correct ones) and `rejected` (lists),
`num_correct` (= the number of chosen), `subset` (Factuality, Precise IF, Math, Safety, Focus, Ties); optionally
`total_completions`, `num_rejected`, `models`. Each completion is scored as the chat `[user: prompt, assistant:
completion]`.

- Every subset but Ties: best-of-N with the tie rule, 1/(number of completions tied at the maximum) when the first
  correct completion is among them, else 0 (`rewardlab.metrics.best_of_n`); N is whatever the row holds.
- Ties: rows come in pairs `ref:<id>` / `tied:<id>`, scored by the weighted formula of `rewardlab.metrics.ties`.
- The leaderboard score is the mean of the subset scores.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from numbers import Integral
from typing import Any

import numpy as np

from rewardlab.data.apply_mapping import MappingStats
from rewardlab.data.validate import EMPTY, MISSING, NULL, WRONG_TYPE, validate_text
from rewardlab.errors import InvalidRowError, type_name
from rewardlab.metrics.baselines import (
    Statistic,
    compare_with_baselines,
    drop_unscored,
    masked_mean,
    mean_of,
    negated,
)
from rewardlab.metrics.best_of_n import best_of_n_chance, best_of_n_scores
from rewardlab.metrics.ties import ties_chance_columns, ties_columns, ties_statistic

NAME = "rewardbench2"
SPLIT = "test"
SUBSETS = ("Factuality", "Precise IF", "Math", "Safety", "Focus", "Ties")
COLUMNS = ("id", "prompt", "chosen", "rejected", "num_correct", "subset")
# Reason codes of skipped rows beyond those of `rewardlab.data.validate`.
BAD_COUNT = "num_correct mismatch"
BAD_TIES_ID = "invalid Ties id"
NO_PARTNER = "missing Ties partner"


def is_ties(subset: str) -> bool:
    return subset.lower() == "ties"  # as reward-bench compares it


def partner(row_id: str) -> str:
    """The id of a Ties row's partner: "tied:7" for "ref:7" and the reverse."""
    kind, _, key = row_id.partition(":")
    return f"{'tied' if kind == 'ref' else 'ref'}:{key}"


def first_prompts(prompts: Sequence[Prompt], n: int) -> list[Prompt]:
    """The first `n` prompts, less a Ties row whose partner falls beyond them (the two are scored together)."""
    kept = list(prompts[:n])
    ties = {p.id for p in kept if is_ties(p.subset)}
    return [p for p in kept if not is_ties(p.subset) or partner(p.id) in ties]


def looks_like_rewardbench2(row: Any) -> bool:
    """Whether a row has RewardBench 2's columns, with `chosen` and `rejected` as lists."""
    return (
        isinstance(row, Mapping)
        and all(column in row for column in COLUMNS)
        and isinstance(row["chosen"], list)
        and isinstance(row["rejected"], list)
    )


@dataclass
class Prompt:
    """One valid row: a prompt and its completions, the correct ones first."""

    row_index: int
    id: str
    subset: str
    prompt: str
    chosen: list[str]
    rejected: list[str]

    def ranked_row(self) -> dict[str, Any]:
        """The row as a ranking the scorer takes: the correct completions as `chosen`, the others as `rejected`."""
        return {"prompt": self.prompt, "chosen": self.chosen, "rejected": self.rejected}


def _completions(row: Mapping[str, Any], index: int, field: str) -> list[str]:
    value = row[field]
    if value is None:
        raise InvalidRowError(index, field, "is null; expected a list of completions", NULL)
    if not isinstance(value, list):
        raise InvalidRowError(index, field, f"is a {type_name(value)}, expected a list of completions", WRONG_TYPE)
    if not value:
        raise InvalidRowError(
            index, field, "is an empty list; each prompt needs correct and incorrect completions", EMPTY
        )
    for j, completion in enumerate(value):
        validate_text(completion, index, f"{field}[{j}]", conversational=False)
    return list(value)


def _check_row(row: Any, index: int) -> Prompt:
    """The row as a `Prompt`, or an `InvalidRowError` naming the field."""
    if not isinstance(row, Mapping):
        raise InvalidRowError(index, None, f"is a {type_name(row)}, expected a dict", WRONG_TYPE)
    for column in COLUMNS:
        if column not in row:
            raise InvalidRowError(
                index, column, "is missing (RewardBench 2 rows need " + ", ".join(COLUMNS) + ")", MISSING
            )
    validate_text(row["prompt"], index, "prompt", conversational=False)
    chosen, rejected = _completions(row, index, "chosen"), _completions(row, index, "rejected")
    subset, row_id, count = row["subset"], row["id"], row["num_correct"]
    if not isinstance(subset, str) or not subset.strip():
        raise InvalidRowError(index, "subset", f"is {subset!r}, expected the subset's name", WRONG_TYPE)
    if isinstance(count, bool) or not isinstance(count, Integral) or count != len(chosen):
        raise InvalidRowError(
            index, "num_correct", f"is {count!r} but 'chosen' holds {len(chosen)} completion(s)", BAD_COUNT
        )
    total = row.get("total_completions")
    if total is not None and total != len(chosen) + len(rejected):
        raise InvalidRowError(
            index,
            "total_completions",
            f"is {total!r} but 'chosen' and 'rejected' hold {len(chosen) + len(rejected)} completions",
            BAD_COUNT,
        )
    if row_id is None or isinstance(row_id, (list, dict)):
        raise InvalidRowError(index, "id", f"is {row_id!r}, expected a string or number", WRONG_TYPE)
    row_id = str(row_id)
    if is_ties(subset) and row_id.partition(":")[0] not in ("ref", "tied"):
        raise InvalidRowError(index, "id", f"is {row_id!r}; a Ties row's id is 'ref:<id>' or 'tied:<id>'", BAD_TIES_ID)
    return Prompt(index, row_id, subset, row["prompt"], chosen, rejected)


def read_rows(
    rows: Sequence[Any], *, skip_invalid: bool = False, dataset_name: str | None = None
) -> tuple[list[Prompt], MappingStats, list[str]]:
    """The valid prompts, the counts of what happened to every row, and every subset the rows name (valid or not).

    An invalid row (a missing field, an empty list of completions, a `num_correct` that does not match, a Ties id
    without its partner) raises `InvalidRowError` naming the row and field, or with `skip_invalid` is skipped and
    counted per reason; a Ties row whose partner was skipped is skipped too.
    """
    stats, prompts, seen = MappingStats(), [], []
    for index, row in enumerate(rows):
        stats.rows_in += 1
        subset = row.get("subset") if isinstance(row, Mapping) else None
        if isinstance(subset, str) and subset not in seen:
            seen.append(subset)
        try:
            prompts.append(_check_row(row, index))
        except InvalidRowError as e:
            if not skip_invalid:
                raise e.at(dataset=dataset_name) from None
            stats.record_invalid(e, row)
    prompts = _paired_ties(prompts, rows, stats, skip_invalid, dataset_name)
    stats.rows_used = stats.groups_out = len(prompts)
    return prompts, stats, seen


def _paired_ties(
    prompts: list[Prompt], rows: Sequence[Any], stats: MappingStats, skip_invalid: bool, dataset_name: str | None
) -> list[Prompt]:
    """`prompts` without the Ties rows whose partner is missing (an error unless `skip_invalid`)."""
    ties: dict[str, Prompt] = {}
    for p in prompts:
        if is_ties(p.subset):
            if p.id in ties:
                raise InvalidRowError(
                    p.row_index, "id", f"{p.id!r} is also the id of row {ties[p.id].row_index}", BAD_TIES_ID
                ).at(dataset=dataset_name)
            ties[p.id] = p
    orphans = set()
    for row_id, p in ties.items():
        if partner(row_id) not in ties:
            error = InvalidRowError(
                p.row_index,
                "id",
                f"is {row_id!r} but no valid row has {partner(row_id)!r}; a Ties prompt needs both",
                NO_PARTNER,
            )
            if not skip_invalid:
                raise error.at(dataset=dataset_name)
            stats.record_invalid(error, rows[p.row_index])
            orphans.add(p.row_index)
    return [p for p in prompts if p.row_index not in orphans]


@dataclass
class _Units:
    """The prompts grouped as the score resamples them: one unit per non-Ties prompt, one per Ties id (its two
    rows). `parts` are each subset's unit indices."""

    subsets: list[str]
    members: dict[str, list[int] | list[tuple[int, int]]]  # prompt positions, or (ref, tied) positions for Ties
    parts: dict[str, np.ndarray]
    strata: np.ndarray

    @classmethod
    def of(cls, prompts: Sequence[Prompt]) -> _Units:
        subsets = _ordered({p.subset for p in prompts})
        members: dict[str, Any] = {}
        for subset in subsets:
            if is_ties(subset):
                by_key = {p.id: k for k, p in enumerate(prompts) if p.subset == subset}
                keys = sorted(
                    {i.partition(":")[2] for i in by_key},
                    key=lambda key: min(by_key[f"ref:{key}"], by_key[f"tied:{key}"]),
                )
                members[subset] = [(by_key[f"ref:{key}"], by_key[f"tied:{key}"]) for key in keys]
            else:
                members[subset] = [k for k, p in enumerate(prompts) if p.subset == subset]
        parts, strata, start = {}, [], 0
        for k, subset in enumerate(subsets):
            parts[subset] = np.arange(start, start + len(members[subset]))
            strata += [k] * len(members[subset])
            start += len(members[subset])
        return cls(subsets, members, parts, np.asarray(strata))


def _subset_statistics(units: _Units, prompts: Sequence[Prompt], values: Sequence[Any]) -> dict[str, Statistic]:
    """Each subset's score as a statistic of its units, with `values` (one array per prompt) as the rewards."""
    out = {}
    for subset in units.subsets:
        if is_ties(subset):
            ref, tied = zip(*units.members[subset], strict=True)
            columns = ties_columns(
                [values[k] for k in ref],
                [len(prompts[k].chosen) for k in ref],
                [values[k] for k in tied],
                [len(prompts[k].chosen) for k in tied],
            )
            out[subset] = ties_statistic(columns)
        else:
            members = units.members[subset]
            out[subset] = masked_mean(best_of_n_scores([values[k] for k in members], [[0]] * len(members)))
    return out


def _chance_statistics(
    units: _Units, prompts: Sequence[Prompt], dropped: np.ndarray, seed: int
) -> dict[str, Statistic]:
    out = {}
    for subset in units.subsets:
        if is_ties(subset):
            ref, tied = zip(*units.members[subset], strict=True)
            columns = ties_chance_columns(
                [len(prompts[k].chosen) + len(prompts[k].rejected) for k in ref],
                [len(prompts[k].chosen) for k in ref],
                [len(prompts[k].chosen) + len(prompts[k].rejected) for k in tied],
                [len(prompts[k].chosen) for k in tied],
                seed=seed,
            )
            gone = np.array([dropped[r] or dropped[t] for r, t in units.members[subset]])
            for name in vars(columns):
                getattr(columns, name)[gone] = math.nan
            out[subset] = ties_statistic(columns)
        else:
            members = units.members[subset]
            chance = best_of_n_chance(
                [len(prompts[k].chosen) + len(prompts[k].rejected) for k in members], [1] * len(members)
            )
            chance[dropped[members]] = math.nan
            out[subset] = masked_mean(chance)
    return out


def _overall(units: _Units, statistics: Mapping[str, Statistic], scored: Sequence[str]) -> Statistic:
    return mean_of([(units.parts[s], statistics[s]) for s in scored])


def summarize(
    prompts: Sequence[Prompt],
    rewards: Sequence[Sequence[float]],
    lengths: Sequence[Sequence[float]],
    *,
    subsets_seen: Sequence[str] = (),
    n_bootstrap: int = 1000,
    seed: int = 0,
) -> dict[str, Any]:
    """The `"rewardbench2"` section of a report, from the rewards and lengths (tokens) of every prompt's completions
    (in the order `Prompt.ranked_row` gives them: correct first).

    Returns `{"score", "subsets": {name: score}, "prompts": {name: evaluated units}, "dropped": {name: n},
    "subsets_without_data", "official_subsets_absent", "baselines", "subset_baselines"}`. A subset the rows name
    but none of whose rows is valid (or scored) is listed in `subsets_without_data`, scores None, and is not in the
    mean, which then covers fewer subsets than the file names; `score_over` lists the subsets the mean covers.
    """
    units = _Units.of(prompts)
    values, masked_lengths, dropped = drop_unscored(rewards, lengths)
    model = _subset_statistics(units, prompts, values)
    rules = {
        "longer_wins": _subset_statistics(units, prompts, masked_lengths),
        "shorter_wins": _subset_statistics(units, prompts, negated(masked_lengths)),
        "chance": _chance_statistics(units, prompts, dropped, seed),
    }
    counts, dropped_counts, scores, subset_baselines = {}, {}, {}, {}
    for subset in units.subsets:
        members = units.members[subset]
        gone = [dropped[r] or dropped[t] for r, t in members] if is_ties(subset) else [dropped[k] for k in members]
        dropped_counts[subset] = int(sum(gone))
        counts[subset] = len(members) - dropped_counts[subset]
        scores[subset] = float(model[subset](np.ones((1, len(members))))[0]) if counts[subset] else None
        subset_rules = {name: rule[subset] for name, rule in rules.items()}
        subset_baselines[subset] = compare_with_baselines(
            model[subset], subset_rules, len(members) if counts[subset] else 0, n_bootstrap=n_bootstrap, seed=seed
        )
    named = _ordered({*subsets_seen, *units.subsets})
    scored = [s for s in named if counts.get(s)]
    n_units = len(units.strata)
    overall = compare_with_baselines(
        _overall(units, model, scored),
        {name: _overall(units, rule, scored) for name, rule in rules.items()},
        n_units if scored else 0,
        strata=units.strata,
        n_bootstrap=n_bootstrap,
        seed=seed,
    )
    return {
        "score": float(_overall(units, model, scored)(np.ones((1, n_units)))[0]) if scored else None,
        "subsets": {s: scores.get(s) for s in named},
        "score_over": scored,
        "prompts": {s: counts.get(s, 0) for s in named},
        "dropped": {s: dropped_counts.get(s, 0) for s in named},
        "subsets_without_data": [s for s in named if s not in scored],
        "official_subsets_absent": [s for s in SUBSETS if s not in named],
        "baselines": overall,
        "subset_baselines": subset_baselines,
    }


def _ordered(subsets: set[str]) -> list[str]:
    """The official subsets in their leaderboard order, then any others by name."""
    order = {name: k for k, name in enumerate(SUBSETS)}
    return sorted(subsets, key=lambda s: (order.get(s, len(order)), s))
