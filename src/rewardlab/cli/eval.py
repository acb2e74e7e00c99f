"""`rewardlab eval`: score preference sets and the field's benchmarks with one or two reward models (or an
ensemble) and write `report.json` + `report.html` (`rewardlab.eval.report`), printing each set's score with its
interval and its lead over the content-blind rules, then the leaderboard."""

from __future__ import annotations

import argparse
from collections.abc import Mapping, Sequence
from typing import Any

from rewardlab.cli.common import (
    add_reward_model_arguments,
    format_lead,
    load_reward_model,
    versus_content_blind,
)
from rewardlab.cli.parser import ArgumentParser
from rewardlab.data.apply_mapping import describe_skips
from rewardlab.errors import RewardlabError
from rewardlab.eval.leaderboard import RULE_NAMES, benchmark_rows
from rewardlab.eval.report import evaluate, training_log, write_report, write_skipped_rows
from rewardlab.eval.sets import load_eval_set
from rewardlab.files import read_settings_file


def build_parser() -> argparse.ArgumentParser:
    p = ArgumentParser(
        prog="rewardlab eval",
        description="Evaluate reward models on preference data and on RewardBench 2, RewardBench, RM-Bench and "
        "JudgeBench by their own rules: exact accuracy (ties apart), margin, log-loss, calibration, length bias, "
        "per-category accuracy, the worst pairs, with bootstrap 95% intervals, and beside every result the "
        "content-blind rules (longer wins, shorter wins, chance) and the model's lead over the best of them; "
        "writes report.json and report.html.",
    )
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--model", help="reward model directory (full or LoRA adapter) or hub id")
    which.add_argument("--compare", nargs=2, metavar=("A", "B"), help="two models, side by side on the same data")
    which.add_argument(
        "--ensemble",
        nargs="+",
        metavar="MODEL",
        help="two or more separately trained models scored as one deep ensemble (rewardlab.RewardEnsemble): the "
        "mean of their centred rewards, and how their disagreement relates to the ensemble's mistakes",
    )
    p.add_argument(
        "--dataset",
        action="append",
        required=True,
        help="data file, glob of files read as one set (quote it), directory or hub id, e.g. allenai/reward-bench-2 "
        "(repeatable; each is reported on its own, then all in one leaderboard)",
    )
    p.add_argument(
        "--mapping",
        action="append",
        default=None,
        help="how rows are read: a benchmark (rewardbench2, rewardbench, rm-bench, judgebench), a preset (hh-rlhf, "
        "rmb, alpaca-eval, ultrafeedback), a 'key=value,...' string or a JSON/YAML file; once for all data sets or "
        "once per --dataset. RewardBench 2 and JudgeBench files are recognised by their columns",
    )
    p.add_argument(
        "--split",
        default=None,
        help="split to evaluate (default: the benchmark's (rewardbench2: test, rewardbench: filtered, judgebench: "
        "gpt), else the only one, else 'test')",
    )
    p.add_argument("--category_column", default=None, help="column (dotted path) with a category per row")
    p.add_argument("--sections", default=None, help="JSON/YAML file {section: [categories]} for section scores")
    p.add_argument("--section_weighting", choices=["examples", "uniform"], default="examples")
    p.add_argument(
        "--max_pairs",
        type=int,
        default=None,
        help="evaluate at most this many pairs per data set (RewardBench 2: prompts)",
    )
    p.add_argument(
        "--skip_invalid_rows",
        action="store_true",
        help="skip rows with a missing, empty or wrongly typed field or a malformed message, counted per reason in "
        "the report and listed in skipped_rows.jsonl next to it (default: stop at the first, naming row and field)",
    )
    p.add_argument("--n_bootstrap", type=int, default=1000, help="bootstrap resamples for the 95%% intervals")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--worst_k", type=int, default=20, help="worst-scored pairs to list")
    p.add_argument("--output_dir", default="eval_report")
    p.add_argument("--max_tokens_per_batch", type=int, default=8192, help="token budget of one forward pass")
    add_reward_model_arguments(p)
    return p


def _mappings(args: argparse.Namespace) -> list[str | None]:
    given = args.mapping or []
    if len(given) in (0, 1):
        return [given[0] if given else None] * len(args.dataset)
    if len(given) != len(args.dataset):
        raise RewardlabError(
            f"{len(given)} --mapping for {len(args.dataset)} --dataset: give one mapping for all, or one per data set"
        )
    return given


def _read_sections(path: str | None) -> dict[str, list[str]] | None:
    if path is None:
        return None
    sections = read_settings_file(path, "--sections file")
    if not sections or not all(isinstance(v, list) for v in sections.values()):
        raise RewardlabError(f"--sections {path} must map each section name to a list of categories")
    return sections


