"""Turn common pairwise-judgement layouts into the preference rows the trainer and `rewardlab eval` read.

The trainer reads rows `{prompt?, chosen, rejected, margin?}` whose texts are strings (standard) or message lists
`[{"role", "content"}]` (conversational). Published evaluation sets rarely look like that: RMB nests the answers
(`chosen.answer`, `reject.answer`), AlpacaEval gives two outputs and a float preference, RM-Bench gives three chosen
and three rejected variants per prompt. A `LabelMapping` says where each piece lives, so such files load without
user code, and `apply_mapping` turns rows into pairs while counting every row it does not use.

Three layouts:

- `"pairs"`: one chosen and one rejected response per row (`chosen`, `rejected`, optional `prompt`).
- `"ab"`: two responses (`response_a`, `response_b`) and a `label` naming the better one: 1/2, "1"/"2", "A"/"B",
  "a"/"b", "model_a"/"model_b" (see `DEFAULT_A_VALUES`, `DEFAULT_B_VALUES`), or a number compared with a
  `threshold` (AlpacaEval's `preference` in [1, 2]: below 1.5 output_1 wins, above 1.5 output_2, 1.5 is a tie). Ties
  and unrecognised labels are skipped and counted. Without a label, the higher of `score_a`/`score_b` wins.
- `"variants"`: lists of chosen and of rejected responses (RM-Bench); every chosen is paired with every rejected
  (`pairing="all"`) or the i-th with the i-th (`pairing="aligned"`), and each output row records `chosen_index`
  and `rejected_index`.

Field names are dotted paths into nested rows: `chosen.answer` is `row["chosen"]["answer"]`; a numeric part indexes
a list (`conversation_input.-1.content` is the last message's text). A key that itself contains dots is found as is.

A mapping is written as a dict, a JSON/YAML file, a preset name (`PRESETS`), or a compact flag string:
`"layout=ab,prompt=instruction,response_a=output_1,response_b=output_2,label=preference,threshold=1.5"`, with `|`
separating list items (`tie_values=tie|draw`) and `preset=NAME` as a base that other keys override.
"""

from __future__ import annotations

import difflib
import functools
import json
import math
import os
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field, fields
from numbers import Real
from pathlib import Path
from typing import Any

from rewardlab.errors import InvalidRowError, RewardlabError

LAYOUTS = ("pairs", "ab", "variants")
PAIRINGS = ("all", "aligned")
# Label spellings that name response A / response B / a tie, compared case-insensitively after str().
DEFAULT_A_VALUES = ("1", "a", "model_a", "response_a")
DEFAULT_B_VALUES = ("2", "b", "model_b", "response_b")
DEFAULT_TIE_VALUES = ("tie", "tie (bothbad)", "draw")
HH_ASSISTANT = "\n\nAssistant:"
# Columns `apply_mapping` writes; a `keep` field may not take one of these names.
OUTPUT_COLUMNS = (
    "prompt",
    "chosen",
    "rejected",
    "margin",
    "category",
    "row_index",
    "chosen_side",
    "chosen_index",
    "rejected_index",
)
# At most this many distinct unrecognised labels are listed in the stats (all are counted).
_MAX_LISTED_LABELS = 20


def _resolve_defaults(mapping: LabelMapping) -> dict[str, Any]:
    """Layout-dependent defaults for the fields left as None."""
    out: dict[str, Any] = {}
    if mapping.layout in ("pairs", "variants"):
        out["chosen"] = mapping.chosen or "chosen"
        out["rejected"] = mapping.rejected or "rejected"
    if mapping.layout == "variants":
        out["pairing"] = mapping.pairing or "all"
    if mapping.threshold is not None:
        out["above_threshold"] = mapping.above_threshold or "b"
        out["tie_band"] = 0.0 if mapping.tie_band is None else mapping.tie_band
    return out


