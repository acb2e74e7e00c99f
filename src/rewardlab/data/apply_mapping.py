"""Apply a `LabelMapping` (`rewardlab.data.mapping`) to rows: preference pairs out, and every row it does not use
counted by reason in `MappingStats`, never dropped silently."""

from __future__ import annotations

import math
import os
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from numbers import Real
from typing import Any

from rewardlab.data.mapping import HH_ASSISTANT, LabelMapping, is_int, label_key, parse_mapping
from rewardlab.data.validate import BAD_MESSAGE, EMPTY, MISSING, NULL, WRONG_TYPE, validate_scored_pair
from rewardlab.errors import InvalidRowError, RewardlabError, type_name

# At most this many distinct unrecognised labels are listed in the stats (all are counted).
_MAX_LISTED_LABELS = 20


@dataclass
class MappingStats:
    """What `apply_mapping` did with every row: `rows_in == rows_used + rows_skipped`, always.

    A row is skipped for exactly one reason, checked in this order: invalid (a needed field missing, null, empty or
    of the wrong type; only with `skip_invalid=True`), a tie, an unrecognised label, or every pair it gives having
    identical chosen and rejected responses.
    """

    rows_in: int = 0
    """Rows read."""
    rows_used: int = 0
    """Rows that gave at least one pair."""
    pairs_out: int = 0
    """Pairs written (a variants row gives several)."""
    groups_out: int = 0
    """Prompts written with all their completions, for a benchmark scored per prompt (RewardBench 2)."""
    ties_skipped: int = 0
    """Rows whose label (or equal scores) says neither response is better."""
    unrecognised_skipped: int = 0
    """Rows whose label is none of the known spellings (see `unrecognised_labels`)."""
    invalid_skipped: int = 0
    """Rows with a missing or unusable field, skipped because `skip_invalid=True` (see `invalid_by_field`)."""
    identical_skipped: int = 0
    """Pairs not written because chosen == rejected (they carry no preference)."""
    identical_rows: int = 0
    """Rows skipped because all their pairs were identical (one pair per row outside the variants layout)."""
    invalid_by_field: dict[str, int] = field(default_factory=dict)
    """Skipped invalid rows per field path at fault."""
    invalid_by_reason: dict[str, int] = field(default_factory=dict)
    """Skipped invalid rows per reason (the codes of `rewardlab.data.validate`, e.g. "empty value")."""
    unrecognised_labels: dict[str, int] = field(default_factory=dict)
    """Counts per unrecognised label value (as `repr`), for the first few distinct values."""
    first_invalid: str | None = None
    """The message of the first skipped invalid row, to show the user what was wrong."""
    skipped_rows: list[dict[str, Any]] = field(default_factory=list)
    """Every skipped invalid row: its index, field, reason, code and content (not part of `to_dict`)."""

    @property
    def rows_skipped(self) -> int:
        return self.ties_skipped + self.unrecognised_skipped + self.invalid_skipped + self.identical_rows

    def to_dict(self) -> dict[str, Any]:
        """The counts as a JSON-serialisable dict (with `rows_skipped`)."""
        return {k: v for k, v in asdict(self).items() if k != "skipped_rows"} | {"rows_skipped": self.rows_skipped}

    def record_invalid(self, error: InvalidRowError, row: Any) -> None:
        """Count a skipped invalid row by field and reason, and keep it for the skipped-rows file."""
        self.invalid_skipped += 1
        key = error.field or "(row)"
        self.invalid_by_field[key] = self.invalid_by_field.get(key, 0) + 1
        self.invalid_by_reason[error.code] = self.invalid_by_reason.get(error.code, 0) + 1
        if self.first_invalid is None:
            self.first_invalid = str(error)
        self.skipped_rows.append(
            {"row": error.index, "field": error.field, "reason": error.reason, "code": error.code, "content": row}
        )

    def summary(self) -> str:
        """One line for logs, e.g. "805 rows -> 804 pairs (skipped: 1 tie)"."""
        skipped = describe_skips(self.to_dict())
        out = f"{self.groups_out} prompts" if self.groups_out else f"{self.pairs_out} pairs"
        return f"{self.rows_in} rows -> {out}" + (f" (skipped: {skipped})" if skipped else "")


