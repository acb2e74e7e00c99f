"""Prepare a preference dataset for the trainer: validate, tokenize, apply the over-length policy, count everything.

The output has the columns the collator reads: for pairs `chosen_ids` and `rejected_ids` (lists of ints), plus
`margin` (float) when the input has one; for rankings (K >= 2 responses per prompt, see `rewardlab.data.formats`)
`response_ids` (K lists of ints, prompt included in each) and `scores` (K floats, higher is better). Every other
column is removed. What happened to the rows (skipped as invalid, prompt truncated, response cut, dropped for length)
is returned as `PreparationStats`, so that no row is lost silently.
"""

from __future__ import annotations

import itertools
import warnings
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from datasets import Dataset, DatasetDict, Features, IterableDataset, IterableDatasetDict, List, Value

from rewardlab.data.formats import LEGACY_ID_FIELDS, PreferenceFormat, detect_dataset_format
from rewardlab.data.prepare_item import OVERLENGTH, ItemRules, prepare_pair, prepare_ranking
from rewardlab.data.tokenize import has_chat_template, no_chat_template_error, resolve_eos_token_id
from rewardlab.data.truncation import DROPPED, OK, PROMPT_TRUNCATED, RESPONSE_TRUNCATED
from rewardlab.data.validate import BAD_OBJECTIVE, validate_dataset, validate_row
from rewardlab.errors import InvalidRowError, RewardlabError, RewardlabTypeError

if TYPE_CHECKING:
    from rewardlab.config import RewardConfig

# Helper columns, removed before the dataset is returned.
_INDEX = "__rewardlab_row"
_STATUS = "__rewardlab_status"
_ERR_FIELD = "__rewardlab_error_field"
_ERR_REASON = "__rewardlab_error_reason"
_ERR_CODE = "__rewardlab_error_code"
_COMPARISONS = "__rewardlab_comparisons"
_INVALID = "invalid"
_KEPT = (OK, PROMPT_TRUNCATED, RESPONSE_TRUNCATED)
MARGIN = "margin"
OBJECTIVE_ID = "objective_id"  # the head of a row's objective, in a multi-objective run
_STREAM_COLUMNS = ("chosen_ids", "rejected_ids", MARGIN, OBJECTIVE_ID, "response_ids", "scores", _STATUS)
PAIRS = "pairs"
RANKINGS = "rankings"


def count_comparisons(scores: list[float]) -> int:
    """The pairs of responses with different scores in a ranking: what it teaches (tied responses compare nothing).

    At most K(K-1)/2; a pair counts 1; a tiered row of c chosen and r rejected responses counts c * r.
    """
    k = len(scores)
    return k * (k - 1) // 2 - sum(c * (c - 1) // 2 for c in Counter(scores).values())


