"""Evaluate reward models on preference sets and benchmarks: the report behind `rewardlab eval` (`report.json` +
`report.html`).

The steps read top to bottom: load each data set (`rewardlab.eval.sets`), score it with `RewardModel` (pairs in the
training layout, so rewards equal the trainer's; a benchmark's prompts with all their completions at once), compute
the exact metrics with bootstrap intervals (`rewardlab.metrics`), each benchmark's own score
(`rewardlab.eval.rewardbench2`, `rewardbench`, `rm_bench`, `judgebench`, `best_of_k`) and the content-blind
baselines beside every result, draw the figures (`rewardlab.eval.plots`) and write the report
(`rewardlab.eval.html`). Each data set is reported on its own, then all pairwise sets together, then as one
leaderboard (`rewardlab.eval.leaderboard`).
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rewardlab._version import __version__
from rewardlab.data.conversation import as_conversation
from rewardlab.data.tokenize import has_chat_template
from rewardlab.errors import RewardlabError
from rewardlab.eval import best_of_k, judgebench, plots, rewardbench, rewardbench2, rm_bench
from rewardlab.eval.html import render_report
from rewardlab.eval.leaderboard import headline, leaderboard
from rewardlab.eval.sets import BEST_OF_K, EvalSet
from rewardlab.files import atomic_path, json_line, read_run_record
from rewardlab.metrics.intervals import uncertainty_gap
from rewardlab.metrics.pair_evaluation import evaluate_pairs, json_safe
from rewardlab.metrics.pairs import length_bias
from rewardlab.metrics.uncertainty import auroc, uncertainty_metrics
from rewardlab.score.ensemble import RewardEnsemble, members_of
from rewardlab.score.reward_model import RewardModel

logger = logging.getLogger(__name__)

ALL = "all data sets"
SKIPPED_ROWS_FILE = "skipped_rows.jsonl"
WORST_TEXT_CHARS = 600  # enough to read what went wrong, short enough for a page of worst pairs
CHAT, PLAIN = "chat template", "plain text"


def rendering(model: RewardModel | RewardEnsemble, eval_set: EvalSet) -> str | None:
    """How `model` reads a set whose rows ask for chat rendering: through its chat template, or as plain text when
    it has none; None when the set does not ask. An ensemble's members must agree."""
    if not eval_set.chat:
        return None
    templates = {has_chat_template(member.tokenizer) for member in members_of(model)}
    if len(templates) > 1:
        raise RewardlabError(
            f"{eval_set.name} is scored as chats, but some ensemble members have a chat template and some do not: "
            "give them all the same template"
        )
    return CHAT if templates.pop() else PLAIN


def _rendered(rows: Sequence[Mapping[str, Any]], how: str | None) -> list[dict[str, Any]]:
    return [as_conversation(row) if how == CHAT else dict(row) for row in rows]


def score_set(model: RewardModel | RewardEnsemble, eval_set: EvalSet, how: str | None) -> dict[str, Any]:
    """Rewards and response lengths (tokens after the shared prompt, as scored and before truncation) of every pair,
    as arrays, and of every response of each group (`group_rewards`, `group_lengths` before truncation: one array
    per group). `how` is the set's `rendering` for this model."""
    scored: dict[str, Any] = {}
    if eval_set.rows:
        fields = ("prompt", "chosen", "rejected", "tools", "chat_template_kwargs")
        rows = [{k: row[k] for k in fields if row.get(k) is not None} for row in eval_set.rows]
        scores = model.score_pair_rows(_rendered(rows, how))
        scored |= {
            "rewards_chosen": np.asarray(scores.rewards_chosen, dtype=float),
            "rewards_rejected": np.asarray(scores.rewards_rejected, dtype=float),
            "chosen_lengths": np.asarray(scores.chosen_tokens, dtype=float),
            "rejected_lengths": np.asarray(scores.rejected_tokens, dtype=float),
            # The real lengths, before truncation: what a "longer wins" rule compares.
            "chosen_full_lengths": np.asarray(scores.chosen_full_tokens, dtype=float),
            "rejected_full_lengths": np.asarray(scores.rejected_full_tokens, dtype=float),
        }
        if scores.std_margin is not None:  # an ensemble: the heads' disagreement on each pair
            scored["std_margin"] = np.asarray(scores.std_margin, dtype=float)
        if scores.objective_rewards_chosen is not None:  # a head per objective: (pairs, objectives)
            scored["objective_rewards_chosen"] = np.asarray(scores.objective_rewards_chosen, dtype=float)
            scored["objective_rewards_rejected"] = np.asarray(scores.objective_rewards_rejected, dtype=float)
        if scores.gate_weights is not None:  # and a prompt gate weighing them
            scored["gate_weights"] = np.asarray(scores.gate_weights, dtype=float)
        if scores.length_rewards_chosen is not None:  # a model trained with length_debias="odin"
            scored["length_rewards_chosen"] = np.asarray(scores.length_rewards_chosen, dtype=float)
            scored["length_rewards_rejected"] = np.asarray(scores.length_rewards_rejected, dtype=float)
    if groups := eval_set.per_prompt_rows():
        ranking = model.score_rankings(_rendered(groups, how))
        scored["group_rewards"] = [np.asarray(r, dtype=float) for r in ranking.rewards]
        scored["group_lengths"] = [np.asarray(n, dtype=float) for n in ranking.full_tokens]
    return scored


