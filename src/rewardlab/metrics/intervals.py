"""Bootstrap confidence intervals of the evaluation metrics, and of an ensemble's uncertainty gap.

Written by hand rather than with `scipy.stats.bootstrap`: every resample is a vector of pair counts, and every
statistic (accuracy, log-loss, ECE, the length correlations with their average ranks, per-category and per-section
accuracy) is a weighted sum over pairs, so all resamples of all statistics come out of a few matrix products per
block of resamples. scipy's bootstrap resamples and recomputes one statistic at a time; `BENCHMARKS.md`
("Bootstrap intervals") gives the measured difference. `tests/test_eval_metrics.py` checks each resampled statistic
against scipy's own on the materialised resample. Notation and input rules: `rewardlab.metrics.inputs`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.special import expit

from rewardlab.errors import RewardlabError
from rewardlab.metrics.calibration import bin_index
from rewardlab.metrics.inputs import (
    LENGTH_GROUPS,
    check_bins,
    check_categories,
    check_lengths,
    check_margins,
    check_positive_int,
    check_sections,
    check_weighting,
    evaluated_pairs,
    log_loss_terms,
)

# Bootstrap weights are drawn and reduced in blocks of about this many (resample, pair) cells, which bounds memory
# at a few tens of MB whatever the set size, while each block is still one vectorised numpy operation.
_BLOCK_CELLS = 500_000


@dataclass
class _Groups:
    """Pairs partitioned into named groups, sorted by group so that per-group sums are one `np.add.reduceat`."""

    names: list[str]
    order: np.ndarray
    starts: np.ndarray  # start of each non-empty group within `order`
    present: np.ndarray  # indices into `names` of the non-empty groups

    @classmethod
    def from_codes(cls, codes: np.ndarray, names: list[str]) -> _Groups:
        order = np.argsort(codes, kind="stable")
        sorted_codes = codes[order]
        if len(codes):
            starts = np.flatnonzero(np.r_[True, sorted_codes[1:] != sorted_codes[:-1]])
        else:
            starts = np.array([], dtype=np.int64)
        return cls(names, order, starts, sorted_codes[starts].astype(np.int64))

    def sums(self, values: np.ndarray) -> np.ndarray:
        """Per-group sums of `values` (shape (B, n)) as (B, len(names)); 0 for empty groups."""
        out = np.zeros((values.shape[0], len(self.names)))
        if len(self.starts):
            out[:, self.present] = np.add.reduceat(values[:, self.order], self.starts, axis=1)
        return out


@dataclass
class _RankOrder:
    """The sort of a value vector, kept so average ranks of any weighting of its items need only a cumulative sum."""

    order: np.ndarray
    group_of_item: np.ndarray
    starts: np.ndarray
    ends: np.ndarray

    @classmethod
    def of(cls, values: np.ndarray) -> _RankOrder:
        order = np.argsort(values, kind="stable")
        sorted_values = values[order]
        new_group = np.r_[True, sorted_values[1:] != sorted_values[:-1]]
        starts = np.flatnonzero(new_group)
        group_of_item = np.empty(len(values), dtype=np.int64)
        group_of_item[order] = np.cumsum(new_group) - 1
        return cls(order, group_of_item, starts, np.r_[starts[1:], len(values)])

    def ranks(self, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Average ranks of the items in the multisets where item j appears `weights[b, j]` times, and whether
        each multiset holds a single distinct value.

        Equal values form a group; if `before` copies are smaller and the group has `w` copies, they hold ranks
        before+1 .. before+w, whose average is `before + (w + 1) / 2`.
        """
        cumulative = np.concatenate([np.zeros((weights.shape[0], 1)), np.cumsum(weights[:, self.order], axis=1)], 1)
        before = cumulative[:, self.starts]
        group_weight = cumulative[:, self.ends] - before
        constant = group_weight.max(1) == cumulative[:, -1]
        return (before + (group_weight + 1) / 2)[:, self.group_of_item], constant


