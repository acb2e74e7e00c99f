"""Detect and validate the preference-data formats: TRL's pairs, and rankings of K >= 2 responses per prompt.

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

Validation runs before tokenization so that a bad row is reported with its index and field in words the user can
act on, instead of surfacing later as a `TypeError` from string concatenation, a jinja traceback or a silently useless
pair (chosen == rejected gives a constant loss of log 2 and no gradient).
"""

from __future__ import annotations

import itertools
import json
import math
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from numbers import Integral, Real
from typing import Any, NamedTuple

from datasets import Dataset, IterableDataset

from rewardlab.errors import InvalidRowError, RewardlabError

TEXT_FIELDS = ("prompt", "chosen", "rejected")
ID_FIELDS = ("chosen_ids", "rejected_ids")
# TRL's deprecated names for pre-tokenized columns; accepted and renamed to ID_FIELDS.
LEGACY_ID_FIELDS = {"chosen_input_ids": "chosen_ids", "rejected_input_ids": "rejected_ids"}
OPTIONAL_FIELDS = ("margin", "tools", "chat_template_kwargs")
# Columns of ranked rows: text responses, their scores, pre-tokenized responses.
RANKED_FIELDS = ("responses", "scores", "response_ids")

# Reason codes: the keys of the per-reason counts of skipped rows (`skip_invalid_rows=True`).
MISSING = "missing field"
NULL = "null value"
WRONG_TYPE = "wrong type"
EMPTY = "empty value"
BAD_MESSAGE = "invalid message"
BAD_MARGIN = "invalid margin"
BAD_TOOLS = "invalid tools"
BAD_KWARGS = "invalid chat_template_kwargs"
MISMATCH = "format mismatch"
IDENTICAL = "identical chosen and rejected"
TOO_FEW = "too few responses"
BAD_SCORES = "invalid scores"
NO_PREFERENCE = "no preference"


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


def invalid_row(index: int | None, field: str | None, reason: str, code: str) -> InvalidRowError:
    """An `InvalidRowError` tagged with a short reason `code`, the key under which skipped rows are counted."""
    error = InvalidRowError(index, field, reason)
    error.code = code  # type: ignore[attr-defined]
    return error


def reason_code(error: InvalidRowError) -> str:
    """The short reason code of `error` (a generic one for errors not made by `invalid_row`)."""
    return getattr(error, "code", None) or "invalid row"


def with_dataset_name(error: InvalidRowError, dataset_name: str | None) -> InvalidRowError:
    """A copy of `error` whose message names the dataset (the message is built when the error is constructed)."""
    named = InvalidRowError(error.index, error.field, error.reason, dataset=dataset_name)
    named.code = reason_code(error)  # type: ignore[attr-defined]
    return named


def _id_field(example: Mapping[str, Any], name: str) -> str:
    """The column holding `name` ('chosen_ids'/'rejected_ids') in `example`, accepting TRL's legacy name."""
    if name in example:
        return name
    for legacy, new in LEGACY_ID_FIELDS.items():
        if new == name and legacy in example:
            return legacy
    return name


def _is_tokenized(keys: Iterable[str]) -> bool:
    keys = set(keys)
    return ("chosen_ids" in keys or "chosen_input_ids" in keys) and (
        "rejected_ids" in keys or "rejected_input_ids" in keys
    )


def _is_pair_shaped(value: Any) -> bool:
    """A pair's response: a string, or one message list (a list holding dicts)."""
    return isinstance(value, str) or (isinstance(value, list) and any(isinstance(v, Mapping) for v in value))


def _is_response_list(value: Any) -> bool:
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
    if not isinstance(example, Mapping) or _is_tokenized(example):
        return False
    sides = (example.get("chosen"), example.get("rejected"))
    if any(_is_pair_shaped(v) for v in sides):
        return False
    if any(_is_response_list(v) for v in sides):
        return True
    if any(v is not None for v in sides):  # e.g. an empty list or a number: a (broken) pair
        return False
    return example.get("responses") is not None or example.get("response_ids") is not None


