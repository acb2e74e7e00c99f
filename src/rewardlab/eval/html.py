"""Render the evaluation report as one self-contained HTML page: `templates/report.html.j2`, filled with the report's
numbers formatted here (tables, figures as data URIs, no external assets)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jinja2

from rewardlab.data.apply_mapping import describe_skips
from rewardlab.eval.leaderboard import RULE_NAMES, benchmark_rows

# (figure key, alt text) of each set's figures, in page order.
FIGURES = (
    ("distributions", "reward distributions"),
    ("margins", "margin histogram"),
    ("reliability", "reliability diagram"),
    ("length", "reward vs length"),
    ("categories", "accuracy per category"),
)

_TEMPLATES = jinja2.Environment(
    loader=jinja2.PackageLoader("rewardlab", "templates"),
    autoescape=True,  # every text from the data (prompts, responses, names) is escaped
    undefined=jinja2.StrictUndefined,
    keep_trailing_newline=True,
)


def render_report(report: Mapping[str, Any], figures: Mapping[str, Mapping[str, Any]]) -> str:
    """The HTML page of `report` (see `rewardlab.eval.report.evaluate`) with its `figures` (data URIs)."""
    models = list(report["results"])
    set_names = list(report["results"][models[0]])
    curves = [(m, figures.get(m, {}).get("training")) for m in models]
    return _TEMPLATES.get_template("report.html.j2").render(
        report=report,
        models=models,
        model_rows=_model_rows(report),
        leaderboard=_leaderboard(report),
        skipped=[_skipped(d["mapping_stats"]) for d in report["datasets"]],
        sections=[_section(report, figures, name) for name in set_names],
        curves=curves if any(uri for _, uri in curves) else [],
    )


def _num(value: Any, digits: int = 4) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _cell(metric: Mapping[str, Any] | None, digits: int = 4) -> dict[str, str | None]:
    """A value with its 95% interval, if it has one: {"text", "ci"}."""
    if not metric:
        return {"text": "–", "ci": None}
    low, high = metric.get("ci95") or (None, None)
    ci = f"[{low:.{digits}f}, {high:.{digits}f}]" if low is not None and high is not None else None
    return {"text": _num(metric.get("value"), digits), "ci": ci}


def _text(text: str) -> dict[str, str | None]:
    return {"text": text, "ci": None}


def _group(group: Mapping[str, Any] | None) -> dict[str, str | None]:
    if not group:
        return _text("–")
    return _text(f"{_num(group.get('accuracy'))} ({group.get('count')})")


def _lead(baselines: Mapping[str, Any] | None) -> dict[str, str | None]:
    """The lead over the best content-blind rule, signed, with its interval."""
    lead = (baselines or {}).get("lead") or {}
    value, (low, high) = lead.get("value"), lead.get("ci95") or (None, None)
    if value is None:
        return _text("–")
    return {
        "text": f"{value:+.4f}",
        "ci": f"[{low:+.4f}, {high:+.4f}]" if low is not None and high is not None else None,
    }


def _best_rule(baselines: Mapping[str, Any] | None) -> dict[str, str | None]:
    best = (baselines or {}).get("best")
    return _text(f"{RULE_NAMES[best]} {_num(baselines.get(best))}" if best else "–")


def _summary_rows(metrics: Mapping[str, Any]) -> list[tuple[str, dict[str, str | None]]]:
    """The summary table's rows of one model on one pairwise set: (label, cell); none for a set scored per prompt."""
    if "calibration" not in metrics:
        return []
    calibration = metrics["calibration"]
    temperature = calibration.get("temperature") or {}
    rows = [
        ("pairs evaluated (dropped)", _text(f"{metrics['n_evaluated']} ({metrics['n_dropped']})")),
        ("accuracy [95% CI]", _cell(metrics["accuracy"])),
        ("best content-blind rule", _best_rule(metrics.get("baselines"))),
        ("lead over it [95% CI]", _lead(metrics.get("baselines"))),
        ("ties", _text(_num(metrics["accuracy"].get("ties")))),
        ("accuracy, ties as ½", _cell(metrics.get("accuracy_ties_half"))),
        ("mean margin", _cell(metrics["mean_margin"])),
        ("Bradley–Terry log-loss", _cell(metrics["log_loss"])),
        ("expected calibration error", _cell(calibration["ece"])),
        ("Brier score", _cell(calibration["brier"])),
        (
            "fitted temperature (ECE after)",
            _text(f"{_num(temperature.get('value'), 3)} ({_num(temperature.get('ece'))})"),
        ),
    ]
    length = metrics.get("length_bias") or {}
    if length:
        rows += [
            ("reward–length correlation (Pearson)", _cell(length.get("pearson"), 3)),
            ("reward–length correlation (Spearman)", _cell(length.get("spearman"), 3)),
            ("accuracy when chosen is longer (n)", _group(length.get("chosen_longer"))),
            ("accuracy when chosen is shorter (n)", _group(length.get("chosen_shorter"))),
        ]
    length_head = metrics.get("length_head")
    if length_head:  # a model trained with length_debias='odin': its length head, left out of the reward
        rows += [
            ("length head–length correlation (Pearson)", _text(_num(length_head.get("pearson"), 3))),
            ("length head–length correlation (Spearman)", _text(_num(length_head.get("spearman"), 3))),
        ]
    ensemble = metrics.get("ensemble")
    if ensemble:
        rows += [
            ("ensemble: std of the margin, pairs right", _text(_num(ensemble["ensemble_std_right"]))),
            ("ensemble: std of the margin, pairs wrong", _text(_num(ensemble["ensemble_std_wrong"]))),
            ("ensemble: std wrong − right [95% CI]", _cell(ensemble.get("std_wrong_minus_right"))),
            ("ensemble: AUROC of std for wrong pairs", _text(_num(ensemble["ensemble_std_auroc"], 3))),
            (
                "AUROC of small |margin| for wrong pairs (no ensemble needed)",
                _text(_num(ensemble.get("margin_auroc"), 3)),
            ),
        ]
    rows += _objective_rows(metrics.get("objectives"), metrics.get("categories") or {})
    sections = metrics.get("sections")
    if sections:
        rows.append(("section score mean", _cell(sections.get("mean"))))
        rows += [(f"section: {name}", _cell(score)) for name, score in sections["scores"].items()]
    return rows


