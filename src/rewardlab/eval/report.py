"""Evaluate reward models on preference sets: the report behind `rewardlab eval` (`report.json` + `report.html`).

The steps read top to bottom: load each data set and map its layout to pairs (`rewardlab.eval.mapping`), score
every pair with `RewardModel` (the training layout, so rewards equal the trainer's), compute the exact metrics with
bootstrap intervals (`rewardlab.metrics`), draw the figures (`rewardlab.eval.plots`) and write the report
(`rewardlab.eval.html`). Each data set is reported on its own and, when there are several, all together.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rewardlab._version import __version__
from rewardlab.data.formats import detect_dataset_format, is_ranked_example, ranked_items
from rewardlab.data.loading import load_preference_data
from rewardlab.data.validate import validate_row
from rewardlab.errors import InvalidRowError, RewardlabError
from rewardlab.eval import plots
from rewardlab.eval.apply_mapping import MappingStats, apply_mapping
from rewardlab.eval.html import render_report
from rewardlab.eval.mapping import LabelMapping, parse_mapping
from rewardlab.files import atomic_path, read_run_record
from rewardlab.losses import ordered_pairs
from rewardlab.metrics.bootstrap import uncertainty_gap
from rewardlab.metrics.pairs import length_bias
from rewardlab.metrics.report import evaluate_pairs, json_safe
from rewardlab.metrics.uncertainty import auroc, uncertainty_metrics
from rewardlab.score.ensemble import RewardEnsemble
from rewardlab.score.reward_model import RewardModel

logger = logging.getLogger(__name__)

ALL = "all data sets"
SKIPPED_ROWS_FILE = "skipped_rows.jsonl"
WORST_TEXT_CHARS = 600  # enough to read what went wrong, short enough for a page of worst pairs


@dataclass
class EvalSet:
    """Preference pairs ready to score (`prompt?`, `chosen`, `rejected`, `margin?`, `category?`) and their origin;
    `skipped_rows` holds every invalid row skipped (`skip_invalid_rows`), with its index, field, reason and content."""

    name: str
    source: str
    rows: list[dict[str, Any]]
    mapping: dict[str, Any]
    mapping_stats: dict[str, Any]
    skipped_rows: list[dict[str, Any]] = field(default_factory=list)


def load_eval_set(
    source: str,
    mapping: str | Mapping[str, Any] | LabelMapping | None = None,
    *,
    split: str | None = None,
    category_column: str | None = None,
    max_pairs: int | None = None,
    name: str | None = None,
    skip_invalid_rows: bool = False,
) -> EvalSet:
    """Load a data set (file, directory or hub id) and turn its rows into pairs.

    Without a mapping the rows are read as the trainer reads them (`prompt` optional, `margin` if present). Rows the
    mapping cannot use (ties, unrecognised labels, identical responses) are skipped and counted in `mapping_stats`,
    never dropped silently. An invalid row (a missing, empty or wrongly typed field, a malformed message) raises
    `InvalidRowError` naming the row and field, or with `skip_invalid_rows` is skipped and counted per reason.
    """
    data = load_preference_data(source)
    if split is None:
        split = next(iter(data)) if len(data) == 1 else "test" if "test" in data else None
        if split is None:
            raise RewardlabError(f"{source} has the splits {', '.join(data)}: choose one with --split")
    elif split not in data:
        raise RewardlabError(f"no split {split!r} in {source}; the splits are: {', '.join(data)}")
    return eval_set_from_rows(
        data[split].to_list(),
        name or _default_name(source),
        str(source),
        mapping,
        category_column=category_column,
        max_pairs=max_pairs,
        skip_invalid_rows=skip_invalid_rows,
    )


def eval_set_from_rows(
    rows: list[dict[str, Any]],
    name: str,
    source: str,
    mapping: str | Mapping[str, Any] | LabelMapping | None = None,
    *,
    category_column: str | None = None,
    max_pairs: int | None = None,
    skip_invalid_rows: bool = False,
) -> EvalSet:
    """`load_eval_set` for rows already in memory (e.g. the trainer's evaluation split).

    Ranked rows (K responses per prompt, any spelling of `rewardlab.data.formats`) without a mapping are evaluated
    on all their comparisons: one pair per ordered pair of responses with different scores.
    """
    if mapping is None and rows and is_ranked_example(rows[0]):
        pairs, stats = ranking_comparisons(rows, skip_invalid=skip_invalid_rows, dataset_name=name)
        if max_pairs is not None:
            pairs = pairs[:max_pairs]
        if not pairs:
            raise RewardlabError(f"{source}: no usable comparisons ({stats.invalid_skipped} invalid rankings)")
        return EvalSet(name, source, pairs, {"layout": "ranking"}, stats.to_dict(), stats.skipped_rows)
    if mapping is None:
        columns = set(rows[0]) if rows else set()
        mapping = LabelMapping(
            layout="pairs",
            prompt="prompt" if "prompt" in columns else None,
            margin="margin" if "margin" in columns else None,
            category=category_column,
        )
    else:
        mapping = parse_mapping(mapping)
        if category_column:
            mapping = LabelMapping.from_dict({**mapping.to_dict(), "category": category_column})
    pairs, stats = apply_mapping(rows, mapping, skip_invalid=skip_invalid_rows, dataset_name=name)
    if stats.rows_skipped:
        logger.warning("%s: %s", name, stats.summary())
    if max_pairs is not None:
        pairs = pairs[:max_pairs]
    if not pairs:
        raise RewardlabError(f"{source}: no usable pairs ({stats.summary()})")
    return EvalSet(name, source, pairs, mapping.to_dict(), stats.to_dict(), stats.skipped_rows)


def ranking_comparisons(
    rows: Sequence[Mapping[str, Any]], skip_invalid: bool = False, dataset_name: str | None = None
) -> tuple[list[dict[str, Any]], MappingStats]:
    """Every comparison of ranked rows as a pair row (`prompt?`, `chosen`, `rejected`, `row_index`, `chosen_index`,
    `rejected_index`, plus `tools`/`chat_template_kwargs`), and the counts. An invalid row raises `InvalidRowError`,
    or with `skip_invalid` is skipped and counted."""
    fmt = detect_dataset_format(rows)
    pairs, stats = [], MappingStats()
    for index, row in enumerate(rows):
        stats.rows_in += 1
        try:
            validate_row(row, index, fmt)
        except InvalidRowError as e:
            if not skip_invalid:
                raise e.at(dataset=dataset_name) from None
            stats.record_invalid(e, row)
            continue
        stats.rows_used += 1
        items = ranked_items(row)
        extra = {k: row[k] for k in ("prompt", "tools", "chat_template_kwargs") if row.get(k) is not None}
        better, worse = ordered_pairs(torch.tensor(items.scores))
        for i, j in zip(better.tolist(), worse.tolist(), strict=True):
            chosen, rejected = items.responses[i], items.responses[j]
            where = {"row_index": index, "chosen_index": i, "rejected_index": j}
            pairs.append({**extra, "chosen": chosen, "rejected": rejected, **where})
    stats.pairs_out = len(pairs)
    return pairs, stats


def _default_name(source: str) -> str:
    path = Path(source)
    stem = path.name
    for suffix in (".gz", ".jsonl", ".json", ".parquet", ".csv"):
        stem = stem.removesuffix(suffix)
    return f"{path.parent.name}/{stem}" if path.parent.name else stem


def score_set(model: RewardModel | RewardEnsemble, eval_set: EvalSet) -> dict[str, np.ndarray]:
    """Rewards and response lengths (tokens after the shared prompt) of every pair, as arrays."""
    fields = ("prompt", "chosen", "rejected", "tools", "chat_template_kwargs")
    rows = [{k: row[k] for k in fields if row.get(k) is not None} for row in eval_set.rows]
    scores = model.score_pair_rows(rows)
    scored = {
        "rewards_chosen": np.asarray(scores.rewards_chosen, dtype=float),
        "rewards_rejected": np.asarray(scores.rewards_rejected, dtype=float),
        "chosen_lengths": np.asarray(scores.chosen_tokens, dtype=float),
        "rejected_lengths": np.asarray(scores.rejected_tokens, dtype=float),
    }
    if scores.std_margin is not None:  # an ensemble: the heads' disagreement on each pair
        scored["std_margin"] = np.asarray(scores.std_margin, dtype=float)
    if scores.length_rewards_chosen is not None:  # a model trained with length_debias="odin"
        scored["length_rewards_chosen"] = np.asarray(scores.length_rewards_chosen, dtype=float)
        scored["length_rewards_rejected"] = np.asarray(scores.length_rewards_rejected, dtype=float)
    return scored


def _metrics(
    scored: Mapping[str, np.ndarray], rows: Sequence[Mapping[str, Any]], categories: Sequence[str] | None, **options
) -> dict[str, Any]:
    margins = [row.get("margin") for row in rows]
    metrics = evaluate_pairs(
        scored["rewards_chosen"],
        scored["rewards_rejected"],
        margins=None if all(m is None for m in margins) else np.asarray([m or 0.0 for m in margins], dtype=float),
        chosen_lengths=scored["chosen_lengths"],
        rejected_lengths=scored["rejected_lengths"],
        categories=categories,
        **options,
    )
    if "std_margin" in scored:
        wrong = scored["rewards_chosen"] <= scored["rewards_rejected"]
        metrics["ensemble"] = uncertainty_metrics(scored["std_margin"], wrong)
        metrics["ensemble"]["std_wrong_minus_right"] = uncertainty_gap(
            scored["std_margin"], wrong, n_bootstrap=options["n_bootstrap"], seed=options["seed"]
        )
        # The baseline the std must beat: a small |margin| flags mistakes too, and needs no ensemble.
        margin = np.abs(scored["rewards_chosen"] - scored["rewards_rejected"])
        metrics["ensemble"]["margin_auroc"] = auroc(-margin[np.isfinite(margin)], wrong[np.isfinite(margin)])
    if "length_rewards_chosen" in scored:
        # The length head, which the saved reward leaves out: how much length it carries, in the saved reward's terms.
        metrics["length_head"] = length_bias(
            scored["length_rewards_chosen"],
            scored["length_rewards_rejected"],
            scored["chosen_lengths"],
            scored["rejected_lengths"],
        )
    for worst in metrics["worst_pairs"]:
        row = rows[worst["index"]]
        worst["texts"] = {k: _shorten(row[k]) for k in ("prompt", "chosen", "rejected") if row.get(k) is not None}
    return metrics


def _shorten(value: Any) -> str:
    if not isinstance(value, str):  # a conversation: show it as role: content lines
        value = "\n".join(f"{m.get('role')}: {m.get('content')}" for m in value)
    return value if len(value) <= WORST_TEXT_CHARS else "…" + value[-WORST_TEXT_CHARS:]


def _figures(scored: Mapping[str, np.ndarray], metrics: Mapping[str, Any]) -> dict[str, str]:
    rc, rr = scored["rewards_chosen"], scored["rewards_rejected"]
    length = metrics.get("length_bias") or {}
    figures = {
        "distributions": plots.reward_distributions(rc, rr),
        "margins": plots.margin_histogram(rc - rr),
        "reliability": plots.reliability_diagram(
            metrics["calibration"]["reliability"], metrics["calibration"]["ece"]["value"]
        ),
        "length": plots.reward_vs_length(
            rc, rr, scored["chosen_lengths"], scored["rejected_lengths"], (length.get("pearson") or {}).get("value")
        ),
    }
    if metrics.get("categories"):
        figures["categories"] = plots.category_accuracy(metrics["categories"])
    return figures


def evaluate(
    models: Mapping[str, RewardModel | RewardEnsemble],
    eval_sets: Sequence[EvalSet],
    *,
    model_sources: Mapping[str, str] | None = None,
    training_logs: Mapping[str, Sequence[Mapping[str, Any]]] | None = None,
    n_bootstrap: int = 1000,
    seed: int = 0,
    sections: Mapping[str, Sequence[str]] | None = None,
    section_weighting: str = "examples",
    worst_k: int = 20,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The report (JSON-ready) and its figures (data URIs), for every model on every set and on all sets together."""
    options = {
        "n_bootstrap": n_bootstrap,
        "seed": seed,
        "sections": sections,
        "section_weighting": section_weighting,
        "worst_k": worst_k,
    }
    results: dict[str, dict[str, Any]] = {}
    figures: dict[str, dict[str, Any]] = {}
    for model_name, model in models.items():
        results[model_name], figures[model_name] = _evaluate_model(model_name, model, eval_sets, options)
        log = (training_logs or {}).get(model_name)
        curves = plots.training_curves(log) if log else None
        if curves:
            figures[model_name]["training"] = curves
    report = {
        "rewardlab_version": __version__,
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "models": {name: _describe(model, (model_sources or {}).get(name, name)) for name, model in models.items()},
        "datasets": [_dataset_entry(s) for s in eval_sets],
        "results": results,
    }
    return json_safe(report), figures


def _dataset_entry(eval_set: EvalSet) -> dict[str, Any]:
    return {
        "name": eval_set.name,
        "source": eval_set.source,
        "pairs": len(eval_set.rows),
        "mapping": eval_set.mapping,
        "mapping_stats": eval_set.mapping_stats,
    }


def _evaluate_model(
    model_name: str, model: RewardModel | RewardEnsemble, eval_sets: Sequence[EvalSet], options: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """One model's metrics and figures on every set, and on all sets together (each set as a category)."""
    results, figures = {}, {}
    all_scored: dict[str, list[np.ndarray]] = {}
    for eval_set in eval_sets:
        started = time.perf_counter()
        scored = score_set(model, eval_set)
        categories = [row.get("category") for row in eval_set.rows]
        named = [str(c) for c in categories] if any(c is not None for c in categories) else None
        metrics = _metrics(scored, eval_set.rows, named, **options)
        metrics["seconds"] = time.perf_counter() - started
        results[eval_set.name], figures[eval_set.name] = metrics, _figures(scored, metrics)
        for key, values in scored.items():
            all_scored.setdefault(key, []).append(values)
        accuracy, n = metrics["accuracy"]["value"], metrics["n_evaluated"]
        logger.warning("%s on %s: accuracy %.4f over %d pairs", model_name, eval_set.name, accuracy, n)
    if len(eval_sets) > 1:
        scored = {key: np.concatenate(parts) for key, parts in all_scored.items()}
        rows = [row for s in eval_sets for row in s.rows]
        names = [s.name for s in eval_sets for _ in s.rows]
        metrics = _metrics(scored, rows, names, **{**options, "sections": None})
        results[ALL], figures[ALL] = metrics, _figures(scored, metrics)
    return results, figures


def _describe(model: RewardModel | RewardEnsemble, source: str) -> dict[str, Any]:
    """Where a model comes from and how it read its inputs; an ensemble lists its members."""
    if isinstance(model, RewardEnsemble):
        members = [_describe(m, m.source or f"member {k}") for k, m in enumerate(model.members)]
        return {"source": source, "members": members}
    return {
        "source": source,
        "layout": str(model.layout),
        "max_length": model.max_length,
        "overlength_policy": model.overlength_policy,
        "inputs": {k: v for k, v in model.report.items() if v},
    }


def write_report(report: Mapping[str, Any], figures: Mapping[str, Any], output_dir: str | os.PathLike) -> Path:
    """Write `report.json` and the self-contained `report.html` into `output_dir`; returns the HTML path."""
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    texts = {
        "report.json": json.dumps(report, indent=2, allow_nan=False),
        "report.html": render_report(report, figures),
    }
    for name, text in texts.items():
        with atomic_path(out / name) as temporary:
            temporary.write_text(text, encoding="utf-8")
    return out / "report.html"


def write_skipped_rows(eval_sets: Sequence[EvalSet], output_dir: str | os.PathLike) -> Path | None:
    """Write every skipped invalid row (data set, row, field, reason, code, content) to `skipped_rows.jsonl` in
    `output_dir`; returns its path, or None when no row was skipped."""
    records = [{"dataset": s.name, **skipped} for s in eval_sets for skipped in s.skipped_rows]
    if not records:
        return None
    path = Path(output_dir) / SKIPPED_ROWS_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as temporary, open(temporary, "w", encoding="utf-8") as f:
        for record in records:
            f.write(json.dumps(record, ensure_ascii=False, default=str) + "\n")
    return path


def training_log(source: str) -> list[dict[str, Any]] | None:
    """The log history a rewardlab training run saved with the model (None for other checkpoints)."""
    record = read_run_record(source)
    return (record or {}).get("log_history")