def _is_decisive(example: Mapping[str, Any]) -> bool:
    """Whether `example` shows its format (some text field holds a string or a list), so it can stand for a dataset."""
    if _is_tokenized(example) or is_ranked_example(example):
        return True
    return any(isinstance(example.get(f), (str, list)) for f in ("chosen", "rejected", "prompt"))


def detect_format(example: Mapping[str, Any]) -> PreferenceFormat:
    """The format of one example.

    Conversational when `chosen` (else `rejected`, else `prompt`) is a list: TRL looks for a dict with a 'role' in
    the first element, but an empty or malformed list is still meant as messages, and validation then says what is
    wrong with it rather than calling it a format mismatch.
    """
    if not isinstance(example, Mapping):
        raise RewardlabError(f"a preference example must be a dict, got {type(example).__name__}")
    if _is_tokenized(example):
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


def _type_name(value: Any) -> str:
    return "None" if value is None else type(value).__name__


def _check_messages(value: list, index: int, field: str) -> None:
    if not value:
        raise invalid_row(index, field, "is an empty message list; give at least one message", EMPTY)
    for j, message in enumerate(value):
        if not isinstance(message, Mapping):
            raise invalid_row(
                index,
                field,
                f"message {j} is a {_type_name(message)}, expected a dict with 'role' and 'content'",
                BAD_MESSAGE,
            )
        if message.get("role") is None:
            raise invalid_row(index, field, f"message {j} has no 'role' (e.g. 'user', 'assistant')", BAD_MESSAGE)
        role = message["role"]
        if not isinstance(role, str):
            raise invalid_row(
                index, field, f"message {j}: 'role' is a {_type_name(role)}, expected a string", BAD_MESSAGE
            )
        tool_calls = message.get("tool_calls")
        if tool_calls is not None and not isinstance(tool_calls, list):
            raise invalid_row(
                index,
                field,
                f"message {j}: 'tool_calls' is a {_type_name(tool_calls)}, expected a list of tool calls",
                BAD_MESSAGE,
            )
        content = message.get("content")
        if content is None:
            if not tool_calls:
                raise invalid_row(
                    index,
                    field,
                    f"message {j} ({role}) has no 'content'; only a message with 'tool_calls' may omit it",
                    BAD_MESSAGE,
                )
        elif not isinstance(content, (str, list)):
            raise invalid_row(
                index,
                field,
                f"message {j}: 'content' is a {_type_name(content)}, expected a string",
                BAD_MESSAGE,
            )


def _check_text_field(example: Mapping[str, Any], index: int, field: str, fmt: PreferenceFormat) -> None:
    if field not in example:
        raise invalid_row(index, field, "is missing", MISSING)
    _check_text_value(example[field], index, field, fmt)


def _check_text_value(value: Any, index: int, field: str, fmt: PreferenceFormat) -> None:
    """A prompt or response: a non-empty string, or a well-formed message list, whichever the dataset's format is."""
    if value is None:
        raise invalid_row(index, field, "is None (null); give a value or drop the row", NULL)
    expected = "a list of messages" if fmt.conversational else "a string"
    if fmt.conversational and isinstance(value, str):
        raise invalid_row(
            index,
            field,
            f"is a string, but this dataset is conversational ({fmt.name}): expected {expected}",
            MISMATCH,
        )
    if not fmt.conversational and isinstance(value, list):
        raise invalid_row(
            index,
            field,
            f"is a list, but this dataset holds plain text ({fmt.name}): expected {expected}",
            MISMATCH,
        )
    if fmt.conversational and not isinstance(value, list):
        raise invalid_row(index, field, f"is a {_type_name(value)}, expected {expected}", WRONG_TYPE)
    if not fmt.conversational and not isinstance(value, str):
        raise invalid_row(index, field, f"is a {_type_name(value)}, expected {expected}", WRONG_TYPE)
    if fmt.conversational:
        _check_messages(value, index, field)
    elif not value.strip():
        what = "the prompt text, or drop the 'prompt' column" if field == "prompt" else "a non-empty response"
        raise invalid_row(index, field, f"is an empty string; give {what}", EMPTY)


