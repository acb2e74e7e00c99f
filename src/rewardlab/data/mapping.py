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
import math
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from numbers import Real
from typing import Any

from rewardlab.errors import RewardlabError
from rewardlab.files import read_settings_file

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


def is_int(text: str) -> bool:
    return text.lstrip("-").isdigit()


def label_key(value: Any) -> str:
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
    chat: bool = False
    """Score a string prompt and string responses as the conversation `[user: prompt, assistant: response]` through
    the model's chat template, as RewardBench, RM-Bench and JudgeBench do (a model without a chat template reads
    prompt + response as plain text, as training reads a standard row)."""
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
            # Stored as labels are compared (`label_key`), however the mapping was written.
            object.__setattr__(self, key, tuple(label_key(v) for v in values))
            groups[key] = set(getattr(self, key))
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
        for key in _BOOL_KEYS:
            if not isinstance(getattr(self, key), bool):
                raise RewardlabError(f"label mapping: {key} must be true or false, got {getattr(self, key)!r}")

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
        return cls.from_dict(read_settings_file(path, "label mapping file", suffixes=(".json", ".yaml", ".yml")))


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
_BOOL_KEYS = ("match_formats", "chat")


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
            out.append(label_key(item) if key != "keep" else str(item).strip())
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
    # RM-Bench: 3 chosen × 3 rejected style variants per prompt (concise, detailed, detailed + markdown); scored as
    # chats. `domain` (chat, code, math, safety-refuse, safety-response) is a column on the Hub, the file name locally.
    "rm-bench": LabelMapping(
        layout="variants",
        prompt="prompt",
        chosen="chosen",
        rejected="rejected",
        category="subset",
        pairing="all",
        keep=("id", "domain"),
        chat=True,
        name="rm-bench",
    ),
    # RewardBench (v1): one chosen and one rejected answer per prompt, the subset (e.g. alpacaeval-easy) per row.
    "rewardbench": LabelMapping(
        layout="pairs",
        prompt="prompt",
        chosen="chosen",
        rejected="rejected",
        category="subset",
        keep=("id",),
        chat=True,
        name="rewardbench",
    ),
    # JudgeBench: two responses to a question and the objective label "A>B" or "B>A".
    "judgebench": LabelMapping(
        layout="ab",
        prompt="question",
        response_a="response_A",
        response_b="response_B",
        label="label",
        a_values=("A>B", "A>>B"),
        b_values=("B>A", "B>>A"),
        tie_values=("A=B",),
        category="source",
        keep=("pair_id",),
        chat=True,
        name="judgebench",
    ),
}


def get_preset(name: str) -> LabelMapping:
    """The preset mapping called `name` (case-insensitive; `_` and `-` alike), or a `RewardlabError` listing them."""
    key = str(name).strip().lower().replace("_", "-")
    aliases = {
        "hh": "hh-rlhf",
        "alpacaeval": "alpaca-eval",
        "rmbench": "rm-bench",
        "uf": "ultrafeedback",
        "reward-bench": "rewardbench",
        "judge-bench": "judgebench",
    }
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
