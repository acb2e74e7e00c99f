"""Validate preference rows (pairs or rankings) against their dataset's format, before tokenization.

Validation runs before tokenization so that a bad row is reported with its index and field in words the user can
act on, instead of surfacing later as a `TypeError` from string concatenation, a jinja traceback or a silently useless
pair (chosen == rejected gives a constant loss of log 2 and no gradient). Every error is an `InvalidRowError` with a
reason `code` (the constants below), the key under which skipped rows are counted with `skip_invalid_rows=True`.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Mapping
from numbers import Integral, Real
from typing import Any

from datasets import Dataset

from rewardlab.data.formats import (
    ID_FIELDS,
    LEGACY_ID_FIELDS,
    OPTIONAL_FIELDS,
    RANKED_FIELDS,
    TEXT_FIELDS,
    PreferenceFormat,
    RankedItems,
    best_first_scores,
    detect_dataset_format,
    detect_format,
    id_field,
    is_ranked_example,
    is_response_list,
    is_tokenized,
    ranked_items,
)
from rewardlab.errors import InvalidRowError, RewardlabError, RewardlabTypeError, type_name

# Reason codes: the keys of the per-reason counts of skipped rows (`skip_invalid_rows=True`).
MISSING = "missing field"
NULL = "null value"
WRONG_TYPE = "wrong type"
EMPTY = "empty value"
BAD_MESSAGE = "invalid message"
BAD_MARGIN = "invalid margin"
BAD_OBJECTIVE = "invalid objective"
BAD_TOOLS = "invalid tools"
BAD_KWARGS = "invalid chat_template_kwargs"
MISMATCH = "format mismatch"
IDENTICAL = "identical chosen and rejected"
TOO_FEW = "too few responses"
BAD_SCORES = "invalid scores"
NO_PREFERENCE = "no preference"


def _check_messages(value: list, index: int, field: str) -> None:
    if not value:
        raise InvalidRowError(index, field, "is an empty message list; give at least one message", EMPTY)
    for j, message in enumerate(value):
        if not isinstance(message, Mapping):
            raise InvalidRowError(
                index,
                field,
                f"message {j} is a {type_name(message)}, expected a dict with 'role' and 'content'",
                BAD_MESSAGE,
            )
        if message.get("role") is None:
            raise InvalidRowError(index, field, f"message {j} has no 'role' (e.g. 'user', 'assistant')", BAD_MESSAGE)
        role = message["role"]
        if not isinstance(role, str):
            raise InvalidRowError(
                index, field, f"message {j}: 'role' is a {type_name(role)}, expected a string", BAD_MESSAGE
            )
        tool_calls = message.get("tool_calls")
        if tool_calls is not None and not isinstance(tool_calls, list):
            raise InvalidRowError(
                index,
                field,
                f"message {j}: 'tool_calls' is a {type_name(tool_calls)}, expected a list of tool calls",
                BAD_MESSAGE,
            )
        content = message.get("content")
        if content is None:
            if not tool_calls:
                raise InvalidRowError(
                    index,
                    field,
                    f"message {j} ({role}) has no 'content'; only a message with 'tool_calls' may omit it",
                    BAD_MESSAGE,
                )
        elif not isinstance(content, (str, list)):
            raise InvalidRowError(
                index,
                field,
                f"message {j}: 'content' is a {type_name(content)}, expected a string",
                BAD_MESSAGE,
            )


def _check_text_field(example: Mapping[str, Any], index: int, field: str, fmt: PreferenceFormat) -> None:
    if field not in example:
        raise InvalidRowError(index, field, "is missing", MISSING)
    _check_text_value(example[field], index, field, fmt)


def _check_text_value(value: Any, index: int, field: str, fmt: PreferenceFormat) -> None:
    """A prompt or response: a non-empty string, or a well-formed message list, whichever the dataset's format is."""
    if value is None:
        raise InvalidRowError(index, field, "is None (null); give a value or drop the row", NULL)
    expected = "a list of messages" if fmt.conversational else "a string"
    if fmt.conversational and isinstance(value, str):
        raise InvalidRowError(
            index,
            field,
            f"is a string, but this dataset is conversational ({fmt.name}): expected {expected}",
            MISMATCH,
        )
    if not fmt.conversational and isinstance(value, list):
        raise InvalidRowError(
            index,
            field,
            f"is a list, but this dataset holds plain text ({fmt.name}): expected {expected}",
            MISMATCH,
        )
    if fmt.conversational and not isinstance(value, list):
        raise InvalidRowError(index, field, f"is a {type_name(value)}, expected {expected}", WRONG_TYPE)
    if not fmt.conversational and not isinstance(value, str):
        raise InvalidRowError(index, field, f"is a {type_name(value)}, expected {expected}", WRONG_TYPE)
    if fmt.conversational:
        _check_messages(value, index, field)
    elif not value.strip():
        what = "the prompt text, or drop the 'prompt' column" if field == "prompt" else "a non-empty response"
        raise InvalidRowError(index, field, f"is an empty string; give {what}", EMPTY)