def describe_skips(stats: Mapping[str, Any]) -> str:
    """What was not used, from `MappingStats.to_dict()`, e.g. "1 tie, 2 invalid rows (empty value: 2)"; "" if
    nothing was."""

    def n(count: int, what: str) -> str:
        return f"{count} {what}{'' if count == 1 else 's'}"

    reasons = sorted((stats.get("invalid_by_reason") or {}).items(), key=lambda kv: -kv[1])
    why = f" ({', '.join(f'{k}: {v}' for k, v in reasons)})" if reasons else ""
    parts = [
        n(count, what) + detail
        for count, what, detail in (
            (stats.get("ties_skipped", 0), "tie", ""),
            (stats.get("unrecognised_skipped", 0), "unrecognised label", ""),
            (stats.get("invalid_skipped", 0), "invalid row", why),
            (stats.get("identical_skipped", 0), "identical pair", ""),
        )
        if count
    ]
    return ", ".join(parts)


class _Missing(Exception):
    """A path that does not lead to a value; the message says where it stops."""


def get_path(row: Any, path: str) -> Any:
    """The value at dotted `path` in `row`: `a.b` is `row["a"]["b"]`, a numeric part indexes a list.

    A key containing dots is found as is when the row has it. Raises `KeyError` with a readable message when the
    path leads nowhere (the value may still be None: that is for the caller to judge).
    """
    try:
        return _get_path(row, path)
    except _Missing as e:
        raise KeyError(str(e)) from None


def _get_path(row: Any, path: str) -> Any:
    if isinstance(row, Mapping) and path in row:
        return row[path]
    current, walked = row, []
    for part in path.split("."):
        where = f"'{'.'.join(walked)}'" if walked else "the row"
        if isinstance(current, Mapping):
            if part not in current:
                raise _Missing(f"is missing (no key '{part}' in {where})")
            current = current[part]
        elif isinstance(current, list) and is_int(part):
            index = int(part)
            if not -len(current) <= index < len(current):
                raise _Missing(f"is missing ({where} has {len(current)} items, no item {index})")
            current = current[index]
        elif current is None:
            raise _Missing(f"is missing ({where} is null)")
        else:
            raise _Missing(f"is missing ({where} is a {type(current).__name__}, not a dict)")
        walked.append(part)
    return current


def split_hh_dialogue(text: str) -> tuple[str, str]:
    """Split an HH-RLHF dialogue at its last `"\\n\\nAssistant:"`: (prompt ending with that marker, final reply).

    `prompt + reply == text`, so the reply keeps its leading space. Useful for response lengths of implicit-prompt
    data. Raises `RewardlabError` when the text has no assistant turn.
    """
    if not isinstance(text, str):
        raise RewardlabError(f"an HH-RLHF dialogue must be a string, got {type(text).__name__}")
    at = text.rfind(HH_ASSISTANT)
    if at < 0:
        raise RewardlabError(f"no {HH_ASSISTANT!r} turn in the dialogue {text[:60]!r}...")
    cut = at + len(HH_ASSISTANT)
    return text[:cut], text[cut:]


def split_hh_pair(chosen: str, rejected: str) -> tuple[str, str, str]:
    """(shared prompt, chosen reply, rejected reply) of an HH-RLHF pair.

    The prompt is the longest common prefix of both dialogues that ends with `"\\n\\nAssistant:"`. This is the last
    assistant marker of each dialogue for almost every pair, but in a few pairs a reply itself holds another
    "\\n\\nAssistant:" (e.g. "Umm. Just a second...\\n\\nAssistant: A solar panel ..."), and splitting each dialogue
    at its own last marker would then give the two replies different prompts. Identical dialogues split like
    `split_hh_dialogue`. Raises `RewardlabError` when the dialogues share no assistant turn.
    """
    if not isinstance(chosen, str) or not isinstance(rejected, str):
        raise RewardlabError("an HH-RLHF pair must be two strings")
    common = len(os.path.commonprefix([chosen, rejected]))
    at = chosen.rfind(HH_ASSISTANT, 0, common)
    if at < 0:
        raise RewardlabError(f"the two dialogues share no {HH_ASSISTANT!r} turn: {chosen[:60]!r}...")
    cut = at + len(HH_ASSISTANT)
    return chosen[:cut], chosen[cut:], rejected[cut:]


