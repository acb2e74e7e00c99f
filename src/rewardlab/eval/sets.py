"""Evaluation sets: data (files, globs of files, hub ids) read and turned into what a benchmark scores.

Most sets become preference pairs through a label mapping (`rewardlab.data.mapping`). A benchmark named by its
mapping adds its own rule on top: `rewardbench` (sections), `rm-bench` (the style matrix), `judgebench` (one game, a
tie to B). RewardBench 2 (`rewardbench2`) is scored per prompt, every completion at once, and ranked rows (K
responses per prompt) are scored both as all their comparisons and per prompt (best-of-K). RewardBench 2 and
JudgeBench files are recognised by their columns without a mapping.
"""

from __future__ import annotations

import glob
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from rewardlab.data.apply_mapping import MappingStats, apply_mapping
from rewardlab.data.formats import detect_dataset_format, is_ranked_example, ranked_items
from rewardlab.data.loading import load_preference_data
from rewardlab.data.mapping import LabelMapping, parse_mapping
from rewardlab.data.validate import validate_row
from rewardlab.errors import InvalidRowError, RewardlabError
from rewardlab.eval import judgebench, rewardbench, rewardbench2, rm_bench
from rewardlab.eval.best_of_k import best_responses
from rewardlab.losses import ordered_pairs

logger = logging.getLogger(__name__)

BEST_OF_K = "best-of-k"
# The split each benchmark's hub dataset keeps its evaluation rows in (RM-Bench's only split is the default).
BENCHMARK_SPLITS = {
    rewardbench2.NAME: rewardbench2.SPLIT,
    rewardbench.NAME: rewardbench.SPLIT,
    judgebench.NAME: judgebench.SPLITS[0],
}
_REWARDBENCH2_NAMES = ("rewardbench2", "rewardbench-2", "reward-bench-2", "rb2")


@dataclass
class EvalSet:
    """What one data set gives to score, and where it came from.

    `rows` are preference pairs (`prompt?`, `chosen`, `rejected`, `margin?`, `category?`, ...), empty for
    RewardBench 2, whose `prompts` (with their subset and id) are scored per prompt, as are a ranked set's
    `rankings` (`best` holds each row's best responses): see `per_prompt_rows`.
    `benchmark` names the rule the set is scored by besides the pairwise metrics; `chat` renders string prompts
    and responses as a conversation for models with a chat template. `skipped_rows` holds every invalid row skipped
    (`skip_invalid_rows`), with its index, field, reason and content.
    """

    name: str
    source: str
    rows: list[dict[str, Any]]
    mapping: dict[str, Any]
    mapping_stats: dict[str, Any]
    skipped_rows: list[dict[str, Any]] = field(default_factory=list)
    benchmark: str | None = None
    chat: bool = False
    rankings: list[dict[str, Any]] = field(default_factory=list)
    best: list[list[int]] = field(default_factory=list)
    prompts: list[rewardbench2.Prompt] = field(default_factory=list)
    subsets_seen: list[str] = field(default_factory=list)

    def per_prompt_rows(self) -> list[dict[str, Any]]:
        """The ranked rows scored per prompt, each distinct response once: RewardBench 2's prompts, or the ranked
        set's rows; none for a set of pairs only."""
        return [p.ranked_row() for p in self.prompts] or self.rankings


def is_rewardbench2(mapping: Any) -> bool:
    return isinstance(mapping, str) and mapping.strip().lower().replace("_", "-") in _REWARDBENCH2_NAMES


def _benchmark_of(mapping: Any) -> str | None:
    """The benchmark a mapping (a name, or anything `parse_mapping` takes) stands for, if any."""
    if is_rewardbench2(mapping):
        return rewardbench2.NAME
    if mapping is None:
        return None
    name = parse_mapping(mapping).name
    return name if name in (rewardbench.NAME, rm_bench.NAME, judgebench.NAME) else None


def _read_rows(source: str, split: str | None, benchmark: str | None) -> list[dict[str, Any]]:
    """The rows of one split of `source`: the named split, else the benchmark's, else the only one, else 'test'."""
    data = load_preference_data(source)
    if split is None:
        preferred = BENCHMARK_SPLITS.get(benchmark or "")
        if preferred in data:
            split = preferred
        elif len(data) == 1:
            split = next(iter(data))
        elif "test" in data:
            split = "test"
        else:
            raise RewardlabError(f"{source} has the splits {', '.join(data)}: choose one with --split")
    elif split not in data:
        raise RewardlabError(f"no split {split!r} in {source}; the splits are: {', '.join(data)}")
    return data[split].to_list()