def validate_scored_pair(row: Mapping[str, Any], index: int) -> None:
    """A pair as scoring takes it: `validate_example` in the row's own format, except that equal chosen and rejected
    texts are fine to score (P = 0.5); a row that is no pair at all is an `InvalidRowError` too."""
    try:
        validate_example(row, index, detect_format(row))
    except InvalidRowError as e:
        if e.code != IDENTICAL:
            raise
    except RewardlabError as e:
        raise InvalidRowError(index, None, str(e), WRONG_TYPE) from None


def validate_scored_ranking(row: Mapping[str, Any], index: int) -> None:
    """A ranked row as scoring takes it: `validate_ranked_example` in the row's own format, except that a row that
    states no preference (equal scores, identical responses) is fine to score."""
    try:
        validate_ranked_example(row, index, detect_format(row))
    except InvalidRowError as e:
        if e.code not in (IDENTICAL, NO_PREFERENCE):
            raise
    except RewardlabError as e:
        raise InvalidRowError(index, None, str(e), WRONG_TYPE) from None


def validate_text(value: Any, index: int, field: str, conversational: bool) -> None:
    """One prompt, response or text outside a preference row: a non-empty string or a well-formed message list."""
    _check_text_value(value, index, field, PreferenceFormat(conversational=conversational, explicit_prompt=True))


def _check_ids(example: Mapping[str, Any], index: int, name: str) -> list:
    field = id_field(example, name)
    if field not in example:
        raise InvalidRowError(index, name, "is missing", MISSING)
    return _check_id_value(example[field], index, field)


def _check_id_value(value: Any, index: int, field: str) -> list:
    if value is None:
        raise InvalidRowError(index, field, "is None (null); give a list of token ids", NULL)
    if not isinstance(value, (list, tuple)):
        raise InvalidRowError(index, field, f"is a {type_name(value)}, expected a list of token ids (ints)", WRONG_TYPE)
    if not value:
        raise InvalidRowError(index, field, "is an empty list of token ids", EMPTY)
    for j, token in enumerate(value):
        if isinstance(token, bool) or not isinstance(token, Integral) or token < 0:
            raise InvalidRowError(
                index,
                field,
                f"token {j} is {token!r} ({type_name(token)}), expected a non-negative int token id",
                WRONG_TYPE,
            )
    return list(value)


def _check_optional(example: Mapping[str, Any], index: int) -> None:
    _check_margin(example, index)
    _check_objective(example, index)
    _check_template_options(example, index)


def _check_objective(example: Mapping[str, Any], index: int) -> None:
    """The `objective` a row is trained for (a name such as 'helpful'): every row names one when the column exists."""
    if "objective" not in example:
        return
    objective = example["objective"]
    if objective is None:
        raise InvalidRowError(
            index,
            "objective",
            "is missing (null) while other rows name their objective: name one in every row, or drop the column",
            NULL,
        )
    if not isinstance(objective, str) or not objective.strip():
        raise InvalidRowError(
            index, "objective", f"is {objective!r}, expected an objective's name (e.g. 'helpful')", BAD_OBJECTIVE
        )


def _check_margin(example: Mapping[str, Any], index: int) -> None:
    if "margin" in example:
        margin = example["margin"]
        if margin is None:
            raise InvalidRowError(
                index, "margin", "is None (null); every row needs a margin when the column exists", NULL
            )
        if isinstance(margin, bool) or not isinstance(margin, Real):
            raise InvalidRowError(index, "margin", f"is a {type_name(margin)}, expected a number", BAD_MARGIN)
        if not math.isfinite(float(margin)):
            raise InvalidRowError(index, "margin", f"is {float(margin)}, expected a finite number", BAD_MARGIN)