def _check_ids(example: Mapping[str, Any], index: int, name: str) -> list:
    field = _id_field(example, name)
    if field not in example:
        raise invalid_row(index, name, "is missing", MISSING)
    return _check_id_value(example[field], index, field)


def _check_id_value(value: Any, index: int, field: str) -> list:
    if value is None:
        raise invalid_row(index, field, "is None (null); give a list of token ids", NULL)
    if not isinstance(value, (list, tuple)):
        raise invalid_row(index, field, f"is a {_type_name(value)}, expected a list of token ids (ints)", WRONG_TYPE)
    if not value:
        raise invalid_row(index, field, "is an empty list of token ids", EMPTY)
    for j, token in enumerate(value):
        if isinstance(token, bool) or not isinstance(token, Integral) or token < 0:
            raise invalid_row(
                index,
                field,
                f"token {j} is {token!r} ({_type_name(token)}), expected a non-negative int token id",
                WRONG_TYPE,
            )
    return list(value)


def _check_optional(example: Mapping[str, Any], index: int) -> None:
    _check_margin(example, index)
    _check_template_options(example, index)


def _check_margin(example: Mapping[str, Any], index: int) -> None:
    if "margin" in example:
        margin = example["margin"]
        if margin is None:
            raise invalid_row(index, "margin", "is None (null); every row needs a margin when the column exists", NULL)
        if isinstance(margin, bool) or not isinstance(margin, Real):
            raise invalid_row(index, "margin", f"is a {_type_name(margin)}, expected a number", BAD_MARGIN)
        if not math.isfinite(float(margin)):
            raise invalid_row(index, "margin", f"is {float(margin)}, expected a finite number", BAD_MARGIN)


def _check_template_options(example: Mapping[str, Any], index: int) -> None:
    tools = example.get("tools")
    if tools is not None:
        if isinstance(tools, str):
            try:
                tools = json.loads(tools)
            except json.JSONDecodeError as e:
                raise invalid_row(index, "tools", f"is a string but not valid JSON ({e.msg})", BAD_TOOLS) from None
        if not isinstance(tools, list):
            raise invalid_row(
                index,
                "tools",
                f"is a {_type_name(tools)}, expected a list of JSON-schema dicts (or a JSON string of one)",
                BAD_TOOLS,
            )
        for j, tool in enumerate(tools):
            if not isinstance(tool, Mapping):
                raise invalid_row(
                    index, "tools", f"tool {j} is a {_type_name(tool)}, expected a JSON-schema dict", BAD_TOOLS
                )
    kwargs = example.get("chat_template_kwargs")
    if kwargs is not None and not isinstance(kwargs, Mapping):
        raise invalid_row(
            index,
            "chat_template_kwargs",
            f"is a {_type_name(kwargs)}, expected a dict of chat-template keyword arguments",
            BAD_KWARGS,
        )


def _check_prompt(example: Mapping[str, Any], index: int, fmt: PreferenceFormat) -> None:
    """An explicit-prompt dataset needs a valid prompt in every row; an implicit-prompt one, none."""
    if fmt.explicit_prompt:
        _check_text_field(example, index, "prompt", fmt)
    elif example.get("prompt") is not None:
        raise invalid_row(
            index,
            "prompt",
            f"this row has a prompt but the dataset is {fmt.name}; give every row a prompt, or none",
            MISMATCH,
        )


def _tokenized_in_text_dataset(index: int, field: str, fmt: PreferenceFormat) -> InvalidRowError:
    return invalid_row(
        index, field, f"this row is pre-tokenized but the dataset is {fmt.name}; do not mix text and token-id rows",
        MISMATCH,
    )  # fmt: skip