@dataclass
class _PairColumns:
    """Per-pair quantities of the evaluated pairs; every bootstrap statistic is a weighted sum of them."""

    correct: np.ndarray
    tie: np.ndarray
    d: np.ndarray
    loss: np.ndarray
    q: np.ndarray
    ece_terms: np.ndarray  # (n, n_bins): Σ over a bin of (prediction − outcome) is Σ of this column
    lengths: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None = None  # rc, rr, lc, lr
    reward_ranks: _RankOrder | None = None
    length_ranks: _RankOrder | None = None
    length_groups: _Groups | None = None
    categories: _Groups | None = None
    sections: dict[str, list[int]] | None = None  # section -> indices into categories.names
    weighting: str = "examples"

    @classmethod
    def build(
        cls,
        rc: np.ndarray,
        rr: np.ndarray,
        margins: np.ndarray | None,
        n_bins: int,
        lengths: tuple[np.ndarray, np.ndarray] | None,
        categories: tuple[list[str], list[str]] | None,
        sections: dict[str, list[str]] | None,
        weighting: str,
    ) -> _PairColumns:
        """`categories` is (category of each evaluated pair, every category name including those only dropped)."""
        d = rc - rr
        q = expit(-d)
        p = expit(d)
        n = len(d)
        rows = np.arange(n)
        # Item (p, 1) adds p − 1 = −q to p's bin and item (q, 0) adds q to q's bin.
        ece_terms = np.zeros((n, n_bins))
        np.add.at(ece_terms, (rows, bin_index(p, n_bins)), -q)
        np.add.at(ece_terms, (rows, bin_index(q, n_bins)), q)
        columns = cls(
            correct=(rc > rr).astype(np.float64),
            tie=(rc == rr).astype(np.float64),
            d=d,
            loss=log_loss_terms(d if margins is None else d - margins),
            q=q,
            ece_terms=ece_terms,
            weighting=weighting,
        )
        if lengths is not None:
            lc, lr = lengths
            columns.lengths = (rc, rr, lc, lr)
            columns.reward_ranks = _RankOrder.of(np.concatenate([rc, rr]))
            columns.length_ranks = _RankOrder.of(np.concatenate([lc, lr]))
            codes = np.where(lc > lr, 0, np.where(lc < lr, 1, 2))
            columns.length_groups = _Groups.from_codes(codes, list(LENGTH_GROUPS))
        if categories is not None:
            pair_categories, names = categories
            lookup = {name: i for i, name in enumerate(names)}
            codes = np.array([lookup[c] for c in pair_categories], dtype=np.int64)
            columns.categories = _Groups.from_codes(codes, names)
            if sections is not None:
                columns.sections = {s: [lookup[c] for c in members if c in lookup] for s, members in sections.items()}
        return columns