@dataclass
class PreparationStats:
    """What preparation did to one dataset. Logged by the trainer and saved with the run.

    For a map-style `Dataset` the counts are exact when `prepare_preference_dataset` returns. For an
    `IterableDataset` rows are processed lazily, so the counts grow while the data is read and are reset each time
    the stream restarts at row 0 (a new epoch); they are exact after a full pass only with
    `dataloader_num_workers=0`, since worker processes update their own copies.

    `kind` is "pairs" or "rankings"; `pairs_out` counts the rows kept either way (pairs, or rankings) and
    `comparisons_out` the pairs of responses with different scores in them (one per pair). The truncation counts
    are of rows: a ranking whose responses were cut counts once in `response_truncated`.
    """

    dataset_name: str
    rows_in: int = 0
    pairs_out: int = 0
    kind: str = PAIRS
    comparisons_out: int = 0
    invalid_skipped: dict[str, int] = field(default_factory=dict)
    prompt_truncated: int = 0
    response_truncated: int = 0
    dropped_overlength: int = 0
    max_length: int | None = None
    policy: str = "truncate_prompt"
    streaming: bool = False
    # Every skipped row: {"row": index in the user's data, "field": ..., "reason": ..., "code": ...}.
    skipped_rows: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if k != "skipped_rows"}

    def record_skip(self, error: InvalidRowError) -> None:
        code = error.code
        self.invalid_skipped[code] = self.invalid_skipped.get(code, 0) + 1
        self.skipped_rows.append({"row": error.index, "field": error.field, "reason": error.reason, "code": code})

    def summary(self) -> str:
        """One line for the log, e.g. "train: 2312 rows → 2250 pairs; 40 prompts truncated from the left, ..." or
        "train: 798 rows → 798 rankings (7182 comparisons); ..."."""

        def n(count: int, one: str, many: str) -> str:
            return f"{count} {one if count == 1 else many}"

        if self.kind == RANKINGS:
            out = f"{n(self.pairs_out, 'ranking', 'rankings')} ({n(self.comparisons_out, 'comparison', 'comparisons')})"
            cut = f"{n(self.response_truncated, 'ranking', 'rankings')} with responses cut"
        else:
            out = n(self.pairs_out, "pair", "pairs")
            cut = f"{n(self.response_truncated, 'response', 'responses')} cut"
        line = (
            f"{self.dataset_name}: {n(self.rows_in, 'row', 'rows')} → {out}; "
            f"{n(self.prompt_truncated, 'prompt', 'prompts')} truncated from the left, "
            f"{cut}, {self.dropped_overlength} dropped "
            f"(max_length={self.max_length}, policy={self.policy})"
        )
        skipped = sum(self.invalid_skipped.values())
        if skipped:
            reasons = ", ".join(f"{k}: {v}" for k, v in sorted(self.invalid_skipped.items(), key=lambda kv: -kv[1]))
            line += f"; skipped {n(skipped, 'invalid row', 'invalid rows')} ({reasons})"
        if self.streaming:
            line += " [streaming: counted so far]"
        return line

    def _reset(self) -> None:
        self.rows_in = self.pairs_out = self.prompt_truncated = self.response_truncated = 0
        self.dropped_overlength = self.comparisons_out = 0
        self.invalid_skipped = {}
        self.skipped_rows = []