def validate_example(example: Mapping[str, Any], index: int, fmt: PreferenceFormat) -> None:
    """Raise `InvalidRowError(index, field, reason)` if `example` cannot be used as a pair of dataset format `fmt`.

    A ranked row is a MISMATCH here: rankings are checked by `validate_ranked_example` (`validate_row` picks).

    Checks presence, type and non-emptiness of every field the format needs, the shape of each message, the optional
    columns (`margin`, `tools`, `chat_template_kwargs`), that the row has the dataset's format, and that chosen and
    rejected differ once the prompt is prepended. The error carries a reason `code` (see `reason_code`).
    """
    if not isinstance(example, Mapping):
        raise invalid_row(index, None, f"is a {_type_name(example)}, expected a dict", WRONG_TYPE)
    if is_ranked_example(example):
        raise invalid_row(
            index,
            _ranking_field(example),
            "this row is a ranking (several responses to one prompt) but a preference pair is expected here; "
            "do not mix pair and ranked rows",
            MISMATCH,
        )
    if fmt.tokenized:
        chosen = _check_ids(example, index, "chosen_ids")
        rejected = _check_ids(example, index, "rejected_ids")
        _check_optional(example, index)
        if chosen == rejected:
            raise invalid_row(
                index, "rejected_ids", "identical to 'chosen_ids'; a pair needs two different sequences", IDENTICAL
            )
        return
    if _is_tokenized(example):
        raise _tokenized_in_text_dataset(index, "chosen_ids", fmt)
    _check_prompt(example, index, fmt)
    _check_text_field(example, index, "chosen", fmt)
    _check_text_field(example, index, "rejected", fmt)
    _check_optional(example, index)
    # With the same prompt prepended to both, the pair is identical exactly when the responses are.
    if example["chosen"] == example["rejected"]:
        where = " (after the prompt is prepended)" if fmt.explicit_prompt else ""
        raise invalid_row(
            index,
            "rejected",
            f"identical to 'chosen'{where}; the pair carries no preference, fix or drop the row",
            IDENTICAL,
        )


class RankedItems(NamedTuple):
    """The responses of a ranked row in one list, whatever its spelling, with their field names and scores."""

    fields: list[str]
    responses: list[Any]
    scores: list[float]


def _best_first(count: int) -> list[float]:
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
    scores = _best_first(len(responses)) if scores is None else [float(s) for s in scores]
    return RankedItems([f"{name}[{j}]" for j in range(len(responses))], responses, scores)


def _ranking_field(example: Mapping[str, Any]) -> str:
    """The column that shows a row is a ranking, to name in a mismatch error."""
    for field in ("response_ids", "responses", "chosen", "rejected"):
        value = example.get(field)
        if value is not None and (field in ("response_ids", "responses") or _is_response_list(value)):
            return field
    return "responses"


def _check_response_list(
    example: Mapping[str, Any], index: int, field: str, fmt: PreferenceFormat, minimum: int
) -> list:
    """A list of at least `minimum` responses in `field`: texts or message lists, or token-id lists when `fmt` is
    pre-tokenized; each item is checked as a pair's response (or ids) is, under its own name (`field[j]`)."""
    if field not in example:
        raise invalid_row(index, field, "is missing", MISSING)
    value = example[field]
    what = "token-id lists" if fmt.tokenized else "message lists" if fmt.conversational else "strings"
    if value is None:
        raise invalid_row(index, field, f"is None (null); give a list of {what} or drop the row", NULL)
    if not isinstance(value, (list, tuple)):
        raise invalid_row(index, field, f"is a {_type_name(value)}, expected a list of responses ({what})", WRONG_TYPE)
    if len(value) < minimum:
        need = "a ranking needs at least 2" if minimum > 1 else "give at least one chosen and one rejected response"
        raise invalid_row(index, field, f"has {len(value)} response(s); {need}", TOO_FEW)
    for j, response in enumerate(value):
        if fmt.tokenized:
            _check_id_value(response, index, f"{field}[{j}]")
        else:
            _check_text_value(response, index, f"{field}[{j}]", fmt)
    return list(value)


