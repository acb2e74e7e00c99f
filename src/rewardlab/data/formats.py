"""Detect the preference-data formats: TRL's pairs, and rankings of K >= 2 responses per prompt.

Pairs: four text formats (standard or conversational, each with an implicit or explicit prompt) plus pre-tokenized
pairs, as TRL's `RewardTrainer` accepts them.

Rankings (K >= 2 responses to one prompt), in three spellings:

1. `responses`: a list of K responses, best first (a strict ranking); their scores are K-1, K-2, ..., 0.
2. `responses` + `scores`: one finite number per response (int or float, not bool), higher is better, ties allowed.
3. tiered: `chosen` and `rejected` each a *list* of responses (at least one each), e.g. RM-Bench's
   `{"prompt": str, "chosen": [3 strings], "rejected": [3 strings]}`; every chosen response scores 1, every rejected 0.
   A row is tiered when `chosen` (or `rejected`) is a list of strings or of message lists; a pair's `chosen` is a
   string or one message list (a list of dicts), so a pair is never read as tiered.

Each spelling is standard (responses are strings, an optional `prompt` string is prepended to each) or conversational
(responses are message lists, an optional `prompt` message list is joined before each, rendered with the chat
template). Without `prompt` each response is a whole sequence and the shared prompt is found at token level.
`tools` and `chat_template_kwargs` work as for pairs; `margin` is for pairs only. A pre-tokenized ranking has
`response_ids` (K lists of non-negative ints) and optionally `scores` (default best first): what preparation outputs,
so preparing a prepared dataset again is a no-op. Pair and ranked rows cannot be mixed in one dataset.

Validation of each row against its dataset's format is `rewardlab.data.validate`.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

from datasets import Dataset, IterableDataset

from rewardlab.errors import RewardlabError, RewardlabTypeError

TEXT_FIELDS = ("prompt", "chosen", "rejected")
ID_FIELDS = ("chosen_ids", "rejected_ids")
# TRL's deprecated names for pre-tokenized columns; accepted and renamed to ID_FIELDS.
LEGACY_ID_FIELDS = {"chosen_input_ids": "chosen_ids", "rejected_input_ids": "rejected_ids"}
OPTIONAL_FIELDS = ("margin", "objective", "tools", "chat_template_kwargs")
# Columns of ranked rows: text responses, their scores, pre-tokenized responses.
RANKED_FIELDS = ("responses", "scores", "response_ids")


@dataclass(frozen=True)
class PreferenceFormat:
    """Which of the preference formats a dataset uses.

    `tokenized` wins over the other two flags: a row with `chosen_ids`/`rejected_ids` (`response_ids` for a ranking)
    is used as is, whatever text columns it also carries (as in TRL, so that preparing a prepared dataset again is a
    no-op). `ranked`: K >= 2 responses per prompt with scores, instead of pairs.
    """

    conversational: bool
    explicit_prompt: bool
    tokenized: bool = False
    ranked: bool = False

    @property
    def name(self) -> str:
        kind = "ranked " if self.ranked else ""
        if self.tokenized:
            return f"{kind}pre-tokenized"
        text = "conversational" if self.conversational else "standard"
        prompt = "explicit-prompt" if self.explicit_prompt else "implicit-prompt"
        return f"{kind}{text} {prompt}"


def id_field(example: Mapping[str, Any], name: str) -> str:
    """The column holding `name` ('chosen_ids'/'rejected_ids') in `example`, accepting TRL's legacy name."""
    if name in example:
        return name
    for legacy, new in LEGACY_ID_FIELDS.items():
        if new == name and legacy in example:
            return legacy
    return name


def is_tokenized(keys: Iterable[str]) -> bool:
    keys = set(keys)
    return ("chosen_ids" in keys or "chosen_input_ids" in keys) and (
        "rejected_ids" in keys or "rejected_input_ids" in keys
    )


def _is_pair_shaped(value: Any) -> bool:
    """A pair's response: a string, or one message list (a list holding dicts)."""
    return isinstance(value, str) or (isinstance(value, list) and any(isinstance(v, Mapping) for v in value))


def is_response_list(value: Any) -> bool:
    """A tiered row's `chosen`/`rejected`: a list of responses (strings or message lists), and no message dict."""
    return (
        isinstance(value, list)
        and any(isinstance(v, (str, list)) for v in value)
        and not any(isinstance(v, Mapping) for v in value)
    )


def is_ranked_example(example: Mapping[str, Any]) -> bool:
    """Whether `example` is a ranking (K responses to one prompt) rather than a preference pair.

    Pair-shaped `chosen`/`rejected` (a string or one message list) or pair token ids always mean a pair, so that no
    pair dataset, even one with an extra `responses` or `scores` column, is ever read as a ranking. Otherwise a list
    of responses in `chosen`/`rejected` (tiered), or a `responses`/`response_ids` value, means a ranking.
    """
    if not isinstance(example, Mapping) or is_tokenized(example):
        return False
    sides = (example.get("chosen"), example.get("rejected"))
    if any(_is_pair_shaped(v) for v in sides):
        return False
    if any(is_response_list(v) for v in sides):
        return True
    if any(v is not None for v in sides):  # e.g. an empty list or a number: a (broken) pair
        return False
    return example.get("responses") is not None or example.get("response_ids") is not None