@dataclass(frozen=True)
class LabelMapping:
    """Where the prompt, the two responses, the label, the margin and the category live in a row.

    Every field naming a row field takes a dotted path (see the module docstring). Fields that do not belong to the
    chosen `layout` must stay None; a mapping is checked when it is made and raises `RewardlabError` naming the key.
    """

    layout: str = "pairs"
    """"pairs", "ab" or "variants" (see the module docstring)."""
    prompt: str | None = None
    """Path of the prompt (string or message list). None: no prompt column, the prompt is inside the responses
    ("implicit prompt", e.g. HH-RLHF dialogues)."""
    chosen: str | None = None
    """pairs: path of the chosen response (default "chosen"); variants: path of the list of chosen responses."""
    rejected: str | None = None
    """pairs: path of the rejected response (default "rejected"); variants: path of the list of rejected ones."""
    response_a: str | None = None
    """ab: path of the first response."""
    response_b: str | None = None
    """ab: path of the second response."""
    label: str | None = None
    """ab: path of the label saying which response is better (a value in `a_values`/`b_values`/`tie_values`,
    or a number when `threshold` is set). May be None when `score_a` and `score_b` decide."""
    threshold: float | None = None
    """ab: the label is a number; `label > threshold + tie_band` means `above_threshold` wins,
    `label < threshold − tie_band` the other response, anything between is a tie. Text labels are still matched
    against `tie_values`/`a_values`/`b_values`."""
    above_threshold: str | None = None
    """ab with threshold: which response, "a" or "b", wins when the label is above the threshold (default "b",
    as in AlpacaEval where a preference above 1.5 means output_2 is better)."""
    tie_band: float | None = None
    """ab with threshold: half-width of the tie band around the threshold (default 0: only an exact tie)."""
    a_values: tuple[str, ...] = DEFAULT_A_VALUES
    """ab: label spellings meaning "response A is better", compared case-insensitively with `str(label)`
    (an integral float 1.0 reads as "1")."""
    b_values: tuple[str, ...] = DEFAULT_B_VALUES
    """ab: label spellings meaning "response B is better"."""
    tie_values: tuple[str, ...] = DEFAULT_TIE_VALUES
    """ab: label spellings meaning a tie; such rows are skipped and counted in `ties_skipped`."""
    margin: str | None = None
    """Path of a numeric margin copied to the `margin` column (the Bradley–Terry loss uses σ(r_c − r_r − margin))."""
    score_chosen: str | None = None
    """pairs: path of the chosen response's score; with `score_rejected`, margin = score_chosen − score_rejected."""
    score_rejected: str | None = None
    """pairs: path of the rejected response's score."""
    score_a: str | None = None
    """ab: path of response A's score; with `score_b`, margin = winner's score − loser's score, and without a
    `label` the higher score wins (equal scores are a tie)."""
    score_b: str | None = None
    """ab: path of response B's score."""
    category: str | None = None
    """Path of a category copied, as a string, to the `category` column (for per-category accuracy)."""
    pairing: str | None = None
    """variants: "all" (every chosen with every rejected, the default) or "aligned" (chosen[i] with rejected[i])."""
    keep: tuple[str, ...] = ()
    """Paths copied unchanged into each output row under the path as column name (e.g. an id); None when absent."""
    match_formats: bool = True
    """Make prompt and responses the same kind: a string response to a message-list prompt becomes
    `[{"role": "assistant", "content": response}]` (RMB), and a string prompt to message-list responses becomes
    `[{"role": "user", "content": prompt}]`, so the row is valid conversational data for the trainer."""
    name: str | None = None
    """The preset this mapping came from, if any (informational; used in messages)."""

    def __post_init__(self) -> None:
        if self.layout not in LAYOUTS:
            raise RewardlabError(f"label mapping: layout must be one of {', '.join(LAYOUTS)}, got {self.layout!r}")
        for key, value in _resolve_defaults(self).items():
            object.__setattr__(self, key, value)
        self._check_layout_fields()
        self._check_values()

    def _check_layout_fields(self) -> None:
        only = {
            "ab": ("response_a", "response_b", "label", "threshold", "score_a", "score_b"),
            "pairs": ("score_chosen", "score_rejected"),
            "pairs or variants": ("chosen", "rejected"),
            "variants": ("pairing",),
        }
        for layouts, keys in only.items():
            if self.layout in layouts.split(" or "):
                continue
            for key in keys:
                if getattr(self, key) is not None:
                    raise RewardlabError(
                        f"label mapping: '{key}' is only used with layout={layouts.replace(' or ', ' or layout=')}, "
                        f"but layout={self.layout}"
                    )
        if self.threshold is None:
            for key in ("above_threshold", "tie_band"):
                if getattr(self, key) is not None:
                    raise RewardlabError(f"label mapping: '{key}' needs a 'threshold' (a numeric label)")
        if self.layout == "ab":
            for key in ("response_a", "response_b"):
                if getattr(self, key) is None:
                    raise RewardlabError(f"label mapping: layout=ab needs '{key}' (the path of that response)")
            if self.label is None and (self.score_a is None or self.score_b is None):
                raise RewardlabError(
                    "label mapping: layout=ab needs a 'label' (which response is better), or 'score_a' and 'score_b'"
                )
        for first, second in (("score_chosen", "score_rejected"), ("score_a", "score_b")):
            if (getattr(self, first) is None) != (getattr(self, second) is None):
                raise RewardlabError(f"label mapping: give both '{first}' and '{second}', or neither")
        if self.margin is not None and (self.score_chosen is not None or self.score_a is not None):
            raise RewardlabError("label mapping: give 'margin' or scores ('score_*'), not both")

    def _check_values(self) -> None:
        if self.above_threshold is not None and self.above_threshold not in ("a", "b"):
            raise RewardlabError(f"label mapping: above_threshold must be 'a' or 'b', got {self.above_threshold!r}")
        if self.pairing is not None and self.pairing not in PAIRINGS:
            raise RewardlabError(f"label mapping: pairing must be one of {', '.join(PAIRINGS)}, got {self.pairing!r}")
        for key in ("threshold", "tie_band"):
            value = getattr(self, key)
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, Real) or not math.isfinite(value)
            ):
                raise RewardlabError(f"label mapping: {key} must be a finite number, got {value!r}")
        if self.tie_band is not None and self.tie_band < 0:
            raise RewardlabError(f"label mapping: tie_band must be >= 0, got {self.tie_band!r}")
        for key in _PATH_KEYS:
            value = getattr(self, key)
            if value is not None and (not isinstance(value, str) or not value.strip()):
                raise RewardlabError(f"label mapping: {key} must be a field path (a non-empty string), got {value!r}")
        groups = {}
        for key in ("a_values", "b_values", "tie_values"):
            values = getattr(self, key)
            if isinstance(values, str) or not all(isinstance(v, str) for v in values):
                raise RewardlabError(f"label mapping: {key} must be a list of strings, got {values!r}")
            groups[key] = {v.strip().lower() for v in values}
        for one, other in (("a_values", "b_values"), ("a_values", "tie_values"), ("b_values", "tie_values")):
            if common := groups[one] & groups[other]:
                raise RewardlabError(f"label mapping: {', '.join(map(repr, sorted(common)))} in both {one} and {other}")
        if isinstance(self.keep, str) or not all(isinstance(k, str) and k for k in self.keep):
            raise RewardlabError(f"label mapping: keep must be a list of field paths, got {self.keep!r}")
        if clash := [k for k in self.keep if k in OUTPUT_COLUMNS]:
            raise RewardlabError(
                f"label mapping: keep {clash[0]!r} would overwrite an output column; the mapping already writes "
                f"{', '.join(OUTPUT_COLUMNS)}"
            )
        if not isinstance(self.match_formats, bool):
            raise RewardlabError(f"label mapping: match_formats must be true or false, got {self.match_formats!r}")

    def to_dict(self) -> dict[str, Any]:
        """The mapping as a JSON-serialisable dict: `layout` and every field that differs from its default.

        `LabelMapping.from_dict(m.to_dict()) == m`.
        """
        return {
            key: list(value) if isinstance(value, tuple) else value
            for key, value in asdict(self).items()
            if key == "layout" or value != _FIELD_DEFAULTS[key]
        }

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> LabelMapping:
        """A mapping from a dict of field values (as in a YAML/JSON file); `preset` names a base to override.

        Lists may be given as lists or as one string with `|` between items; numbers and booleans as numbers
        and booleans or as their text. Unknown keys raise `RewardlabError` with the closest known key.
        """
        if not isinstance(values, Mapping):
            raise RewardlabError(f"label mapping must be a dict of settings, got {type(values).__name__}")
        values = dict(values)
        preset_name = values.pop("preset", None)
        for key in values:
            if key not in _FIELD_DEFAULTS:
                raise RewardlabError(_unknown_key_message(str(key)))
        converted = {key: _convert(key, value) for key, value in values.items()}
        base: dict[str, Any] = {}
        if preset_name is not None:
            preset = get_preset(preset_name)
            base = {f.name: getattr(preset, f.name) for f in fields(cls)}
            # Overriding the layout of a preset starts that layout afresh, keeping only the paths the user gives.
            if converted.get("layout", preset.layout) != preset.layout:
                base = {"name": preset.name}
        return cls(**(base | converted))

    @classmethod
    def from_flags(cls, text: str) -> LabelMapping:
        """A mapping from `"key=value,key=value"` (see the module docstring); a lone preset name also works."""
        if not isinstance(text, str) or not text.strip():
            raise RewardlabError("label mapping: empty mapping string; give key=value pairs or a preset name")
        if "=" not in text and "," not in text:
            return get_preset(text)
        values: dict[str, str] = {}
        for item in text.split(","):
            item = item.strip()
            if not item:
                continue
            key, sep, value = item.partition("=")
            key, value = key.strip(), value.strip()
            if not sep or not key:
                raise RewardlabError(f"label mapping: expected key=value, got {item!r} in {text!r}")
            if key in values:
                raise RewardlabError(f"label mapping: key '{key}' is given twice in {text!r}")
            if not value and key not in _LIST_KEYS:  # an empty list is meaningful: "keep=" keeps nothing
                raise RewardlabError(f"label mapping: key '{key}' has an empty value in {text!r}")
            values[key] = value
        return cls.from_dict(values)

    @classmethod
    def from_file(cls, path: str | os.PathLike) -> LabelMapping:
        """A mapping from a `.json`, `.yaml` or `.yml` file holding one dict of settings."""
        path = Path(path)
        if not path.is_file():
            raise RewardlabError(f"label mapping file {str(path)!r} does not exist")
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as e:
            raise RewardlabError(f"cannot read label mapping file {str(path)!r}: {e.strerror or e}") from None
        suffix = path.suffix.lower()
        if suffix == ".json":
            try:
                values = json.loads(text)
            except json.JSONDecodeError as e:
                raise RewardlabError(
                    f"label mapping file {str(path)!r} is not valid JSON: {e.msg} (line {e.lineno})"
                ) from None
        elif suffix in (".yaml", ".yml"):
            import yaml

            try:
                values = yaml.safe_load(text)
            except yaml.YAMLError as e:
                raise RewardlabError(f"label mapping file {str(path)!r} is not valid YAML: {e}") from None
        else:
            raise RewardlabError(f"label mapping file {str(path)!r} must end in .json, .yaml or .yml")
        if not isinstance(values, Mapping):
            raise RewardlabError(f"label mapping file {str(path)!r} must hold one dict of settings")
        return cls.from_dict(values)