def _check_scores(example: Mapping[str, Any], index: int, count: int) -> list[float]:
    """The scores of K responses: given (finite numbers, one each) or, without a `scores` column, best first."""
    if "scores" not in example:
        return _best_first(count)
    scores = example["scores"]
    if scores is None:
        raise invalid_row(index, "scores", "is None (null); every row needs scores when the column exists", NULL)
    if not isinstance(scores, (list, tuple)):
        raise invalid_row(index, "scores", f"is a {_type_name(scores)}, expected a list of numbers", BAD_SCORES)
    if len(scores) != count:
        raise invalid_row(
            index, "scores", f"has {len(scores)} scores for {count} responses; give one per response", BAD_SCORES
        )
    for j, score in enumerate(scores):
        if isinstance(score, bool) or not isinstance(score, Real):
            raise invalid_row(
                index, "scores", f"scores[{j}] is {score!r} ({_type_name(score)}), expected a number", BAD_SCORES
            )
        if not math.isfinite(float(score)):
            raise invalid_row(index, "scores", f"scores[{j}] is {float(score)}, expected a finite number", BAD_SCORES)
    return [float(s) for s in scores]


def contradiction(responses: list, scores: list[float]) -> tuple[int, int] | None:
    """The first (i, j), i < j, of two equal responses with different scores, or None.

    Equal responses with equal scores are harmless (they compare to nothing); with different scores the row asks the
    model to rank a response above itself.
    """
    for j in range(1, len(responses)):
        for i in range(j):
            if scores[i] != scores[j] and responses[i] == responses[j]:
                return i, j
    return None


def _check_preference(index: int, items: RankedItems) -> None:
    fields, responses, scores = items
    if len(set(scores)) == 1:
        raise invalid_row(
            index,
            "scores",
            f"every response has the same score ({scores[0]:g}); the row carries no preference, fix or drop it",
            NO_PREFERENCE,
        )
    clash = contradiction(responses, scores)
    if clash is not None:
        i, j = clash
        raise invalid_row(
            index,
            fields[j],
            f"identical to '{fields[i]}' but scored differently ({scores[i]:g} vs {scores[j]:g}); "
            "contradictory, fix or drop the row",
            IDENTICAL,
        )


def _check_ranked_text(example: Mapping[str, Any], index: int, fmt: PreferenceFormat) -> RankedItems:
    sides = [f for f in ("chosen", "rejected") if example.get(f) is not None]
    if example.get("responses") is not None or not sides:
        if sides:
            raise invalid_row(
                index,
                "responses",
                f"this row also has '{sides[0]}'; give either 'responses' or lists in 'chosen' and 'rejected'",
                MISMATCH,
            )
        responses = _check_response_list(example, index, "responses", fmt, minimum=2)
        _check_scores(example, index, len(responses))
        return ranked_items(example)
    if example.get("scores") is not None:
        raise invalid_row(
            index,
            "scores",
            "a tiered row (lists in 'chosen' and 'rejected') is scored by them, chosen 1 and rejected 0; drop "
            "'scores', or give 'responses' with 'scores'",
            MISMATCH,
        )
    _check_response_list(example, index, "chosen", fmt, minimum=1)
    _check_response_list(example, index, "rejected", fmt, minimum=1)
    return ranked_items(example)