def _is_decisive(example: Mapping[str, Any]) -> bool:
    """Whether `example` shows its format (some text field holds a string or a list), so it can stand for a dataset."""
    if is_tokenized(example) or is_ranked_example(example):
        return True
    return any(isinstance(example.get(f), (str, list)) for f in ("chosen", "rejected", "prompt"))


def detect_format(example: Mapping[str, Any]) -> PreferenceFormat:
    """The format of one example.

    Conversational when `chosen` (else `rejected`, else `prompt`) is a list: TRL looks for a dict with a 'role' in
    the first element, but an empty or malformed list is still meant as messages, and validation then says what is
    wrong with it rather than calling it a format mismatch.
    """
    if not isinstance(example, Mapping):
        raise RewardlabTypeError(f"a preference example must be a dict, got {type(example).__name__}")
    if is_tokenized(example):
        return PreferenceFormat(conversational=False, explicit_prompt=False, tokenized=True)
    if is_ranked_example(example):
        return _ranked_format(example)
    if "chosen" not in example and "rejected" not in example:
        raise RewardlabError(
            f"no 'chosen' and 'rejected' columns (found: {', '.join(map(repr, example)) or 'none'}); a preference "
            "dataset needs 'chosen' and 'rejected' (text or message lists), optionally 'prompt', or pre-tokenized "
            "'chosen_ids' and 'rejected_ids'; a ranked one needs 'responses' (optionally 'scores')"
        )
    conversational = False
    for field in ("chosen", "rejected", "prompt"):
        value = example.get(field)
        if isinstance(value, (str, list)):
            conversational = isinstance(value, list)
            break
    return PreferenceFormat(conversational=conversational, explicit_prompt="prompt" in example)


def _ranked_format(example: Mapping[str, Any]) -> PreferenceFormat:
    """The format of a ranked row: conversational when its first response (else its prompt) is a list."""
    if "response_ids" in example:
        return PreferenceFormat(conversational=False, explicit_prompt=False, tokenized=True, ranked=True)
    conversational = isinstance(example.get("prompt"), list)
    for field in ("responses", "chosen", "rejected"):
        value = example.get(field)
        first = next((v for v in value if isinstance(v, (str, list))), None) if isinstance(value, list) else None
        if first is not None:
            conversational = isinstance(first, list)
            break
    return PreferenceFormat(conversational=conversational, explicit_prompt="prompt" in example, ranked=True)


def detect_dataset_format(rows: Iterable[Mapping[str, Any]], scan: int = 100) -> PreferenceFormat:
    """The format of a dataset: that of its first row which shows it (among the first `scan`), else its first row's.

    Raises `RewardlabError` on an empty dataset.
    """
    first = None
    for i, row in enumerate(rows):
        if first is None:
            first = row
        if _is_decisive(row):
            return detect_format(row)
        if i + 1 >= scan:
            break
    if first is None:
        raise RewardlabError("the dataset is empty: it has no preference pairs")
    return detect_format(first)


def is_ranked_dataset(dataset: Dataset | IterableDataset | Iterable[Mapping[str, Any]], scan: int = 100) -> bool:
    """Whether a dataset (raw or prepared) holds rankings, judged like `detect_dataset_format` on its first rows.

    False when the format cannot be told (an empty dataset, no preference columns): preparation then says why.
    """
    if isinstance(dataset, Dataset):
        rows: Iterable[Mapping[str, Any]] = dataset.select(range(min(scan, len(dataset))))
    elif isinstance(dataset, IterableDataset):
        rows = itertools.islice(iter(dataset), scan)
    else:
        rows = dataset
    try:
        return detect_dataset_format(rows, scan).ranked
    except RewardlabError:
        return False


class RankedItems(NamedTuple):
    """The responses of a ranked row in one list, whatever its spelling, with their field names and scores."""

    fields: list[str]
    responses: list[Any]
    scores: list[float]


def best_first_scores(count: int) -> list[float]:
    return [float(count - 1 - j) for j in range(count)]


def ranked_items(example: Mapping[str, Any]) -> RankedItems:
    """The responses (token-id lists for a pre-tokenized row) and scores of a validated ranked row.

    Tiered rows score 1 for chosen and 0 for rejected; `responses` without `scores` score K-1, ..., 0 (best first).
    Field names such as `responses[2]` or `rejected[0]` let later errors point at the user's own column.
    """
    if example.get("response_ids") is not None:
        responses = [list(r) for r in example["response_ids"]]
        name = "response_ids"
    elif example.get("responses") is not None:
        responses, name = list(example["responses"]), "responses"
    else:
        chosen, rejected = list(example["chosen"]), list(example["rejected"])
        fields = [f"chosen[{j}]" for j in range(len(chosen))] + [f"rejected[{j}]" for j in range(len(rejected))]
        return RankedItems(fields, chosen + rejected, [1.0] * len(chosen) + [0.0] * len(rejected))
    scores = example.get("scores")
    scores = best_first_scores(len(responses)) if scores is None else [float(s) for s in scores]
    return RankedItems([f"{name}[{j}]" for j in range(len(responses))], responses, scores)