def _metrics(
    scored: Mapping[str, np.ndarray],
    rows: Sequence[Mapping[str, Any]],
    categories: Sequence[str] | None,
    objectives: Sequence[str] | None = None,
    **options,
) -> dict[str, Any]:
    margins = [row.get("margin") for row in rows]
    metrics = evaluate_pairs(
        scored["rewards_chosen"],
        scored["rewards_rejected"],
        margins=None if all(m is None for m in margins) else np.asarray([m or 0.0 for m in margins], dtype=float),
        chosen_lengths=scored["chosen_lengths"],
        rejected_lengths=scored["rejected_lengths"],
        rule_lengths=(scored["chosen_full_lengths"], scored["rejected_full_lengths"]),
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
    if objectives and "objective_rewards_chosen" in scored and categories is not None:
        metrics["objectives"] = _objective_section(scored, categories, objectives, options)
    for worst in metrics["worst_pairs"]:
        row = rows[worst["index"]]
        worst["texts"] = {k: _shorten(row[k]) for k in ("prompt", "chosen", "rejected") if row.get(k) is not None}
    return metrics


def _objective_section(
    scored: Mapping[str, np.ndarray], categories: Sequence[str], objectives: Sequence[str], options: Mapping[str, Any]
) -> dict[str, Any]:
    """A multi-objective model on a set whose pairs name their objective (the set's categories): each objective's own
    head on its pairs, with the content-blind rules on the same pairs, and how often the gate weighs the pair's
    objective most. The reward the model gives, combined, is the set's accuracy (per objective: its categories)."""
    names = np.asarray(categories, dtype=object)
    gate = scored.get("gate_weights")
    section: dict[str, Any] = {"gate_accuracy": None, "per_objective": {}}
    if gate is not None:
        known = np.isin(names, list(objectives)) & np.isfinite(gate).all(1)
        heads = np.array([list(objectives).index(n) if n in objectives else -1 for n in names])
        section["gate_accuracy"] = float((gate[known].argmax(1) == heads[known]).mean()) if known.any() else None
    for k, name in enumerate(objectives):
        mine = names == name
        if not mine.any():
            continue
        own = evaluate_pairs(
            scored["objective_rewards_chosen"][mine, k],
            scored["objective_rewards_rejected"][mine, k],
            rule_lengths=(scored["chosen_full_lengths"][mine], scored["rejected_full_lengths"][mine]),
            fit_temperature=False,
            n_bootstrap=options["n_bootstrap"],
            seed=options["seed"],
        )
        entry = {"pairs": int(mine.sum()), "own_head": own["accuracy"], "baselines": own["baselines"]}
        if gate is not None:
            finite = mine & np.isfinite(gate).all(1)
            entry["gate_accuracy"] = float((gate[finite].argmax(1) == k).mean()) if finite.any() else None
        section["per_objective"][name] = entry
    return section


def _benchmark_section(eval_set: EvalSet, scored: Mapping[str, Any], n_bootstrap: int, seed: int) -> dict[str, Any]:
    """The set's own benchmark score, by that benchmark's rules, with its content-blind baselines."""
    options = {"n_bootstrap": n_bootstrap, "seed": seed}
    if eval_set.benchmark == rewardbench2.NAME:
        return {
            "rewardbench2": rewardbench2.summarize(
                eval_set.prompts,
                scored["group_rewards"],
                scored["group_lengths"],
                subsets_seen=eval_set.subsets_seen,
                **options,
            )
        }
    if eval_set.benchmark == BEST_OF_K:
        return {
            "best_of_k": best_of_k.summarize(scored["group_rewards"], scored["group_lengths"], eval_set.best, **options)
        }
    pairs = (
        scored["rewards_chosen"],
        scored["rewards_rejected"],
        scored["chosen_full_lengths"],
        scored["rejected_full_lengths"],
    )
    rows = eval_set.rows
    if eval_set.benchmark == rewardbench.NAME:
        return {"rewardbench": rewardbench.summarize(*pairs, [row["category"] for row in rows], **options)}
    if eval_set.benchmark == judgebench.NAME:
        sides, sources = [row["chosen_side"] for row in rows], [row.get("category", "") for row in rows]
        return {"judgebench": judgebench.summarize(*pairs, sides, sources, **options)}
    if eval_set.benchmark == rm_bench.NAME:
        return {"rm_bench": rm_bench.summarize(rows, *pairs, **options)}
    return {}


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
        figures["categories"] = plots.category_chart(metrics["categories"])
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
    report["leaderboard"] = leaderboard(results, [s.name for s in eval_sets])
    return json_safe(report), figures


def _dataset_entry(eval_set: EvalSet) -> dict[str, Any]:
    return {
        "name": eval_set.name,
        "source": eval_set.source,
        "pairs": len(eval_set.rows),
        "prompts": len(eval_set.per_prompt_rows()),
        "benchmark": eval_set.benchmark,
        "mapping": eval_set.mapping,
        "mapping_stats": eval_set.mapping_stats,
    }


def _evaluate_model(
    model_name: str, model: RewardModel | RewardEnsemble, eval_sets: Sequence[EvalSet], options: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """One model's metrics and figures on every set, and on all pairwise sets together (each set as a category)."""
    results, figures = {}, {}
    all_scored: dict[str, list[np.ndarray]] = {}
    pairwise = [s for s in eval_sets if s.rows]
    for eval_set in eval_sets:
        started = time.perf_counter()
        how = rendering(model, eval_set)
        scored = score_set(model, eval_set, how)
        metrics: dict[str, Any] = {"rendering": how}
        if eval_set.rows:
            categories = [row.get("category") for row in eval_set.rows]
            named = [str(c) for c in categories] if any(c is not None for c in categories) else None
            metrics |= _metrics(scored, eval_set.rows, named, getattr(model, "objectives", None), **options)
            figures[eval_set.name] = _figures(scored, metrics)
            for key, values in scored.items():
                if not key.startswith("group_"):
                    all_scored.setdefault(key, []).append(values)
        metrics |= _benchmark_section(eval_set, scored, options["n_bootstrap"], options["seed"])
        metrics["headline"] = headline(metrics)
        metrics["seconds"] = time.perf_counter() - started
        results[eval_set.name] = metrics
        top = metrics["headline"]
        value = math.nan if top["value"] is None else top["value"]  # None: nothing could be scored
        logger.warning("%s on %s: %s %.4f", model_name, eval_set.name, top["metric"], value)
    if len(pairwise) > 1:
        scored = {key: np.concatenate(parts) for key, parts in all_scored.items()}
        rows = [row for s in pairwise for row in s.rows]
        names = [s.name for s in pairwise for _ in s.rows]
        metrics = _metrics(scored, rows, names, None, **{**options, "sections": None})
        metrics["headline"] = headline(metrics)
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
            f.write(json_line(record))
    return path


def training_log(source: str) -> list[dict[str, Any]] | None:
    """The log history a rewardlab training run saved with the model (None for other checkpoints)."""
    record = read_run_record(source)
    return (record or {}).get("log_history")