def validate_ranked_example(example: Mapping[str, Any], index: int, fmt: PreferenceFormat) -> None:
    """Raise `InvalidRowError(index, field, reason)` if `example` cannot be used as a ranking of dataset format `fmt`.

    Checks each response (field `responses[j]`, `chosen[j]`, ...) as a pair's response is checked, the scores (one
    finite number per response), that the row carries a preference (not every score equal), that no two identical
    responses are scored differently (code IDENTICAL), the optional columns, and that the row has the dataset's
    format. A pair row in a ranked dataset is a MISMATCH.
    """
    if not isinstance(example, Mapping):
        raise invalid_row(index, None, f"is a {_type_name(example)}, expected a dict", WRONG_TYPE)
    if not is_ranked_example(example) and (
        _is_tokenized(example) or any(example.get(f) is not None for f in ("chosen", "rejected"))
    ):
        raise invalid_row(
            index,
            "chosen_ids" if _is_tokenized(example) else "chosen",
            f"this row is a preference pair but the dataset holds rankings ({fmt.name}); do not mix pair and "
            "ranked rows",
            MISMATCH,
        )
    if fmt.tokenized:
        responses = _check_response_list(example, index, "response_ids", fmt, minimum=2)
        _check_scores(example, index, len(responses))
        items = ranked_items(example)
    else:
        if example.get("response_ids") is not None:
            raise _tokenized_in_text_dataset(index, "response_ids", fmt)
        _check_prompt(example, index, fmt)
        items = _check_ranked_text(example, index, fmt)
    if example.get("margin") is not None:
        raise invalid_row(
            index, "margin", "a ranking takes no margin (its scores say how much better); drop the column", BAD_MARGIN
        )
    _check_template_options(example, index)
    _check_preference(index, items)


def validate_row(example: Mapping[str, Any], index: int, fmt: PreferenceFormat) -> None:
    """Validate `example` as a ranking or as a pair, whichever the dataset's format `fmt` says."""
    if fmt.ranked:
        validate_ranked_example(example, index, fmt)
    else:
        validate_example(example, index, fmt)


def _validation_columns(column_names: list[str]) -> list[str]:
    wanted = set(TEXT_FIELDS) | set(ID_FIELDS) | set(LEGACY_ID_FIELDS) | set(OPTIONAL_FIELDS) | set(RANKED_FIELDS)
    return [c for c in column_names if c in wanted]


def validate_dataset(
    dataset: Dataset,
    *,
    skip_invalid: bool,
    dataset_name: str,
    batch_size: int = 1000,
    errors: list[InvalidRowError] | None = None,
) -> tuple[Dataset, dict[str, int]]:
    """Validate every row of a map-style dataset (pairs or rankings); drop the invalid ones or raise the first.

    Returns the dataset (the same object when every row is valid; otherwise a `select` of the valid rows, so the
    row order is kept) and the number of skipped rows per reason code, e.g. `{"identical chosen and rejected": 2}`.
    With `skip_invalid=False` the first invalid row raises `InvalidRowError` naming the dataset, row and field;
    with `skip_invalid=True` each skipped row's error is appended to `errors` when given.
    Rows are read a batch of columns at a time: indexing `dataset[i]` per row is about 100x slower.
    """
    if not isinstance(dataset, Dataset):
        raise RewardlabError(f"validate_dataset needs a datasets.Dataset, got {type(dataset).__name__}")
    if len(dataset) == 0:
        raise RewardlabError(f"the {dataset_name} dataset is empty: it has no preference pairs")
    columns = _validation_columns(dataset.column_names)
    view = dataset.select_columns(columns) if columns else dataset
    try:
        fmt = detect_dataset_format(view.select(range(min(100, len(view)))))
    except RewardlabError as e:
        raise RewardlabError(f"{dataset_name} dataset: {e}") from None
    counts: Counter[str] = Counter()
    invalid: list[int] = []
    index = 0
    for batch in view.iter(batch_size=batch_size):
        names = list(batch)
        for values in zip(*(batch[n] for n in names), strict=True):
            try:
                validate_row(dict(zip(names, values, strict=True)), index, fmt)
            except InvalidRowError as e:
                if not skip_invalid:
                    raise with_dataset_name(e, dataset_name) from None
                counts[reason_code(e)] += 1
                invalid.append(index)
                if errors is not None:
                    errors.append(e)
            index += 1
    if invalid:
        bad = set(invalid)
        dataset = dataset.select([i for i in range(len(dataset)) if i not in bad])
    return dataset, dict(counts)