_FIELD_DEFAULTS: dict[str, Any] = {f.name: f.default for f in fields(LabelMapping)}
_PATH_KEYS = (
    "prompt",
    "chosen",
    "rejected",
    "response_a",
    "response_b",
    "label",
    "margin",
    "score_chosen",
    "score_rejected",
    "score_a",
    "score_b",
    "category",
)
_FLOAT_KEYS = ("threshold", "tie_band")
_LIST_KEYS = ("a_values", "b_values", "tie_values", "keep")
_BOOL_KEYS = ("match_formats",)


def _unknown_key_message(key: str) -> str:
    known = sorted([*_FIELD_DEFAULTS, "preset"])
    close = difflib.get_close_matches(key, known, n=1)
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    return f"label mapping: unknown key '{key}'{hint}; known keys: {', '.join(known)}"


def _convert(key: str, value: Any) -> Any:
    """`value` of `key` as the field's type, from its text (flags) or its YAML/JSON value."""
    if key in _FLOAT_KEYS:
        if isinstance(value, bool):
            raise RewardlabError(f"label mapping: {key} must be a number, got {value!r}")
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise RewardlabError(f"label mapping: {key} must be a number, got {value!r}") from None
        return number
    if key in _LIST_KEYS:
        items = value.split("|") if isinstance(value, str) else value
        if not isinstance(items, (list, tuple)):
            raise RewardlabError(f"label mapping: {key} must be a list (or items separated by '|'), got {value!r}")
        out = []
        for item in items:
            if isinstance(item, bool) or not isinstance(item, (str, int, float)):
                raise RewardlabError(f"label mapping: {key} items must be strings or numbers, got {item!r}")
            out.append(_label_key(item) if key != "keep" else str(item).strip())
        return tuple(x for x in out if x)
    if key in _BOOL_KEYS:
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in ("true", "yes", "1", "on"):
            return True
        if text in ("false", "no", "0", "off"):
            return False
        raise RewardlabError(f"label mapping: {key} must be true or false, got {value!r}")
    if value is not None and not isinstance(value, str):
        raise RewardlabError(f"label mapping: {key} must be a string, got {value!r}")
    if isinstance(value, str) and key in ("layout", "pairing", "above_threshold"):
        return value.strip().lower()
    return value.strip() if isinstance(value, str) else value