def _objective_rows(
    objectives: Mapping[str, Any] | None, categories: Mapping[str, Any]
) -> list[tuple[str, dict[str, str | None]]]:
    """A multi-objective model's rows: the gate, and per objective its own head, the combined reward and the best
    content-blind rule on its pairs."""
    if not objectives:
        return []
    rows = []
    if objectives["gate_accuracy"] is not None:
        rows.append(("gate accuracy (weighs the pair's objective most)", _text(_num(objectives["gate_accuracy"]))))
    for name, entry in objectives["per_objective"].items():
        combined = categories.get(name) or {}
        rows += [
            (f"{name}: own head accuracy [95% CI] ({entry['pairs']} pairs)", _cell(entry["own_head"])),
            (f"{name}: combined reward accuracy", _text(_num(combined.get("accuracy")))),
            (f"{name}: best content-blind rule", _best_rule(entry.get("baselines"))),
            (f"{name}: own head's lead over it [95% CI]", _lead(entry.get("baselines"))),
        ]
        if entry.get("gate_accuracy") is not None:
            rows.append((f"{name}: gate accuracy", _text(_num(entry["gate_accuracy"]))))
    return rows


def _section(report: Mapping[str, Any], figures: Mapping[str, Mapping[str, Any]], set_name: str) -> dict[str, Any]:
    """One data set's part of the page: the summary table (a column per model) and each model's figures."""
    models = list(report["results"])
    per_model = [dict(_summary_rows(report["results"][m][set_name])) for m in models]
    rows = [(label, [values.get(label, _text("–")) for values in per_model]) for label in per_model[0]]
    first = report["results"][models[0]][set_name]
    panels = []
    for model in models:
        shown = figures.get(model, {}).get(set_name, {})
        if not shown:  # a set scored per prompt (RewardBench 2) has its benchmark table only
            continue
        panels.append(
            {
                "model": model,
                "figures": [
                    {"uri": shown[key], "alt": f"{title}: {model}, {set_name}"}
                    for key, title in FIGURES
                    if shown.get(key)
                ],
                "worst": [_worst(pair) for pair in report["results"][model][set_name].get("worst_pairs") or []],
            }
        )
    benchmark = _benchmark_table(report, set_name)
    return {
        "name": set_name,
        "rows": rows,
        "panels": panels,
        "benchmark": benchmark,
        "rendering": first.get("rendering"),
    }


def _benchmark_table(report: Mapping[str, Any], set_name: str) -> dict[str, Any] | None:
    """The set's benchmark table: a row per subset (or section, domain, category), each model's score and lead, and
    the content-blind rules (lengths in the first model's tokens)."""
    models = list(report["results"])
    per_model = [benchmark_rows(report["results"][m][set_name]) for m in models]
    if per_model[0] is None:
        return None
    title, first = per_model[0]
    # By label: a model that dropped every pair of a subset (a shorter max_length, say) has no row for it.
    by_label = [{label: (score, b) for label, score, b, _ in found[1]} if found else {} for found in per_model]
    rows = []
    for label, _, baselines, count in first:
        cells = []
        for found in by_label:
            score, model_baselines = found.get(label, (None, None))
            cells += [_text(_num(score)), _lead(model_baselines)]
        rules = [_text(_num((baselines or {}).get(rule))) for rule in RULE_NAMES]
        rows.append({"label": label, "count": _num(count), "cells": cells, "rules": rules})
    return {"title": title, "rows": rows}


def _leaderboard(report: Mapping[str, Any]) -> dict[str, Any]:
    board = report["leaderboard"]
    rows = [
        {"model": model, "cells": [_score_and_lead(sets[c["dataset"]]) for c in board["columns"]]}
        for model, sets in board["rows"].items()
    ]
    return {"columns": board["columns"], "rows": rows}


def _score_and_lead(entry: Mapping[str, Any]) -> dict[str, str | None]:
    lead = entry.get("lead")
    return {"text": _num(entry.get("value")), "ci": None if lead is None else f"lead {lead:+.4f}"}


def _worst(pair: Mapping[str, Any]) -> dict[str, str]:
    texts = pair.get("texts", {})
    return {
        "index": str(pair["index"]),
        "margin": _num(pair["margin"]),
        **{k: texts.get(k, "") for k in ("prompt", "chosen", "rejected")},
    }


def _model_rows(report: Mapping[str, Any]) -> list[dict[str, str]]:
    """The models table: a deep ensemble gets one row per member."""
    rows = []
    for name, model in report["models"].items():
        for k, info in enumerate(model.get("members", [model])):
            rows.append(
                {
                    "label": f"{name}, member {k}" if "members" in model else name,
                    "source": info["source"],
                    "layout": info["layout"],
                    "max_length": _num(info["max_length"]),
                    "inputs": str(info.get("inputs", {})),
                }
            )
    return rows


def _skipped(stats: Mapping[str, Any]) -> str:
    return describe_skips(stats) or "none"