def rm_bench_difficulty(chosen_index: int, rejected_index: int) -> str:
    """RM-Bench's difficulty of comparing chosen variant i with rejected variant j (0 concise, 1 detailed,
    2 detailed with markdown): "hard" when i < j (the chosen is plainer than the rejected, so style favours the
    wrong answer), "normal" when i == j, "easy" when i > j. RM-Bench's hard/normal/easy accuracies are the
    accuracies over these groups (upper triangle, diagonal, lower triangle of its 3×3 matrix)."""
    if chosen_index < rejected_index:
        return "hard"
    return "normal" if chosen_index == rejected_index else "easy"


def _text(row: Mapping, index: int, path: str, what: str) -> Any:
    """A prompt or response: a non-empty string or a non-empty list (of messages)."""
    value = _required(row, index, path)
    if isinstance(value, str):
        if not value.strip():
            raise InvalidRowError(index, path, f"is an empty string; expected {what}", EMPTY)
        return value
    if isinstance(value, list):
        if not value:
            raise InvalidRowError(index, path, f"is an empty list; expected {what}", EMPTY)
        if not all(isinstance(m, Mapping) for m in value):
            raise InvalidRowError(
                index, path, "is a list but not of messages (dicts with 'role' and 'content')", BAD_MESSAGE
            )
        return value
    raise InvalidRowError(
        index, path, f"is a {type_name(value)}; expected {what} (a string or a message list)", WRONG_TYPE
    )


def _required(row: Mapping, index: int, path: str) -> Any:
    try:
        value = _get_path(row, path)
    except _Missing as e:
        raise InvalidRowError(index, path, str(e), MISSING) from None
    if value is None:
        raise InvalidRowError(index, path, "is null", NULL)
    return value


def _number(row: Mapping, index: int, path: str) -> float:
    value = _required(row, index, path)
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            raise InvalidRowError(index, path, f"is {value!r}, expected a number", WRONG_TYPE) from None
    if isinstance(value, bool) or not isinstance(value, Real):
        raise InvalidRowError(index, path, f"is a {type_name(value)}, expected a number", WRONG_TYPE)
    if not math.isfinite(float(value)):
        raise InvalidRowError(index, path, f"is {float(value)}, expected a finite number", WRONG_TYPE)
    return float(value)


class _Skip(Exception):
    """A row that gives no pair for a counted reason ("tie" or "unrecognised")."""

    def __init__(self, reason: str, label: Any = None):
        super().__init__(reason)
        self.reason = reason
        self.label = label


def _winner(row: Mapping, index: int, mapping: LabelMapping) -> str:
    """ "a" or "b" for an ab row, or raise `_Skip` for a tie or an unrecognised label."""
    if mapping.label is None:
        score_a, score_b = _number(row, index, mapping.score_a), _number(row, index, mapping.score_b)
        if score_a == score_b:
            raise _Skip("tie")
        return "a" if score_a > score_b else "b"
    label = _required(row, index, mapping.label)
    number = None
    if mapping.threshold is not None and not isinstance(label, bool):
        if isinstance(label, Real):
            number = float(label)
        elif isinstance(label, str):
            try:
                number = float(label)
            except ValueError:
                number = None
    if number is not None and math.isfinite(number):
        if abs(number - mapping.threshold) <= mapping.tie_band:
            raise _Skip("tie")
        above = mapping.above_threshold
        return above if number > mapping.threshold else ("a" if above == "b" else "b")
    key = label_key(label)
    if key in mapping.tie_values:
        raise _Skip("tie")
    if key in mapping.a_values:
        return "a"
    if key in mapping.b_values:
        return "b"
    raise _Skip("unrecognised", label)