# ----------------------------------------------------------------------------------------------------------------
# Presets
# ----------------------------------------------------------------------------------------------------------------

PRESETS: dict[str, LabelMapping] = {
    # Anthropic HH-RLHF: whole dialogues "\n\nHuman: ...\n\nAssistant: ..." sharing all but the last reply.
    "hh-rlhf": LabelMapping(layout="pairs", chosen="chosen", rejected="rejected", name="hh-rlhf"),
    # RMB pairwise set: message-list prompt, answers nested under chosen/reject, category_path like
    # "Pairwise_set/Helpfulness/Chat/Discussion".
    "rmb": LabelMapping(
        layout="pairs",
        prompt="conversation_input",
        chosen="chosen.answer",
        rejected="reject.answer",
        category="category_path",
        keep=("pair_uid",),
        name="rmb",
    ),
    # AlpacaEval annotations: preference in [1, 2] is about 1 + P(output_2 better); 1.5 is a tie.
    "alpaca-eval": LabelMapping(
        layout="ab",
        prompt="instruction",
        response_a="output_1",
        response_b="output_2",
        label="preference",
        threshold=1.5,
        above_threshold="b",
        category="dataset",
        keep=("generator_1", "generator_2"),
        name="alpaca-eval",
    ),
    # UltraFeedback binarized (flattened strings) with GPT-4 ratings in metadata; margin = rating difference.
    "ultrafeedback": LabelMapping(
        layout="pairs",
        prompt="prompt",
        chosen="chosen",
        rejected="rejected",
        score_chosen="metadata.score_chosen",
        score_rejected="metadata.score_rejected",
        name="ultrafeedback",
    ),
    # RM-Bench: 3 chosen × 3 rejected style variants per prompt (concise, detailed, detailed + markdown).
    "rm-bench": LabelMapping(
        layout="variants",
        prompt="prompt",
        chosen="chosen",
        rejected="rejected",
        category="subset",
        pairing="all",
        keep=("id",),
        name="rm-bench",
    ),
}