def _check_template_options(example: Mapping[str, Any], index: int) -> None:
    tools = example.get("tools")
    if tools is not None:
        if isinstance(tools, str):
            try:
                tools = json.loads(tools)
            except json.JSONDecodeError as e:
                raise InvalidRowError(index, "tools", f"is a string but not valid JSON ({e.msg})", BAD_TOOLS) from None
        if not isinstance(tools, list):
            raise InvalidRowError(
                index,
                "tools",
                f"is a {type_name(tools)}, expected a list of JSON-schema dicts (or a JSON string of one)",
                BAD_TOOLS,
            )
        for j, tool in enumerate(tools):
            if not isinstance(tool, Mapping):
                raise InvalidRowError(
                    index, "tools", f"tool {j} is a {type_name(tool)}, expected a JSON-schema dict", BAD_TOOLS
                )
    kwargs = example.get("chat_template_kwargs")
    if kwargs is not None and not isinstance(kwargs, Mapping):
        raise InvalidRowError(
            index,
            "chat_template_kwargs",
            f"is a {type_name(kwargs)}, expected a dict of chat-template keyword arguments",
            BAD_KWARGS,
        )


def _check_prompt(example: Mapping[str, Any], index: int, fmt: PreferenceFormat) -> None:
    """An explicit-prompt dataset needs a valid prompt in every row; an implicit-prompt one, none."""
    if fmt.explicit_prompt:
        _check_text_field(example, index, "prompt", fmt)
    elif example.get("prompt") is not None:
        raise InvalidRowError(
            index,
            "prompt",
            f"this row has a prompt but the dataset is {fmt.name}; give every row a prompt, or none",
            MISMATCH,
        )


def _tokenized_in_text_dataset(index: int, field: str, fmt: PreferenceFormat) -> InvalidRowError:
    reason = f"this row is pre-tokenized but the dataset is {fmt.name}; do not mix text and token-id rows"
    return InvalidRowError(index, field, reason, MISMATCH)