def _matched(prompt: Any, response: Any, mapping: LabelMapping) -> Any:
    if mapping.match_formats and isinstance(prompt, list) and isinstance(response, str):
        return [{"role": "assistant", "content": response}]
    return response


def _matched_prompt(prompt: Any, responses: list[Any], mapping: LabelMapping) -> Any:
    if mapping.match_formats and isinstance(prompt, str) and all(isinstance(r, list) for r in responses):
        return [{"role": "user", "content": prompt}]
    return prompt


def _margin(row: Mapping, index: int, mapping: LabelMapping, winner: str | None = None) -> float | None:
    if mapping.margin is not None:
        return _number(row, index, mapping.margin)
    if mapping.score_chosen is not None:
        return _number(row, index, mapping.score_chosen) - _number(row, index, mapping.score_rejected)
    if mapping.score_a is not None:
        score_a, score_b = _number(row, index, mapping.score_a), _number(row, index, mapping.score_b)
        return score_a - score_b if winner == "a" else score_b - score_a
    return None


def _row_pairs(row: Any, index: int, mapping: LabelMapping) -> list[dict[str, Any]]:
    """The pairs of one row, before the identical-pair check; raises InvalidRowError or _Skip."""
    if not isinstance(row, Mapping):
        raise InvalidRowError(index, None, f"is a {type_name(row)}, expected a dict", WRONG_TYPE)
    prompt = None if mapping.prompt is None else _text(row, index, mapping.prompt, "the prompt")
    extra: dict[str, Any] = {}
    if mapping.category is not None:
        extra["category"] = str(_required(row, index, mapping.category))
    for path in mapping.keep:
        try:
            extra[path] = _get_path(row, path)
        except _Missing:
            extra[path] = None

    if mapping.layout == "pairs":
        chosen = _text(row, index, mapping.chosen, "the chosen response")
        rejected = _text(row, index, mapping.rejected, "the rejected response")
        pairs = [({"chosen": chosen, "rejected": rejected}, _margin(row, index, mapping))]
    elif mapping.layout == "ab":
        response_a = _text(row, index, mapping.response_a, "response A")
        response_b = _text(row, index, mapping.response_b, "response B")
        winner = _winner(row, index, mapping)
        chosen, rejected = (response_a, response_b) if winner == "a" else (response_b, response_a)
        pairs = [
            ({"chosen": chosen, "rejected": rejected, "chosen_side": winner}, _margin(row, index, mapping, winner))
        ]
    else:
        chosen_list = _variants(row, index, mapping.chosen, "chosen")
        rejected_list = _variants(row, index, mapping.rejected, "rejected")
        if mapping.pairing == "aligned":
            if len(chosen_list) != len(rejected_list):
                raise InvalidRowError(
                    index,
                    mapping.rejected,
                    f"has {len(rejected_list)} responses but '{mapping.chosen}' has {len(chosen_list)}; "
                    "pairing=aligned needs as many of each",
                )
            combos = [(i, i) for i in range(len(chosen_list))]
        else:
            combos = [(i, j) for i in range(len(chosen_list)) for j in range(len(rejected_list))]
        margin = _margin(row, index, mapping)
        pairs = [
            (
                {"chosen": chosen_list[i], "rejected": rejected_list[j], "chosen_index": i, "rejected_index": j},
                margin,
            )
            for i, j in combos
        ]

    out = []
    for pair, margin in pairs:
        row_out: dict[str, Any] = {}
        if prompt is not None:
            row_out["prompt"] = _matched_prompt(prompt, [pair["chosen"], pair["rejected"]], mapping)
            pair["chosen"] = _matched(prompt, pair["chosen"], mapping)
            pair["rejected"] = _matched(prompt, pair["rejected"], mapping)
        row_out |= pair
        if margin is not None:
            row_out["margin"] = margin
        out.append(row_out | extra | {"row_index": index})
    return out