def _files(source: str) -> list[str] | None:
    """The files a glob pattern names (sorted), or None when `source` is not a pattern."""
    if not any(ch in source for ch in "*?["):
        return None
    files = sorted(glob.glob(source))
    if not files:
        raise RewardlabError(f"no file matches {source}; check the pattern")
    return files


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
    """Load a data set (a file, a glob of files read as one set, a directory or a hub id) and turn its rows into
    what its benchmark scores (see the module docstring).

    Without a mapping, RewardBench 2 and JudgeBench rows are recognised by their columns and other rows are read as
    the trainer reads them. Rows the mapping cannot use (ties, unrecognised labels, identical responses) are skipped
    and counted in `mapping_stats`, never dropped silently. An invalid row raises `InvalidRowError` naming the row
    and field, or with `skip_invalid_rows` is skipped and counted per reason. RM-Bench rows without a `domain` take
    their file's name (`chat_filtered.jsonl` is the chat domain).
    """
    benchmark = _benchmark_of(mapping)
    files = _files(str(source))
    rows = []
    for path in files or [source]:
        part = _read_rows(path, split, benchmark)
        if benchmark == rm_bench.NAME:
            stem = _default_name(str(path)).rpartition("/")[2]
            part = [row if row.get("domain") else {**row, "domain": stem} for row in part]
        rows += part
    return eval_set_from_rows(
        rows,
        name or _default_name(str(source)),
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
    on all their comparisons (one pair per ordered pair of responses with different scores) and on best-of-K.
    `max_pairs` keeps the first pairs (for RewardBench 2: the first prompts).
    """
    if mapping is None and rows and rewardbench2.looks_like_rewardbench2(rows[0]):
        mapping = rewardbench2.NAME
    elif mapping is None and rows and judgebench.looks_like_judgebench(rows[0]):
        mapping = judgebench.NAME
    if is_rewardbench2(mapping):
        return _rewardbench2_set(rows, name, source, max_pairs, skip_invalid_rows)
    if mapping is None and rows and is_ranked_example(rows[0]):
        return _ranked_set(rows, name, source, max_pairs, skip_invalid_rows)
    if mapping is None:
        columns = set(rows[0]) if rows else set()
        mapping = LabelMapping(
            layout="pairs",
            prompt="prompt" if "prompt" in columns else None,
            margin="margin" if "margin" in columns else None,
            # Pairs that name their objective are broken down by it (a multi-objective model reports each head).
            category=category_column or ("objective" if "objective" in columns else None),
        )
    else:
        mapping = parse_mapping(mapping)
        if category_column:
            mapping = LabelMapping.from_dict({**mapping.to_dict(), "category": category_column})
    pairs, stats = apply_mapping(rows, mapping, skip_invalid=skip_invalid_rows, dataset_name=name)
    if mapping.name == rm_bench.NAME:
        pairs = rm_bench.check_styles(rows, mapping, pairs, stats, skip_invalid_rows, name)
    if stats.rows_skipped:
        logger.warning("%s: %s", name, stats.summary())
    if max_pairs is not None:
        pairs = pairs[:max_pairs]
    if not pairs:
        raise RewardlabError(f"{source}: no usable pairs ({stats.summary()})")
    return EvalSet(
        name,
        source,
        pairs,
        mapping.to_dict(),
        stats.to_dict(),
        stats.skipped_rows,
        benchmark=_benchmark_of(mapping),
        chat=mapping.chat,
    )


def _rewardbench2_set(
    rows: list[dict[str, Any]], name: str, source: str, max_prompts: int | None, skip_invalid: bool
) -> EvalSet:
    prompts, stats, seen = rewardbench2.read_rows(rows, skip_invalid=skip_invalid, dataset_name=name)
    if stats.rows_skipped:
        logger.warning("%s: %s", name, stats.summary())
    if max_prompts is not None:
        prompts = rewardbench2.first_prompts(prompts, max_prompts)
    if not prompts:
        raise RewardlabError(f"{source}: no usable RewardBench 2 rows ({stats.summary()})")
    return EvalSet(
        name,
        source,
        [],
        {"layout": rewardbench2.NAME},
        stats.to_dict(),
        stats.skipped_rows,
        benchmark=rewardbench2.NAME,
        chat=True,
        prompts=prompts,
        subsets_seen=seen,
    )


def _ranked_set(
    rows: list[dict[str, Any]], name: str, source: str, max_pairs: int | None, skip_invalid: bool
) -> EvalSet:
    pairs, stats, groups = ranking_comparisons(rows, skip_invalid=skip_invalid, dataset_name=name)
    if max_pairs is not None:
        pairs = pairs[:max_pairs]
        used = {pair["row_index"] for pair in pairs}
        groups = [group for group in groups if group[0] in used]
    if not pairs:
        raise RewardlabError(f"{source}: no usable comparisons ({stats.invalid_skipped} invalid rankings)")
    return EvalSet(
        name,
        source,
        pairs,
        {"layout": "ranking"},
        stats.to_dict(),
        stats.skipped_rows,
        benchmark=BEST_OF_K,
        rankings=[row for _, row, _ in groups],
        best=[best for _, _, best in groups],
    )


def ranking_comparisons(
    rows: Sequence[Mapping[str, Any]], skip_invalid: bool = False, dataset_name: str | None = None
) -> tuple[list[dict[str, Any]], MappingStats, list[tuple[int, dict[str, Any], list[int]]]]:
    """Every comparison of ranked rows as a pair row (`prompt?`, `chosen`, `rejected`, `row_index`, `chosen_index`,
    `rejected_index`, plus `tools`/`chat_template_kwargs`), the counts, and each valid row as (its index, the row,
    its best responses) for best-of-K. An invalid row raises `InvalidRowError`, or with `skip_invalid` is skipped
    and counted."""
    fmt = detect_dataset_format(rows)
    pairs, stats, groups = [], MappingStats(), []
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
        groups.append((index, dict(row), best_responses(items.scores)))
    stats.pairs_out = len(pairs)
    return pairs, stats, groups


def _default_name(source: str) -> str:
    path = Path(source)
    stem = path.name
    for suffix in (".gz", ".jsonl", ".json", ".parquet", ".csv"):
        stem = stem.removesuffix(suffix)
    return f"{path.parent.name}/{stem}" if path.parent.name else stem
