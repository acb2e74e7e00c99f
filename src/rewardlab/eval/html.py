"""Render the evaluation report as one self-contained HTML file: tables, figures as data URIs, no external assets."""

from __future__ import annotations

import html
from collections.abc import Mapping
from typing import Any

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1280px; color: #222; line-height: 1.45; }
h1 { margin-bottom: 0.2em; } h2 { margin-top: 2em; border-bottom: 1px solid #ccc; }
table { border-collapse: collapse; margin: 0.8em 0; font-size: 0.92em; }
th, td { border: 1px solid #ddd; padding: 0.3em 0.6em; text-align: right; vertical-align: top; }
th:first-child, td:first-child { text-align: left; }
td.text { text-align: left; white-space: pre-wrap; max-width: 28em; font-size: 0.85em; }
.models { display: grid; grid-template-columns: repeat(var(--n), 1fr); gap: 1.5em; }
.figs { display: flex; flex-wrap: wrap; gap: 0.6em; align-items: flex-start; }
.figs img { max-width: 100%; height: auto; display: block; }
.ci { color: #777; font-size: 0.85em; } .note { color: #555; font-size: 0.9em; }
"""

GUIDE = [
    (
        "Reward of chosen vs rejected",
        "Histograms of the rewards of the preferred and the dispreferred responses. The "
        "further apart the two humps, the better the model separates them; heavy overlap means many pairs are close "
        "calls or wrong.",
    ),
    (
        "Margin per pair",
        "r_chosen − r_rejected for every pair. Bars left of 0 are the pairs the model gets wrong; "
        "their mass is 1 − accuracy, and how far left they reach shows how confidently wrong it is.",
    ),
    (
        "Reliability diagram",
        "The model's probability that the first of two responses is preferred, σ(margin), "
        "binned, against how often it really is (each pair is counted both ways round). Points on the diagonal: the "
        "probabilities can be taken at face value. Below it: over-confident; above it: under-confident. ECE is the "
        "count-weighted distance from the diagonal; a fitted temperature rescales margins to fix it.",
    ),
    (
        "Reward vs response length",
        "Each response's reward against its length in tokens (after the prompt). A rising "
        "cloud, a positive correlation, and higher accuracy when the chosen answer is the longer one than when it is "
        "the shorter one all mean the model rewards length itself.",
    ),
    (
        "Accuracy per category",
        "Accuracy within each category of the data (or each data set, in the combined view), "
        "worst first; the dashed line is chance.",
    ),
    (
        "Training curves",
        "Loss, accuracy, margin and learning rate logged during training, on the training batches "
        "and on each evaluation.",
    ),
]


def _e(value: Any) -> str:
    return html.escape(str(value))


def _num(value: Any, digits: int = 4) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return _e(value)


def _with_ci(metric: Mapping[str, Any] | None, digits: int = 4) -> str:
    if not metric:
        return "–"
    text = _num(metric.get("value"), digits)
    low, high = metric.get("ci95") or (None, None)
    if low is not None and high is not None:
        text += f' <span class="ci">[{low:.{digits}f}, {high:.{digits}f}]</span>'
    return text


def _summary_rows(metrics: Mapping[str, Any]) -> list[tuple[str, str]]:
    calibration = metrics["calibration"]
    temperature = calibration.get("temperature") or {}
    length = metrics.get("length_bias") or {}
    rows = [
        ("pairs evaluated (dropped)", f"{metrics['n_evaluated']} ({metrics['n_dropped']})"),
        ("accuracy [95% CI]", _with_ci(metrics["accuracy"])),
        ("ties", _num(metrics["accuracy"].get("ties"))),
        ("accuracy, ties as ½", _with_ci(metrics.get("accuracy_ties_half"))),
        ("mean margin", _with_ci(metrics["mean_margin"])),
        ("Bradley–Terry log-loss", _with_ci(metrics["log_loss"])),
        ("expected calibration error", _with_ci(calibration["ece"])),
        ("Brier score", _with_ci(calibration["brier"])),
        ("fitted temperature (ECE after)", f"{_num(temperature.get('value'), 3)} ({_num(temperature.get('ece'))})"),
    ]
    if length:
        rows += [
            ("reward–length correlation (Pearson)", _with_ci(length.get("pearson"), 3)),
            ("reward–length correlation (Spearman)", _with_ci(length.get("spearman"), 3)),
            ("accuracy when chosen is longer (n)", _group(length.get("chosen_longer"))),
            ("accuracy when chosen is shorter (n)", _group(length.get("chosen_shorter"))),
        ]
    ensemble = metrics.get("ensemble")
    if ensemble:
        rows += [
            ("ensemble: std of the margin, pairs right", _num(ensemble["ensemble_std_right"], 4)),
            ("ensemble: std of the margin, pairs wrong", _num(ensemble["ensemble_std_wrong"], 4)),
            ("ensemble: std wrong − right [95% CI]", _with_ci(ensemble.get("std_wrong_minus_right"), 4)),
            ("ensemble: AUROC of std for wrong pairs", _num(ensemble["ensemble_std_auroc"], 3)),
            ("AUROC of small |margin| for wrong pairs (no ensemble needed)", _num(ensemble.get("margin_auroc"), 3)),
        ]
    sections = metrics.get("sections")
    if sections:
        rows.append(("section score mean", _with_ci(sections.get("mean"))))
        for name, score in sections["scores"].items():
            rows.append((f"section: {name}", _with_ci(score)))
    return rows


def _group(group: Mapping[str, Any] | None) -> str:
    if not group:
        return "–"
    return f"{_num(group.get('accuracy'))} ({group.get('count')})"


def _summary_table(report: Mapping[str, Any], set_name: str) -> str:
    models = list(report["results"])
    first = report["results"][models[0]][set_name]
    labels = [label for label, _ in _summary_rows(first)]
    values = [dict(_summary_rows(report["results"][m][set_name])) for m in models]
    head = "".join(f"<th>{_e(m)}</th>" for m in models)
    body = "".join(
        f"<tr><td>{_e(label)}</td>" + "".join(f"<td>{v.get(label, '–')}</td>" for v in values) + "</tr>"
        for label in labels
    )
    return f"<table><tr><th>metric</th>{head}</tr>{body}</table>"


def _worst_table(metrics: Mapping[str, Any]) -> str:
    worst = metrics.get("worst_pairs") or []
    if not worst:
        return ""
    rows = []
    for pair in worst:
        texts = pair.get("texts", {})
        rows.append(
            f"<tr><td>{pair['index']}</td><td>{_num(pair['margin'])}</td>"
            f'<td class="text">{_e(texts.get("prompt", ""))}</td><td class="text">{_e(texts.get("chosen", ""))}</td>'
            f'<td class="text">{_e(texts.get("rejected", ""))}</td></tr>'
        )
    return (
        "<details><summary>Worst-scored pairs (most negative margin first)</summary><table>"
        "<tr><th>pair</th><th>margin</th><th>prompt</th><th>chosen</th><th>rejected</th></tr>"
        + "".join(rows)
        + "</table></details>"
    )


def _figure(uri: str | None, alt: str) -> str:
    return f'<img src="{uri}" alt="{_e(alt)}">' if uri else ""


def render_report(report: Mapping[str, Any], figures: Mapping[str, Mapping[str, Any]]) -> str:
    models = list(report["results"])
    set_names = list(report["results"][models[0]])
    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>rewardlab evaluation: {_e(', '.join(models))}</title><style>{STYLE}</style></head><body>",
        "<h1>Reward model evaluation</h1>",
        f"<p class='note'>rewardlab {_e(report['rewardlab_version'])}, {_e(report['created_at'])}. Every number is "
        "computed once over the whole data set (not averaged over batches); brackets are bootstrap 95% intervals "
        "over pairs.</p>",
        "<h2>Models and data</h2><table><tr><th>model</th><th>source</th><th>layout</th><th>max_length</th>"
        "<th>inputs</th></tr>",
    ]
    for name, model in report["models"].items():
        # A deep ensemble gets one row per member.
        for k, info in enumerate(model.get("members", [model])):
            label = f"{name}, member {k}" if "members" in model else name
            parts.append(
                f"<tr><td>{_e(label)}</td><td>{_e(info['source'])}</td><td>{_e(info['layout'])}</td>"
                f"<td>{_num(info['max_length'])}</td><td>{_e(info.get('inputs', {}))}</td></tr>"
            )
    parts.append("</table><table><tr><th>data set</th><th>source</th><th>pairs</th><th>rows not used</th></tr>")
    for dataset in report["datasets"]:
        stats = dataset["mapping_stats"]
        skipped = {k: v for k, v in stats.items() if k.endswith("skipped") and v}
        parts.append(
            f"<tr><td>{_e(dataset['name'])}</td><td>{_e(dataset['source'])}</td><td>{dataset['pairs']}</td>"
            f"<td>{_e(skipped or 'none')}</td></tr>"
        )
    parts.append("</table><h2>How to read the figures</h2><dl>")
    parts += [f"<dt><b>{_e(title)}</b></dt><dd>{_e(text)}</dd>" for title, text in GUIDE]
    parts.append("</dl>")
    for set_name in set_names:
        parts.append(f"<h2>{_e(set_name)}</h2>")
        parts.append(_summary_table(report, set_name))
        parts.append(f"<div class='models' style='--n: {len(models)}'>")
        for model in models:
            metrics = report["results"][model][set_name]
            shown = figures.get(model, {}).get(set_name, {})
            parts.append(f"<div><h3>{_e(model)}</h3><div class='figs'>")
            for key, title in (
                ("distributions", "reward distributions"),
                ("margins", "margin histogram"),
                ("reliability", "reliability diagram"),
                ("length", "reward vs length"),
                ("categories", "accuracy per category"),
            ):
                parts.append(_figure(shown.get(key), f"{title}: {model}, {set_name}"))
            parts.append("</div>")
            parts.append(_worst_table(metrics))
            parts.append("</div>")
        parts.append("</div>")
    curves = [(m, figures.get(m, {}).get("training")) for m in models]
    if any(uri for _, uri in curves):
        parts.append(f"<h2>Training curves</h2><div class='models' style='--n: {len(models)}'>")
        for model, uri in curves:
            body = _figure(uri, f"training curves: {model}") or "<p class='note'>no training log saved</p>"
            parts.append(f"<div><h3>{_e(model)}</h3><div class='figs'>{body}</div></div>")
        parts.append("</div>")
    parts.append("</body></html>")
    return "\n".join(parts)