def main(argv: Sequence[str]) -> int:
    args = build_parser().parse_args(list(argv))
    for name in ("max_pairs", "n_bootstrap", "max_tokens_per_batch"):
        value = getattr(args, name)
        if value is not None and value < (0 if name == "n_bootstrap" else 1):
            raise RewardlabError(f"--{name} must be positive, got {value}")
    if args.ensemble is not None and len(args.ensemble) < 2:
        raise RewardlabError(f"--ensemble needs at least 2 models, got {len(args.ensemble)}")
    sources = [args.ensemble] if args.ensemble else args.compare or [args.model]
    names = [f"A: {sources[0]}", f"B: {sources[1]}"] if args.compare else [_model_name(sources[0])]
    sections = _read_sections(args.sections)
    eval_sets = [
        load_eval_set(
            source,
            mapping,
            split=args.split,
            category_column=args.category_column,
            max_pairs=args.max_pairs,
            skip_invalid_rows=args.skip_invalid_rows,
        )
        for source, mapping in zip(args.dataset, _mappings(args), strict=True)
    ]
    if len({s.name for s in eval_sets}) < len(eval_sets):
        for k, s in enumerate(eval_sets):
            s.name = f"{k + 1}. {s.name}"
    models = {
        name: load_reward_model(source, args, max_tokens_per_batch=args.max_tokens_per_batch)
        for name, source in zip(names, sources, strict=True)
    }
    named_sources = list(zip(names, sources, strict=True))
    report, figures = evaluate(
        models,
        eval_sets,
        model_sources={name: _model_name(source) for name, source in named_sources},
        training_logs={name: training_log(source) for name, source in named_sources if isinstance(source, str)},
        n_bootstrap=args.n_bootstrap,
        seed=args.seed,
        sections=sections,
        section_weighting=args.section_weighting,
        worst_k=args.worst_k,
    )
    html = write_report(report, figures, args.output_dir)
    skips = {d["name"]: describe_skips(d["mapping_stats"]) for d in report["datasets"]}
    for name in names:
        for set_name, metrics in report["results"][name].items():
            print(_summary_lines(name, set_name, metrics, skips.get(set_name)))
    if len(names) > 1 or len(eval_sets) > 1:
        print(_leaderboard_lines(report["leaderboard"]))
    print(f"report: {html}")
    skipped_file = write_skipped_rows(eval_sets, args.output_dir)
    if skipped_file is not None:
        print(f"skipped rows and why: {skipped_file}")
    return 0


def _summary_lines(name: str, set_name: str, metrics: Mapping[str, Any], skipped: str | None = None) -> str:
    """The set's headline line (with what was not used), then its benchmark table, then an ensemble's uncertainty."""
    top = metrics["headline"]
    line = f"{name} | {set_name}: {top['metric']} "
    if "accuracy" in metrics and top["metric"] == "accuracy":
        accuracy = metrics["accuracy"]
        line += f"{_ci(accuracy)}, ties {accuracy['ties']}, pairs {metrics['n_evaluated']}"
    else:
        line += _num(top["value"])
    line += f"; {versus_content_blind(top)}"
    lines = [line + (f"; not used: {skipped}" if skipped else "")]
    table = benchmark_rows(metrics)
    if table is not None and len(table[1]) > 1:
        title, rows = table
        width = max(len(str(label)) for label, *_ in rows)
        lines.append(f"  {title}")
        lines.append(f"    {'':{width}}  {'n':>6}  {'score':>7}  {'lead [95% CI]':<27}  longer   shorter  chance")
        for label, score, baselines, count in rows:
            rules = "  ".join(f"{_num((baselines or {}).get(rule)):>7}" for rule in RULE_NAMES)
            count_text = "" if count is None else str(count)
            lead = format_lead((baselines or {}).get("lead"))
            lines.append(
                f"    {label:{width}}  {count_text:>6}  {_num(score):>7}  {lead:<27}  " + (rules if baselines else "")
            )
    if "ensemble" in metrics:
        ensemble = metrics["ensemble"]
        lines.append(
            f"  ensemble std of the margin: right {_num(ensemble['ensemble_std_right'])}, "
            f"wrong {_num(ensemble['ensemble_std_wrong'])}, "
            f"wrong - right {_ci(ensemble['std_wrong_minus_right'])}, "
            f"AUROC {_num(ensemble['ensemble_std_auroc'], 3)} "
            f"(small |margin|: {_num(ensemble['margin_auroc'], 3)})"
        )
    return "\n".join(lines)


def _leaderboard_lines(board: Mapping[str, Any]) -> str:
    """Every model on every data set: the headline number, its lead over the best content-blind rule below it."""
    columns = [c["dataset"] for c in board["columns"]]
    width = max(len(model) for model in board["rows"])
    cell = max(12, *(len(c) for c in columns))
    lines = ["leaderboard (each data set's headline score; lead over the best content-blind rule in brackets):"]
    lines.append(f"  {'':{width}}  " + "  ".join(f"{c:>{cell}}" for c in columns))
    for model, sets in board["rows"].items():
        values = [f"{_num(sets[c]['value'])} ({format_lead({'value': sets[c]['lead']})})" for c in columns]
        lines.append(f"  {model:{width}}  " + "  ".join(f"{v:>{cell}}" for v in values))
    return "\n".join(lines)


def _model_name(source: str | list[str]) -> str:
    return source if isinstance(source, str) else f"ensemble of {len(source)}: {', '.join(source)}"


def _num(value: float | None, digits: int = 4) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"  # None: NaN in the report, e.g. no pair ranked wrong


def _ci(metric: Mapping[str, Any]) -> str:
    low, high = metric.get("ci95") or (None, None)
    if low is None or high is None:
        return _num(metric["value"])
    return f"{_num(metric['value'])} [95% CI {low:.4f}, {high:.4f}]"