def get_preset(name: str) -> LabelMapping:
    """The preset mapping called `name` (case-insensitive; `_` and `-` alike), or a `RewardlabError` listing them."""
    key = str(name).strip().lower().replace("_", "-")
    aliases = {"hh": "hh-rlhf", "alpacaeval": "alpaca-eval", "rmbench": "rm-bench", "uf": "ultrafeedback"}
    key = aliases.get(key, key)
    if key not in PRESETS:
        close = difflib.get_close_matches(key, list(PRESETS), n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        raise RewardlabError(
            f"unknown label-mapping preset {str(name)!r}{hint}; presets: {', '.join(PRESETS)}; "
            "or give key=value pairs, e.g. 'layout=pairs,prompt=question,chosen=good,rejected=bad'"
        )
    return PRESETS[key]


def parse_mapping(spec: str | os.PathLike | Mapping[str, Any] | LabelMapping) -> LabelMapping:
    """A `LabelMapping` from any of its forms: an instance, a dict, a preset name, a flag string or a file path.

    A string ending in `.json`, `.yaml` or `.yml` (and holding no `=`) is read as a file; a string with `=` is a
    flag string; any other string is a preset name.
    """
    if isinstance(spec, LabelMapping):
        return spec
    if isinstance(spec, Mapping):
        return LabelMapping.from_dict(spec)
    if isinstance(spec, os.PathLike):
        return LabelMapping.from_file(spec)
    if not isinstance(spec, str):
        raise RewardlabError(f"label mapping must be a string, a dict or a file path, got {type(spec).__name__}")
    text = spec.strip()
    if text.lower().endswith((".json", ".yaml", ".yml")) and "=" not in text:
        return LabelMapping.from_file(text)
    return LabelMapping.from_flags(text)


# ----------------------------------------------------------------------------------------------------------------
# Applying a mapping
# ----------------------------------------------------------------------------------------------------------------


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
    unrecognised_labels: dict[str, int] = field(default_factory=dict)
    """Counts per unrecognised label value (as `repr`), for the first few distinct values."""
    first_invalid: str | None = None
    """The message of the first skipped invalid row, to show the user what was wrong."""

    @property
    def rows_skipped(self) -> int:
        return self.ties_skipped + self.unrecognised_skipped + self.invalid_skipped + self.identical_rows

    def to_dict(self) -> dict[str, Any]:
        """The counts as a JSON-serialisable dict (with `rows_skipped`)."""
        return asdict(self) | {"rows_skipped": self.rows_skipped}

    def summary(self) -> str:
        """One line for logs, e.g. "805 rows -> 804 pairs (skipped: 1 tie)"."""
        parts = [
            f"{count} {what}"
            for count, what in (
                (self.ties_skipped, "tie" if self.ties_skipped == 1 else "ties"),
                (self.unrecognised_skipped, "unrecognised label" + ("s" if self.unrecognised_skipped != 1 else "")),
                (self.invalid_skipped, "invalid row" + ("s" if self.invalid_skipped != 1 else "")),
                (self.identical_skipped, "identical pair" + ("s" if self.identical_skipped != 1 else "")),
            )
            if count
        ]
        skipped = f" (skipped: {', '.join(parts)})" if parts else ""
        return f"{self.rows_in} rows -> {self.pairs_out} pairs{skipped}"


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
        elif isinstance(current, list) and _is_int(part):
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


def _is_int(text: str) -> bool:
    return text.lstrip("-").isdigit()


def _label_key(value: Any) -> str:
    """The case-insensitive text of a label: integral numbers as integers ("1" for 1, 1.0 and "1.0")."""
    if isinstance(value, bool):
        return str(value).lower()
    number = value
    if isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            number = None
    if isinstance(number, Real) and math.isfinite(number) and float(number).is_integer():
        return str(int(number))
    return str(value).strip().lower()


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


def _type_name(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def _text(row: Mapping, index: int, path: str, what: str) -> Any:
    """A prompt or response: a non-empty string or a non-empty list (of messages)."""
    value = _required(row, index, path)
    if isinstance(value, str):
        if not value.strip():
            raise InvalidRowError(index, path, f"is an empty string; expected {what}")
        return value
    if isinstance(value, list):
        if not value:
            raise InvalidRowError(index, path, f"is an empty list; expected {what}")
        if not all(isinstance(m, Mapping) for m in value):
            raise InvalidRowError(index, path, "is a list but not of messages (dicts with 'role' and 'content')")
        return value
    raise InvalidRowError(index, path, f"is a {_type_name(value)}; expected {what} (a string or a message list)")


def _required(row: Mapping, index: int, path: str) -> Any:
    try:
        value = _get_path(row, path)
    except _Missing as e:
        raise InvalidRowError(index, path, str(e)) from None
    if value is None:
        raise InvalidRowError(index, path, "is null")
    return value


def _number(row: Mapping, index: int, path: str) -> float:
    value = _required(row, index, path)
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            raise InvalidRowError(index, path, f"is {value!r}, expected a number") from None
    if isinstance(value, bool) or not isinstance(value, Real):
        raise InvalidRowError(index, path, f"is a {_type_name(value)}, expected a number")
    if not math.isfinite(float(value)):
        raise InvalidRowError(index, path, f"is {float(value)}, expected a finite number")
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
    key = _label_key(label)
    if key in _lowered(mapping.tie_values):
        raise _Skip("tie")
    if key in _lowered(mapping.a_values):
        return "a"
    if key in _lowered(mapping.b_values):
        return "b"
    raise _Skip("unrecognised", label)


@functools.lru_cache(maxsize=64)
def _lowered(values: tuple[str, ...]) -> frozenset[str]:
    return frozenset(_label_key(v) for v in values)


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
        raise InvalidRowError(index, None, f"is a {_type_name(row)}, expected a dict")
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
            index, path, f"is a {_type_name(value)}; layout=variants expects a non-empty list of {what} responses"
        )
    for k, item in enumerate(value):
        if isinstance(item, str) and item.strip():
            continue
        if isinstance(item, list) and item and all(isinstance(m, Mapping) for m in item):
            continue
        raise InvalidRowError(
            index, path, f"item {k} is {'an empty string' if item == '' else 'a ' + _type_name(item)}; expected text"
        )
    return value


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

    No row is dropped silently: a row with a missing, null, empty or wrongly typed field raises `InvalidRowError`
    naming the row index and the field path, or, with `skip_invalid=True`, is skipped and counted; ties,
    unrecognised labels and identical chosen/rejected pairs are skipped and counted (see `MappingStats`).
    `mapping` may also be anything `parse_mapping` accepts.
    """
    mapping = parse_mapping(mapping)
    stats = MappingStats()
    out: list[dict[str, Any]] = []
    by_field: Counter[str] = Counter()
    labels: Counter[str] = Counter()
    for index, row in enumerate(rows):
        stats.rows_in += 1
        try:
            pairs = _row_pairs(row, index, mapping)
        except InvalidRowError as e:
            if not skip_invalid:
                if dataset_name:
                    raise InvalidRowError(e.index, e.field, e.reason, dataset=dataset_name) from None
                raise
            stats.invalid_skipped += 1
            by_field[e.field or "(row)"] += 1
            if stats.first_invalid is None:
                stats.first_invalid = str(e)
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
    stats.invalid_by_field = dict(by_field)
    stats.unrecognised_labels = dict(labels)
    return out, stats


def describe_mapping(mapping: LabelMapping) -> str:
    """The mapping as a flag string that `LabelMapping.from_flags` reads back, for logs and reports."""
    parts = []
    for key, value in mapping.to_dict().items():
        if isinstance(value, list):
            value = "|".join(value)
        elif isinstance(value, bool):
            value = str(value).lower()
        parts.append(f"{key}={value}")
    return ",".join(parts)