def _failure(field: str | None, reason: str, code: str, extras: Sequence[str], ranked: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {"response_ids": [], "scores": []} if ranked else {"chosen_ids": [], "rejected_ids": []}
    out.update({_STATUS: _INVALID, _ERR_FIELD: field or "", _ERR_REASON: reason, _ERR_CODE: code})
    if ranked:
        out[_COMPARISONS] = 0
    out.update(dict.fromkeys(extras, 0))  # placeholders: the row is removed
    return out


def _extra_values(example: Mapping[str, Any], extras: Sequence[str], objectives: Sequence[str] | None) -> dict:
    """The per-example columns a prepared row carries besides its ids: its `margin` and its objective's head."""
    out: dict[str, Any] = {}
    if MARGIN in extras:
        out[MARGIN] = float(example[MARGIN])
    if OBJECTIVE_ID in extras:
        name = example["objective"]
        if name not in objectives:
            raise InvalidRowError(
                None,
                "objective",
                f"is {name!r}, not one of the run's objectives ({', '.join(objectives)})",
                BAD_OBJECTIVE,
            )
        out[OBJECTIVE_ID] = list(objectives).index(name)
    return out


def _process_row(
    example: Mapping[str, Any], *, rules: ItemRules, extras: Sequence[str], objectives: Sequence[str] | None
) -> dict[str, Any]:
    """Tokenize and truncate one validated pair row (`prepare_pair`). Never raises for a row problem: it is returned
    in the helper columns, so that errors cross `num_proc` worker processes intact and are reported in row order."""
    try:
        values = _extra_values(example, extras, objectives)
        item = prepare_pair(example, rules, validated=True)
    except InvalidRowError as e:
        return _failure(e.field, e.reason, e.code, extras)
    chosen, rejected = item.sequences
    return {
        "chosen_ids": chosen,
        "rejected_ids": rejected,
        _STATUS: item.status,
        _ERR_FIELD: "",
        _ERR_REASON: "",
        _ERR_CODE: "",
        **values,
    }


def _process_ranking(
    example: Mapping[str, Any], *, rules: ItemRules, extras: Sequence[str], objectives: Sequence[str] | None
) -> dict[str, Any]:
    """`_process_row` for a validated ranked row (`prepare_ranking`)."""
    try:
        values = _extra_values(example, extras, objectives)
        item = prepare_ranking(example, rules, validated=True)
    except InvalidRowError as e:
        return _failure(e.field, e.reason, e.code, extras, ranked=True)
    return {
        "response_ids": item.sequences,
        "scores": item.scores,
        _STATUS: item.status,
        _ERR_FIELD: "",
        _ERR_REASON: "",
        _ERR_CODE: "",
        _COMPARISONS: count_comparisons(item.scores),
        **values,
    }


def _output_features(extras: Sequence[str], ranked: bool = False) -> Features:
    if ranked:
        features = {"response_ids": List(List(Value("int64"))), "scores": List(Value("float64"))}
    else:
        features = {"chosen_ids": List(Value("int64")), "rejected_ids": List(Value("int64"))}
    if MARGIN in extras:
        features[MARGIN] = Value("float64")
    if OBJECTIVE_ID in extras:
        features[OBJECTIVE_ID] = Value("int64")
    features[_STATUS] = Value("string")
    return Features(features)


def _extras(fmt: PreferenceFormat, columns: Sequence[str], args: Any, dataset_name: str) -> tuple[str, ...]:
    """The per-example columns the prepared dataset carries: `margin` (pairs that have one) and `objective_id` (the
    head of the row's `objective`, among `args.objectives`)."""
    extras = [MARGIN] if not fmt.ranked and MARGIN in columns else []
    objectives = getattr(args, "objectives", None)
    if "objective" in columns:
        if not objectives:
            raise RewardlabError(
                f"the {dataset_name} dataset names each row's objective (an `objective` column): set objectives "
                "(e.g. --objectives helpful,harmless) to train a head per objective, or drop the column"
            )
        extras.append(OBJECTIVE_ID)
    elif objectives:
        raise RewardlabError(
            f"objectives is set ({', '.join(objectives)}), but the {dataset_name} dataset has no `objective` column "
            "naming each row's objective"
        )
    return tuple(extras)


def _row_work(fmt: PreferenceFormat, extras: Sequence[str], tokenizer: Any, eos_token_id: int | None, args: Any):
    """The per-row function for the dataset's kind and its keyword arguments."""
    kwargs: dict[str, Any] = {
        "rules": ItemRules(tokenizer, eos_token_id, args.max_length, args.overlength_policy),
        "extras": extras,
        "objectives": getattr(args, "objectives", None),
    }
    return (_process_ranking if fmt.ranked else _process_row), kwargs


def _dataset_format(rows: Any, dataset_name: str) -> PreferenceFormat:
    try:
        return detect_dataset_format(rows)
    except RewardlabError as e:
        raise RewardlabError(f"{dataset_name} dataset: {e}") from None


# TRL reads its pre-1.0 column names with a FutureWarning; so does rewardlab, until its own 1.0.
LEGACY_COLUMNS_DROPPED_IN = "1.0.0"


def warn_legacy_columns(columns: list[str], dataset_name: str) -> None:
    """A FutureWarning, as TRL gives, for ids in TRL's legacy columns `chosen_input_ids`/`rejected_input_ids`."""
    legacy = [c for c, new in LEGACY_ID_FIELDS.items() if c in columns and new not in columns]
    if legacy:
        warnings.warn(
            f"the {dataset_name} dataset uses the legacy columns {'/'.join(f'`{c}`' for c in legacy)}; they are "
            f"deprecated and will not be supported in v1 (rewardlab {LEGACY_COLUMNS_DROPPED_IN}): rename them to "
            f"{'/'.join(f'`{LEGACY_ID_FIELDS[c]}`' for c in legacy)}",
            FutureWarning,
            stacklevel=2,
        )


def _check_tokenizer(fmt: PreferenceFormat, tokenizer: Any, dataset_name: str) -> None:
    if fmt.conversational and not fmt.tokenized and not has_chat_template(tokenizer):
        raise no_chat_template_error(dataset_name)


def _prepare_map_style(
    dataset: Dataset, tokenizer: Any, args: RewardConfig, dataset_name: str, eos_token_id: int | None
) -> tuple[Dataset, PreparationStats]:
    stats = PreparationStats(
        dataset_name, rows_in=len(dataset), max_length=args.max_length, policy=args.overlength_policy
    )
    if len(dataset) == 0:
        raise RewardlabError(f"the {dataset_name} dataset is empty: it has no preference pairs")
    fmt = _dataset_format(dataset.select(range(min(100, len(dataset)))), dataset_name)
    warn_legacy_columns(dataset.column_names, dataset_name)
    stats.kind = RANKINGS if fmt.ranked else PAIRS
    # The original row index travels with each row, so that errors after validation still name the user's row.
    dataset = dataset.add_column(_INDEX, list(range(len(dataset))))
    errors: list[InvalidRowError] = []
    dataset, _ = validate_dataset(
        dataset, skip_invalid=args.skip_invalid_rows, dataset_name=dataset_name, errors=errors
    )
    for error in errors:
        stats.record_skip(error)
    if len(dataset) == 0:
        raise RewardlabError(f"no usable {stats.kind} left: {stats.summary()}")
    _check_tokenizer(fmt, tokenizer, dataset_name)

    extras = _extras(fmt, dataset.column_names, args, dataset_name)
    features = _output_features(extras, fmt.ranked)
    for name in (_ERR_FIELD, _ERR_REASON, _ERR_CODE):
        features[name] = Value("string")
    features[_INDEX] = Value("int64")
    if fmt.ranked:
        features[_COMPARISONS] = Value("int64")
    process, fn_kwargs = _row_work(fmt, extras, tokenizer, eos_token_id, args)
    dataset = dataset.map(
        process,
        fn_kwargs=fn_kwargs,
        remove_columns=[c for c in dataset.column_names if c != _INDEX],
        features=features,
        num_proc=args.dataset_num_proc,
        desc=f"Tokenizing {dataset_name} dataset",
    )

    helper_columns = [_INDEX, _STATUS, _ERR_FIELD, _ERR_REASON, _ERR_CODE] + ([_COMPARISONS] if fmt.ranked else [])
    kept = _count_outcomes(dataset.select_columns(helper_columns).to_dict(), stats, args.skip_invalid_rows)
    if not kept:
        raise RewardlabError(f"no usable {stats.kind} left: {stats.summary()}")
    if len(kept) < len(dataset):
        dataset = dataset.select(kept)
    dataset = dataset.remove_columns(helper_columns)
    return dataset, stats


def _count_outcomes(rows: dict[str, list], stats: PreparationStats, skip_invalid: bool) -> list[int]:
    """Count what tokenizing and truncating did to each row (the helper columns `rows`) into `stats`; raise for a
    row that failed unless `skip_invalid` (an over-length row under policy "error" always raises). Returns the
    positions of the rows kept."""
    statuses = rows[_STATUS]
    for i in (i for i, s in enumerate(statuses) if s == _INVALID):
        code = rows[_ERR_CODE][i]
        error = InvalidRowError(rows[_INDEX][i], rows[_ERR_FIELD][i] or None, rows[_ERR_REASON][i], code)
        if code == OVERLENGTH or not skip_invalid:
            raise error.at(dataset=stats.dataset_name)
        stats.record_skip(error)
    status_counts = Counter(statuses)
    stats.prompt_truncated = status_counts[PROMPT_TRUNCATED]
    stats.response_truncated = status_counts[RESPONSE_TRUNCATED]
    stats.dropped_overlength = status_counts[DROPPED]
    kept = [i for i, s in enumerate(statuses) if s in _KEPT]
    stats.pairs_out = len(kept)
    stats.comparisons_out = sum(rows[_COMPARISONS][i] for i in kept) if _COMPARISONS in rows else len(kept)
    return kept


class _StreamingProcessor:
    """The per-row work of the streaming path, as a picklable object that updates `stats` as rows go by."""

    def __init__(
        self, fmt: PreferenceFormat, stats: PreparationStats, skip_invalid: bool, process: Any, **row_kwargs: Any
    ):
        self.fmt = fmt
        self.stats = stats
        self.skip_invalid = skip_invalid
        self.process = process
        self.row_kwargs = row_kwargs

    def _skip(self, index: int, error: InvalidRowError) -> dict[str, Any]:
        code = error.code
        if code == OVERLENGTH or not self.skip_invalid:
            raise error.at(dataset=self.stats.dataset_name)
        self.stats.record_skip(error)
        failure = _failure(None, "", code, self.row_kwargs["extras"], self.fmt.ranked)
        return {k: v for k, v in failure.items() if k in _STREAM_COLUMNS}

    def __call__(self, example: dict[str, Any], index: int) -> dict[str, Any]:
        stats = self.stats
        if index == 0:  # the stream (re)starts: a new pass
            stats._reset()
        stats.rows_in += 1
        try:
            validate_row(example, index, self.fmt)
        except InvalidRowError as e:
            return self._skip(index, e)
        out = self.process(example, **self.row_kwargs)
        if out[_STATUS] == _INVALID:
            error = InvalidRowError(index, out[_ERR_FIELD] or None, out[_ERR_REASON], out[_ERR_CODE])
            return self._skip(index, error)
        for name in (_ERR_FIELD, _ERR_REASON, _ERR_CODE):
            del out[name]
        comparisons = out.pop(_COMPARISONS, 1)
        status = out[_STATUS]
        if status == PROMPT_TRUNCATED:
            stats.prompt_truncated += 1
        elif status == RESPONSE_TRUNCATED:
            stats.response_truncated += 1
        elif status == DROPPED:
            stats.dropped_overlength += 1
        if status in _KEPT:
            stats.pairs_out += 1
            stats.comparisons_out += comparisons
        return out


def _is_kept(example: Mapping[str, Any]) -> bool:
    return example[_STATUS] in _KEPT


def _prepare_streaming(
    dataset: IterableDataset, tokenizer: Any, args: RewardConfig, dataset_name: str, eos_token_id: int | None
) -> tuple[IterableDataset, PreparationStats]:
    stats = PreparationStats(dataset_name, max_length=args.max_length, policy=args.overlength_policy, streaming=True)
    head = list(itertools.islice(iter(dataset), 100))
    if not head:
        raise RewardlabError(f"the {dataset_name} dataset is empty: it has no preference pairs")
    fmt = detect_dataset_format(head)
    stats.kind = RANKINGS if fmt.ranked else PAIRS
    _check_tokenizer(fmt, tokenizer, dataset_name)
    columns = list(dataset.column_names or [])
    for row in head:
        columns += [c for c in row if c not in columns]
    warn_legacy_columns(columns, dataset_name)
    extras = _extras(fmt, columns, args, dataset_name)
    process, row_kwargs = _row_work(fmt, extras, tokenizer, eos_token_id, args)
    processor = _StreamingProcessor(fmt, stats, args.skip_invalid_rows, process, **row_kwargs)
    features = _output_features(extras, fmt.ranked)
    dataset = dataset.map(processor, with_indices=True, remove_columns=columns, features=features)
    dataset = dataset.filter(_is_kept).remove_columns([_STATUS])
    return dataset, stats


def prepare_preference_dataset(
    dataset: Dataset | IterableDataset, tokenizer: Any, args: RewardConfig, dataset_name: str
) -> tuple[Dataset | IterableDataset, PreparationStats]:
    """Validate, tokenize and length-limit a preference dataset (any of TRL's formats, a ranking, or already tokenized).

    `args` is a `RewardConfig` (uses `max_length`, `overlength_policy`, `skip_invalid_rows`, `eos_token`,
    `dataset_num_proc`). Returns the dataset with columns `chosen_ids`, `rejected_ids` (and `margin` as float if
    the input has it) for pairs, or `response_ids` and `scores` for rankings (detected from the first rows, see
    `detect_dataset_format`), and its `PreparationStats`. A map-style dataset is processed now, with exact counts; an
    `IterableDataset` lazily, with counts accumulated as it is read (see `PreparationStats`). Invalid rows raise
    `InvalidRowError` naming the dataset, row and field, unless `skip_invalid_rows` (then they are counted);
    an over-length row under policy "error" always raises. Applying it again to its own output changes nothing.
    """
    if isinstance(dataset, (DatasetDict, IterableDatasetDict)):
        raise RewardlabTypeError(
            f"the {dataset_name} dataset is a dict of splits ({', '.join(dataset)}); pass one split, "
            "e.g. dataset['train']"
        )
    eos_token_id = resolve_eos_token_id(tokenizer, getattr(args, "eos_token", None))
    if isinstance(dataset, Dataset):
        return _prepare_map_style(dataset, tokenizer, args, dataset_name, eos_token_id)
    if isinstance(dataset, IterableDataset):
        return _prepare_streaming(dataset, tokenizer, args, dataset_name, eos_token_id)
    raise RewardlabTypeError(
        f"the {dataset_name} dataset is a {type(dataset).__name__}; pass a datasets.Dataset or IterableDataset "
        "(e.g. Dataset.from_list(rows))"
    )
