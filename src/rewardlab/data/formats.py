"""Detect and validate the preference-data formats that TRL's `RewardTrainer` accepts.

Four text formats (standard or conversational, each with an implicit or explicit prompt) plus pre-tokenized pairs.
Validation runs before tokenization so that a bad row is reported with its index and field in words the user can
act on, instead of surfacing later as a `TypeError` from string concatenation, a jinja traceback or a silently useless
pair (chosen == rejected gives a constant loss of log 2 and no gradient).
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from numbers import Integral, Real
from typing import Any

from datasets import Dataset

from rewardlab.errors import InvalidRowError, RewardlabError

TEXT_FIELDS = ("prompt", "chosen", "rejected")
ID_FIELDS = ("chosen_ids", "rejected_ids")
# TRL's deprecated names for pre-tokenized columns; accepted and renamed to ID_FIELDS.
LEGACY_ID_FIELDS = {"chosen_input_ids": "chosen_ids", "rejected_input_ids": "rejected_ids"}
OPTIONAL_FIELDS = ("margin", "tools", "chat_template_kwargs")

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


@dataclass(frozen=True)
class PreferenceFormat:
    """Which of the preference formats a dataset uses.

    `tokenized` wins over the other two flags: a row with `chosen_ids`/`rejected_ids` is used as is, whatever text
    columns it also carries (as in TRL, so that preparing a prepared dataset again is a no-op).
    """

    conversational: bool
    explicit_prompt: bool
    tokenized: bool = False

    @property
    def name(self) -> str:
        if self.tokenized:
            return "pre-tokenized"
        kind = "conversational" if self.conversational else "standard"
        prompt = "explicit-prompt" if self.explicit_prompt else "implicit-prompt"
        return f"{kind} {prompt}"


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


def _is_decisive(example: Mapping[str, Any]) -> bool:
    """Whether `example` shows its format (some text field holds a string or a list), so it can stand for a dataset."""
    if _is_tokenized(example):
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
    if "chosen" not in example and "rejected" not in example:
        raise RewardlabError(
            f"no 'chosen' and 'rejected' columns (found: {', '.join(map(repr, example)) or 'none'}); a preference "
            "dataset needs 'chosen' and 'rejected' (text or message lists), optionally 'prompt', or pre-tokenized "
            "'chosen_ids' and 'rejected_ids'"
        )
    conversational = False
    for field in ("chosen", "rejected", "prompt"):
        value = example.get(field)
        if isinstance(value, (str, list)):
            conversational = isinstance(value, list)
            break
    return PreferenceFormat(conversational=conversational, explicit_prompt="prompt" in example)


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
    value = example[field]
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
    value = example[field]
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
    if "margin" in example:
        margin = example["margin"]
        if margin is None:
            raise invalid_row(index, "margin", "is None (null); every row needs a margin when the column exists", NULL)
        if isinstance(margin, bool) or not isinstance(margin, Real):
            raise invalid_row(index, "margin", f"is a {_type_name(margin)}, expected a number", BAD_MARGIN)
        if not math.isfinite(float(margin)):
            raise invalid_row(index, "margin", f"is {float(margin)}, expected a finite number", BAD_MARGIN)
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


def validate_example(example: Mapping[str, Any], index: int, fmt: PreferenceFormat) -> None:
    """Raise `InvalidRowError(index, field, reason)` if `example` cannot be used as a pair of dataset format `fmt`.

    Checks presence, type and non-emptiness of every field the format needs, the shape of each message, the optional
    columns (`margin`, `tools`, `chat_template_kwargs`), that the row has the dataset's format, and that chosen and
    rejected differ once the prompt is prepended. The error carries a reason `code` (see `reason_code`).
    """
    if not isinstance(example, Mapping):
        raise invalid_row(index, None, f"is a {_type_name(example)}, expected a dict", WRONG_TYPE)
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
        raise invalid_row(
            index,
            "chosen_ids",
            f"this row is pre-tokenized but the dataset is {fmt.name}; do not mix text and token-id rows",
            MISMATCH,
        )
    if fmt.explicit_prompt:
        _check_text_field(example, index, "prompt", fmt)
    elif example.get("prompt") is not None:
        raise invalid_row(
            index,
            "prompt",
            f"this row has a prompt but the dataset is {fmt.name}; give every row a prompt, or none",
            MISMATCH,
        )
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


def _validation_columns(column_names: list[str]) -> list[str]:
    wanted = set(TEXT_FIELDS) | set(ID_FIELDS) | set(LEGACY_ID_FIELDS) | set(OPTIONAL_FIELDS)
    return [c for c in column_names if c in wanted]


def validate_dataset(
    dataset: Dataset,
    *,
    skip_invalid: bool,
    dataset_name: str,
    batch_size: int = 1000,
    errors: list[InvalidRowError] | None = None,
) -> tuple[Dataset, dict[str, int]]:
    """Validate every row of a map-style dataset; drop the invalid ones or raise the first.

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
                validate_example(dict(zip(names, values, strict=True)), index, fmt)
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