def validate_example(example: Mapping[str, Any], index: int, fmt: PreferenceFormat) -> None:
    """Raise `InvalidRowError(index, field, reason)` if `example` cannot be used as a pair of dataset format `fmt`.

    A ranked row is a MISMATCH here: rankings are checked by `validate_ranked_example` (`validate_row` picks).

    Checks presence, type and non-emptiness of every field the format needs, the shape of each message, the optional
    columns (`margin`, `tools`, `chat_template_kwargs`), that the row has the dataset's format, and that chosen and
    rejected differ once the prompt is prepended. The error carries a reason `code`.
    """
    if not isinstance(example, Mapping):
        raise InvalidRowError(index, None, f"is a {type_name(example)}, expected a dict", WRONG_TYPE)
    if is_ranked_example(example):
        raise InvalidRowError(
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
            raise InvalidRowError(
                index, "rejected_ids", "identical to 'chosen_ids'; a pair needs two different sequences", IDENTICAL
            )
        return
    if is_tokenized(example):
        raise _tokenized_in_text_dataset(index, "chosen_ids", fmt)
    _check_prompt(example, index, fmt)
    _check_text_field(example, index, "chosen", fmt)
    _check_text_field(example, index, "rejected", fmt)
    _check_optional(example, index)
    # With the same prompt prepended to both, the pair is identical exactly when the responses are.
    if example["chosen"] == example["rejected"]:
        where = " (after the prompt is prepended)" if fmt.explicit_prompt else ""
        raise InvalidRowError(
            index,
            "rejected",
            f"identical to 'chosen'{where}; the pair carries no preference, fix or drop the row",
            IDENTICAL,
        )


def _ranking_field(example: Mapping[str, Any]) -> str:
    """The column that shows a row is a ranking, to name in a mismatch error."""
    for field in ("response_ids", "responses", "chosen", "rejected"):
        value = example.get(field)
        if value is not None and (field in ("response_ids", "responses") or is_response_list(value)):
            return field
    return "responses"


def _check_response_list(
    example: Mapping[str, Any], index: int, field: str, fmt: PreferenceFormat, minimum: int
) -> list:
    """A list of at least `minimum` responses in `field`: texts or message lists, or token-id lists when `fmt` is
    pre-tokenized; each item is checked as a pair's response (or ids) is, under its own name (`field[j]`)."""
    if field not in example:
        raise InvalidRowError(index, field, "is missing", MISSING)
    value = example[field]
    what = "token-id lists" if fmt.tokenized else "message lists" if fmt.conversational else "strings"
    if value is None:
        raise InvalidRowError(index, field, f"is None (null); give a list of {what} or drop the row", NULL)
    if not isinstance(value, (list, tuple)):
        raise InvalidRowError(
            index, field, f"is a {type_name(value)}, expected a list of responses ({what})", WRONG_TYPE
        )
    if len(value) < minimum:
        need = "a ranking needs at least 2" if minimum > 1 else "give at least one chosen and one rejected response"
        raise InvalidRowError(index, field, f"has {len(value)} response(s); {need}", TOO_FEW)
    for j, response in enumerate(value):
        if fmt.tokenized:
            _check_id_value(response, index, f"{field}[{j}]")
        else:
            _check_text_value(response, index, f"{field}[{j}]", fmt)
    return list(value)


def _check_scores(example: Mapping[str, Any], index: int, count: int) -> list[float]:
    """The scores of K responses: given (finite numbers, one each) or, without a `scores` column, best first."""
    if "scores" not in example:
        return best_first_scores(count)
    scores = example["scores"]
    if scores is None:
        raise InvalidRowError(index, "scores", "is None (null); every row needs scores when the column exists", NULL)
    if not isinstance(scores, (list, tuple)):
        raise InvalidRowError(index, "scores", f"is a {type_name(scores)}, expected a list of numbers", BAD_SCORES)
    if len(scores) != count:
        raise InvalidRowError(
            index, "scores", f"has {len(scores)} scores for {count} responses; give one per response", BAD_SCORES
        )
    for j, score in enumerate(scores):
        if isinstance(score, bool) or not isinstance(score, Real):
            raise InvalidRowError(
                index, "scores", f"scores[{j}] is {score!r} ({type_name(score)}), expected a number", BAD_SCORES
            )
        if not math.isfinite(float(score)):
            raise InvalidRowError(
                index, "scores", f"scores[{j}] is {float(score)}, expected a finite number", BAD_SCORES
            )
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
        raise InvalidRowError(
            index,
            "scores",
            f"every response has the same score ({scores[0]:g}); the row carries no preference, fix or drop it",
            NO_PREFERENCE,
        )
    clash = contradiction(responses, scores)
    if clash is not None:
        i, j = clash
        raise InvalidRowError(
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
            raise InvalidRowError(
                index,
                "responses",
                f"this row also has '{sides[0]}'; give either 'responses' or lists in 'chosen' and 'rejected'",
                MISMATCH,
            )
        responses = _check_response_list(example, index, "responses", fmt, minimum=2)
        _check_scores(example, index, len(responses))
        return ranked_items(example)
    if example.get("scores") is not None:
        raise InvalidRowError(
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
        raise InvalidRowError(index, None, f"is a {type_name(example)}, expected a dict", WRONG_TYPE)
    if not is_ranked_example(example) and (
        is_tokenized(example) or any(example.get(f) is not None for f in ("chosen", "rejected"))
    ):
        raise InvalidRowError(
            index,
            "chosen_ids" if is_tokenized(example) else "chosen",
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
        raise InvalidRowError(
            index, "margin", "a ranking takes no margin (its scores say how much better); drop the column", BAD_MARGIN
        )
    _check_objective(example, index)
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
        raise RewardlabTypeError(f"validate_dataset needs a datasets.Dataset, got {type(dataset).__name__}")
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
                    raise e.at(dataset=dataset_name) from None
                counts[e.code] += 1
                invalid.append(index)
                if errors is not None:
                    errors.append(e)
            index += 1
    if invalid:
        bad = set(invalid)
        dataset = dataset.select([i for i in range(len(dataset)) if i not in bad])
    return dataset, dict(counts)