def _variants(row: Mapping, index: int, path: str, what: str) -> list[Any]:
    value = _required(row, index, path)
    if not isinstance(value, list) or not value:
        raise InvalidRowError(
            index,
            path,
            f"is a {type_name(value)}; layout=variants expects a non-empty list of {what} responses",
            WRONG_TYPE,
        )
    for k, item in enumerate(value):
        if isinstance(item, str) and item.strip():
            continue
        if isinstance(item, list) and item and all(isinstance(m, Mapping) for m in item):
            continue
        raise InvalidRowError(
            index,
            path,
            f"item {k} is {'an empty string' if item == '' else 'a ' + type_name(item)}; expected text",
            EMPTY if item == "" else WRONG_TYPE,
        )
    return value


def _check_scoreable(pair: Mapping[str, Any], index: int, mapping: LabelMapping) -> None:
    """Raise `InvalidRowError` when the pair would fail in scoring (training's validation: e.g. a message whose
    'content' is not a string), naming the field as the row spells it."""
    try:
        validate_scored_pair({k: pair[k] for k in ("prompt", "chosen", "rejected") if k in pair}, index)
    except InvalidRowError as e:
        raise InvalidRowError(index, _source_field(e.field, pair, mapping), e.reason, e.code) from None


def _source_field(name: str | None, pair: Mapping[str, Any], mapping: LabelMapping) -> str | None:
    """The row's own path of the pair's field `name` ("prompt", "chosen" or "rejected")."""
    if name == "prompt":
        return mapping.prompt
    if name not in ("chosen", "rejected"):
        return name
    if mapping.layout == "ab":
        side = pair["chosen_side"] if name == "chosen" else ("b" if pair["chosen_side"] == "a" else "a")
        return mapping.response_a if side == "a" else mapping.response_b
    path = mapping.chosen if name == "chosen" else mapping.rejected
    if mapping.layout == "variants":
        return f"{path}[{pair[f'{name}_index']}]"
    return path


def apply_mapping(
    rows: Iterable[Mapping[str, Any]],
    mapping: LabelMapping | str | Mapping[str, Any],
    *,
    skip_invalid: bool = False,
    dataset_name: str | None = None,
) -> tuple[list[dict[str, Any]], MappingStats]:
    """Preference rows from `rows` laid out as `mapping` says, and the counts of what happened to each row.

    Each output row has `chosen` and `rejected`, `prompt` when the mapping has one, `margin` when it has a margin
    or scores, `category` when it has a category, `chosen_side` ("a"/"b", layout ab), `chosen_index` and
    `rejected_index` (layout variants), every `keep` path, and `row_index` (the input row it came from).

    No row is dropped silently: a row with a missing, null, empty or wrongly typed field, or whose pair training's
    validation refuses (e.g. a message whose 'content' is not a string), raises `InvalidRowError` naming the row
    index and the field path, or, with `skip_invalid=True`, is skipped and counted by field and reason; ties,
    unrecognised labels and identical chosen/rejected pairs are skipped and counted (see `MappingStats`).
    `mapping` may also be anything `parse_mapping` accepts.
    """
    mapping = parse_mapping(mapping)
    stats = MappingStats()
    out: list[dict[str, Any]] = []
    labels: Counter[str] = Counter()
    for index, row in enumerate(rows):
        stats.rows_in += 1
        try:
            pairs = _row_pairs(row, index, mapping)
            for pair in pairs:
                _check_scoreable(pair, index, mapping)
        except InvalidRowError as e:
            if not skip_invalid:
                raise e.at(dataset=dataset_name) from None
            stats.record_invalid(e, row)
            continue
        except _Skip as skip:
            if skip.reason == "tie":
                stats.ties_skipped += 1
            else:
                stats.unrecognised_skipped += 1
                key = repr(skip.label)
                if key in labels or len(labels) < _MAX_LISTED_LABELS:
                    labels[key] += 1
            continue
        kept = [p for p in pairs if p["chosen"] != p["rejected"]]
        stats.identical_skipped += len(pairs) - len(kept)
        if not kept:
            stats.identical_rows += 1
            continue
        stats.rows_used += 1
        stats.pairs_out += len(kept)
        out.extend(kept)
    stats.unrecognised_labels = dict(labels)
    return out, stats