def _correlation_from_sums(sxy: np.ndarray, sxx: np.ndarray, syy: np.ndarray, undefined: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        r = np.clip(sxy / np.sqrt(sxx * syy), -1.0, 1.0)
    r[undefined] = np.nan
    return r


def _weighted_pearson(
    w: np.ndarray, x: tuple[np.ndarray, np.ndarray], y: tuple[np.ndarray, np.ndarray], undefined: np.ndarray
) -> np.ndarray:
    """Pearson r over the 2n items (x[0][i], y[0][i]) and (x[1][i], y[1][i]), each of weight w[b, i].

    One pass of weighted sums (matrix products); the values must already be centred near their mean, so that the
    `Σx² − W·x̄²` form loses no precision. Rows flagged `undefined` (constant data) are NaN.
    """
    features = np.stack(
        [x[0] + x[1], y[0] + y[1], x[0] ** 2 + x[1] ** 2, y[0] ** 2 + y[1] ** 2, x[0] * y[0] + x[1] * y[1]], axis=1
    )
    sx, sy, sxx, syy, sxy = (w @ features).T
    total = 2 * w.sum(1)
    return _correlation_from_sums(sxy - sx * sy / total, sxx - sx * sx / total, syy - sy * sy / total, undefined)


def _weighted_rank_correlation(
    w: np.ndarray, x_ranks: np.ndarray, y_ranks: np.ndarray, undefined: np.ndarray
) -> np.ndarray:
    """Pearson r of item ranks (B, 2n) with item weights [w, w]; Spearman's ρ of each resample."""
    # The weighted mean of average ranks over N items is exactly (N + 1) / 2, so centring needs no extra pass; the
    # ranks are half-integers and the weights integers, so these sums are exact in float64.
    n = w.shape[1]
    center = (2 * n + 1) / 2
    item_weights = np.concatenate([w, w], axis=1)
    dx, dy = x_ranks - center, y_ranks - center
    weighted_dx = item_weights * dx
    return _correlation_from_sums(
        np.einsum("ij,ij->i", weighted_dx, dy),
        np.einsum("ij,ij->i", weighted_dx, dx),
        np.einsum("ij,ij,ij->i", item_weights, dy, dy),
        undefined,
    )


def _resample_statistics(columns: _PairColumns, w: np.ndarray) -> dict[str, np.ndarray]:
    """Every bootstrapped statistic for each row of pair weights `w` (B, n), row b being resample b's pair counts.

    A resample with replacement is the multiset in which pair i appears w[b, i] times, so each statistic is its
    full-data formula with weights; with `w` all ones this gives the point estimates exactly (a test checks it).
    """
    total = w.sum(1)
    out = {
        "accuracy": w @ columns.correct / total,
        "accuracy_ties_half": w @ (columns.correct + 0.5 * columns.tie) / total,
        "mean_margin": w @ columns.d / total,
        "log_loss": w @ columns.loss / total,
        "brier": w @ columns.q**2 / total,
        "ece": np.abs(w @ columns.ece_terms).sum(1) / (2 * total),
    }
    if columns.lengths is not None:
        rc, rr, lc, lr = columns.lengths
        item_weights = np.concatenate([w, w], axis=1)
        reward_ranks, constant_rewards = columns.reward_ranks.ranks(item_weights)
        length_ranks, constant_lengths = columns.length_ranks.ranks(item_weights)
        undefined = constant_rewards | constant_lengths
        # Centre on the full-data means first: a large shared offset would otherwise cost precision.
        reward_mean, length_mean = (rc.mean() + rr.mean()) / 2, (lc.mean() + lr.mean()) / 2
        out["length_pearson"] = _weighted_pearson(
            w, (rc - reward_mean, rr - reward_mean), (lc - length_mean, lr - length_mean), undefined
        )
        out["length_spearman"] = _weighted_rank_correlation(w, reward_ranks, length_ranks, undefined)
        count = columns.length_groups.sums(w)
        correct = columns.length_groups.sums(w * columns.correct)
        with np.errstate(invalid="ignore", divide="ignore"):
            accuracy = correct / count
        for k, name in enumerate(LENGTH_GROUPS):
            out[f"length_group:{name}"] = accuracy[:, k]
    if columns.categories is not None:
        count = columns.categories.sums(w)
        correct = columns.categories.sums(w * columns.correct)
        with np.errstate(invalid="ignore", divide="ignore"):
            accuracy = correct / count
        for k, name in enumerate(columns.categories.names):
            out[f"category:{name}"] = accuracy[:, k]
        if columns.sections is not None:
            section_values = []
            for section, members in columns.sections.items():
                if not members:
                    score = np.full(len(w), np.nan)
                elif columns.weighting == "examples":
                    with np.errstate(invalid="ignore", divide="ignore"):
                        score = correct[:, members].sum(1) / count[:, members].sum(1)
                else:
                    score = _nanmean_rows(accuracy[:, members])
                out[f"section:{section}"] = score
                if members:
                    section_values.append(score)
            if section_values:
                out["section_mean"] = _nanmean_rows(np.stack(section_values, axis=1))
    return out


def _nanmean_rows(values: np.ndarray) -> np.ndarray:
    # A category (or section) that drew no pair in a resample is left out of that resample's mean.
    finite = np.isfinite(values)
    count = finite.sum(1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(finite, values, 0.0).sum(1) / np.where(count > 0, count, np.nan)


def resample_weights(n: int, n_bootstrap: int, rng: np.random.Generator, strata: Any = None):
    """Blocks of unit counts (B_block, n): n unit indices drawn uniformly with replacement per resample.

    With `strata` (one code per unit), each stratum is resampled on its own and keeps its size, as a score that
    averages per-subset results must be (every subset keeps its weight in every resample).
    """
    block = max(1, min(n_bootstrap, _BLOCK_CELLS // max(n, 1)))
    members = None if strata is None else [np.flatnonzero(strata == s) for s in np.unique(strata)]
    for start in range(0, n_bootstrap, block):
        size = min(block, n_bootstrap - start)
        if members is None:
            index = rng.integers(0, n, size=(size, n))
        else:
            index = np.concatenate([m[rng.integers(0, len(m), size=(size, len(m)))] for m in members], axis=1)
        offsets = (np.arange(size) * n)[:, None]
        yield np.bincount((index + offsets).ravel(), minlength=size * n).reshape(size, n).astype(np.float64)


def _statistic_keys(lengths: Any, categories: tuple[list[str], list[str]] | None, sections: Any) -> list[str]:
    """The keys `_resample_statistics` would give, for the case of no evaluated pair (nothing to resample)."""
    keys = ["accuracy", "accuracy_ties_half", "mean_margin", "log_loss", "brier", "ece"]
    if lengths is not None:
        keys += ["length_pearson", "length_spearman", *(f"length_group:{g}" for g in LENGTH_GROUPS)]
    if categories is not None:
        keys += [f"category:{name}" for name in categories[1]]
        if sections is not None:
            keys += [f"section:{name}" for name in sections]
            if any(c in categories[1] for members in sections.values() for c in members):
                keys.append("section_mean")
    return keys


def percentile_interval(values: np.ndarray) -> list[float]:
    finite = values[np.isfinite(values)]
    if not len(finite):
        return [math.nan, math.nan]
    low, high = np.percentile(finite, [2.5, 97.5])
    return [float(low), float(high)]


def bootstrap_intervals(
    rewards_chosen: Any,
    rewards_rejected: Any,
    *,
    margins: Any = None,
    chosen_lengths: Any = None,
    rejected_lengths: Any = None,
    categories: Any = None,
    sections: Mapping[str, Sequence[str]] | None = None,
    section_weighting: str = "examples",
    n_bins: int = 10,
    n_bootstrap: int = 1000,
    seed: int = 0,
) -> dict[str, list[float]]:
    """95% percentile-bootstrap intervals `[low, high]` of the metrics, keyed by metric.

    Method: `n_bootstrap` resamples of the n evaluated pairs, each drawing n pair indices uniformly with replacement
    from `numpy.random.default_rng(seed)`; on each resample every metric is recomputed with the same formula as
    its point estimate (a pair drawn k times weighs k). The interval is the 2.5th and 97.5th percentiles of the
    resampled values (`numpy.percentile`, linear interpolation). Pairs, not responses, are resampled, so a pair's
    two responses stay together in the length correlations. Resamples where a value is undefined (a category that
    drew no pair, constant lengths) are left out; `[NaN, NaN]` when none is defined or n = 0.

    Keys: `accuracy`, `accuracy_ties_half`, `mean_margin`, `log_loss` (with margins when given), `ece`, `brier`
    (with `n_bins` bins, T = 1); with lengths also `length_pearson`, `length_spearman` and
    `length_group:{chosen_longer,chosen_shorter,equal_length}` (accuracy per group); with categories
    `category:<name>` (accuracy); with sections `section:<name>` and `section_mean`.
    The fitted temperature is not bootstrapped (that would take one fit per resample).

    ECE is biased upwards on small resamples (noise adds to every bin's gap), so its interval can lie above the
    point estimate when the model is well calibrated; read it as the spread of the estimate, not as a test.
    """
    n_bootstrap = check_positive_int(n_bootstrap, "n_bootstrap")
    n_bins = check_bins(n_bins)
    rc, rr, ok = evaluated_pairs(rewards_chosen, rewards_rejected)
    m = check_margins(margins, rc)
    lengths = None
    if chosen_lengths is not None or rejected_lengths is not None:
        lc, lr = check_lengths(chosen_lengths, rejected_lengths, rc)
        lengths = (lc[ok], lr[ok])
    names = None
    if categories is not None:
        all_names = check_categories(categories, rc)
        names = ([c for c, keep in zip(all_names, ok.tolist(), strict=True) if keep], sorted(set(all_names)))
    checked_sections = None
    if sections is not None:
        if categories is None:
            raise RewardlabError("sections need categories: give the category of every pair")
        checked_sections = check_sections(sections)
    weighting = check_weighting(section_weighting)
    n = int(ok.sum())
    if n == 0:
        return {key: [math.nan, math.nan] for key in _statistic_keys(lengths, names, checked_sections)}
    columns = _PairColumns.build(
        rc[ok], rr[ok], None if m is None else m[ok], n_bins, lengths, names, checked_sections, weighting
    )
    rng = np.random.default_rng(seed)
    blocks = [_resample_statistics(columns, w) for w in resample_weights(n, int(n_bootstrap), rng)]
    return {key: percentile_interval(np.concatenate([b[key] for b in blocks])) for key in blocks[0]}


def uncertainty_gap(std: Any, wrong: Any, *, n_bootstrap: int = 1000, seed: int = 0) -> dict[str, Any]:
    """How much more uncertain an ensemble is on the pairs it ranks wrong: mean `std` of wrong pairs minus mean `std`
    of right ones, `{"value", "ci95"}`, the interval by the percentile bootstrap over pairs (as `bootstrap_intervals`;
    None with `n_bootstrap=0`). Pairs with a NaN std (dropped for length) are left out."""
    std, wrong = np.asarray(std, dtype=np.float64), np.asarray(wrong, dtype=bool)
    keep = np.isfinite(std)
    std, wrong = std[keep], wrong[keep]

    def gap(w: np.ndarray) -> np.ndarray:  # w: (B, n) pair counts of B resamples
        with np.errstate(invalid="ignore", divide="ignore"):
            return (w * std * wrong).sum(1) / (w * wrong).sum(1) - (w * std * ~wrong).sum(1) / (w * ~wrong).sum(1)

    value = float(gap(np.ones((1, len(std))))[0]) if len(std) else math.nan
    if not n_bootstrap or not len(std):
        return {"value": value, "ci95": None}
    rng = np.random.default_rng(seed)
    resampled = np.concatenate([gap(w) for w in resample_weights(len(std), int(n_bootstrap), rng)])
    return {"value": value, "ci95": percentile_interval(resampled)}
