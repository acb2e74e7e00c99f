"""The headline of each result (the number its benchmark's leaderboard shows), the rows of its benchmark table (each
subset, section, domain or category against the content-blind rules), and the leaderboard of every model on every
data set. Shared by the printed summary and the HTML page."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

# (report key, value key, what the number is), by precedence: a benchmark's own score over plain pair accuracy.
BENCHMARK_SCORES = (
    ("rewardbench2", "score", "RewardBench 2 score"),
    ("rewardbench", "score", "RewardBench score"),
    ("rm_bench", "accuracy", "RM-Bench accuracy"),
    ("judgebench", "accuracy", "JudgeBench accuracy"),
)


def headline(result: Mapping[str, Any]) -> dict[str, Any]:
    """`{"metric", "value", "best_rule", "best_rule_value", "lead"}` of one model on one set: its benchmark's score
    (or the pair accuracy), the best content-blind rule and the lead over it (`{"value", "ci95"}`)."""
    found = [(key, value_key, metric) for key, value_key, metric in BENCHMARK_SCORES if key in result]
    if found:
        key, value_key, metric = found[0]
        value, baselines = result[key][value_key], result[key]["baselines"]
    else:
        metric, value, baselines = "accuracy", result["accuracy"]["value"], result["baselines"]
    best = baselines.get("best")
    return {
        "metric": metric,
        "value": value,
        "best_rule": best,
        "best_rule_value": baselines.get(best) if best else None,
        "lead": baselines["lead"],
    }


def leaderboard(results: Mapping[str, Mapping[str, Any]], set_names: Sequence[str]) -> dict[str, Any]:
    """Every model (rows) on every data set (columns): `{"columns": [{"dataset", "metric"}], "rows": {model:
    {dataset: {"value", "lead"}}}}`."""
    first = next(iter(results.values()))
    return {
        "columns": [{"dataset": name, "metric": first[name]["headline"]["metric"]} for name in set_names],
        "rows": {
            model: {
                name: {"value": sets[name]["headline"]["value"], "lead": sets[name]["headline"]["lead"]["value"]}
                for name in set_names
            }
            for model, sets in results.items()
        },
    }


RULE_NAMES = {"longer_wins": "longer wins", "shorter_wins": "shorter wins", "chance": "chance"}


def benchmark_rows(result: Mapping[str, Any]) -> tuple[str, list[tuple[str, Any, Any, Any]]] | None:
    """(title, rows) of one model's benchmark result, each row (label, score, baselines, count)."""
    if "rewardbench2" in result:
        r = result["rewardbench2"]
        rows = [("score (mean of subsets)", r["score"], r["baselines"], sum(r["prompts"].values()))]
        rows += [(s, r["subsets"][s], r["subset_baselines"].get(s), r["prompts"][s]) for s in r["subsets"]]
        return "RewardBench 2: best-of-N per prompt, Ties by its weighted formula", rows
    if "rewardbench" in result:
        r = result["rewardbench"]
        rows = [("score (mean of sections)", r["score"], r["baselines"], sum(r["pairs"].values()))]
        rows += [(f"section: {s}", v, r["section_baselines"].get(s), None) for s, v in r["sections"].items()]
        rows += [(f"subset: {s}", v, None, r["pairs"][s]) for s, v in r["subsets"].items()]
        return "RewardBench: sections weighted by its example counts", rows
    if "rm_bench" in result:
        r = result["rm_bench"]
        rows = [("accuracy (mean of domains)", r["accuracy"], r["baselines"], r["prompts"])]
        rows += [(d, r[d], r["difficulty_baselines"][d], None) for d in ("easy", "normal", "hard")]
        rows += [
            (f"domain: {d}", v["accuracy"], r["domain_baselines"][d], v["prompts"]) for d, v in r["domains"].items()
        ]
        return "RM-Bench: chosen style against rejected style, a tie counts wrong", rows
    if "judgebench" in result:
        r = result["judgebench"]
        rows = [("accuracy", r["accuracy"], r["baselines"], sum(r["pairs"].values()))]
        rows += [(c, v, r["category_baselines"][c], r["pairs"][c]) for c, v in r["categories"].items()]
        return "JudgeBench: one game per pair, a tie goes to B", rows
    if "best_of_k" in result:
        r = result["best_of_k"]
        return "Best-of-K: is the top-rewarded response a best one (ties share)", [
            ("best-of-K accuracy", r["accuracy"], r["baselines"], r["rows"])
        ]
    if result.get("categories"):
        rows = [("accuracy", result["accuracy"]["value"], result["baselines"], result["n_evaluated"])]
        rows += [(c, v["accuracy"], v.get("baselines"), v["count"]) for c, v in result["categories"].items()]
        return "Accuracy per category against content-blind rules", rows
    return None


def headline_of(report: dict[str, Any]) -> dict[str, Any]:
    """The headline (score, best content-blind rule, lead) of a report's one model on its one data set."""
    (sets,) = report["results"].values()
    (result,) = sets.values()
    return result["headline"]
