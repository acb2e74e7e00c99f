"""Format detection and row validation (rewardlab.data.formats)."""

import gzip
import json
import math
import time
from pathlib import Path

import pytest
from datasets import Dataset
from row_error import check_row_error

import rewardlab
from rewardlab.data.formats import PreferenceFormat, detect_format
from rewardlab.data.validate import (
    BAD_KWARGS,
    BAD_MARGIN,
    BAD_MESSAGE,
    BAD_TOOLS,
    EMPTY,
    IDENTICAL,
    MISMATCH,
    MISSING,
    NULL,
    WRONG_TYPE,
    validate_dataset,
    validate_example,
)
from rewardlab.errors import InvalidRowError, RewardlabError

HH_HELPFUL = Path(rewardlab.__file__).parent / "demo_data" / "hh-rlhf-helpful-base-test.jsonl.gz"

USER = {"role": "user", "content": "What color is the sky?"}
BLUE = {"role": "assistant", "content": "It is blue."}
GREEN = {"role": "assistant", "content": "It is green."}

STANDARD_IMPLICIT = {"chosen": "The sky is blue.", "rejected": "The sky is green."}
STANDARD_EXPLICIT = {"prompt": "The sky is", "chosen": " blue.", "rejected": " green."}
CONV_IMPLICIT = {"chosen": [USER, BLUE], "rejected": [USER, GREEN]}
CONV_EXPLICIT = {"prompt": [USER], "chosen": [BLUE], "rejected": [GREEN]}
TOKENIZED = {"chosen_ids": [1, 5, 6], "rejected_ids": [1, 5, 7]}

FMT_SI = PreferenceFormat(conversational=False, explicit_prompt=False)
FMT_SE = PreferenceFormat(conversational=False, explicit_prompt=True)
FMT_CI = PreferenceFormat(conversational=True, explicit_prompt=False)
FMT_CE = PreferenceFormat(conversational=True, explicit_prompt=True)
FMT_TOK = PreferenceFormat(conversational=False, explicit_prompt=False, tokenized=True)


@pytest.mark.parametrize(
    "example, fmt, name",
    [
        (STANDARD_IMPLICIT, FMT_SI, "standard implicit-prompt"),
        (STANDARD_EXPLICIT, FMT_SE, "standard explicit-prompt"),
        (CONV_IMPLICIT, FMT_CI, "conversational implicit-prompt"),
        (CONV_EXPLICIT, FMT_CE, "conversational explicit-prompt"),
        (TOKENIZED, FMT_TOK, "pre-tokenized"),
        ({"chosen_input_ids": [1, 2], "rejected_input_ids": [1, 3]}, FMT_TOK, "pre-tokenized"),
        # Pre-tokenized columns win over text columns, as in TRL (so preparing twice is a no-op).
        ({**STANDARD_IMPLICIT, **TOKENIZED}, FMT_TOK, "pre-tokenized"),
        # A None chosen does not hide the format: rejected shows it.
        ({"chosen": None, "rejected": [USER, GREEN]}, FMT_CI, "conversational implicit-prompt"),
    ],
)
def test_detect_format(example, fmt, name):
    detected = detect_format(example)
    assert detected == fmt
    assert detected.name == name


def test_detect_format_without_preference_columns():
    with pytest.raises(RewardlabError, match="'chosen' and 'rejected'"):
        detect_format({"text": "hello", "label": 1})


@pytest.mark.parametrize(
    "example, fmt",
    [
        (STANDARD_IMPLICIT, FMT_SI),
        (STANDARD_EXPLICIT, FMT_SE),
        (CONV_IMPLICIT, FMT_CI),
        (CONV_EXPLICIT, FMT_CE),
        (TOKENIZED, FMT_TOK),
        ({"chosen_input_ids": [1, 2], "rejected_input_ids": [1, 3]}, FMT_TOK),
        ({**STANDARD_IMPLICIT, "margin": 1}, FMT_SI),
        ({**STANDARD_IMPLICIT, "margin": -0.5, "source": "x", "id": 3}, FMT_SI),
        ({**CONV_IMPLICIT, "tools": [{"type": "function", "function": {"name": "f"}}]}, FMT_CI),
        ({**CONV_IMPLICIT, "tools": json.dumps([{"type": "function"}])}, FMT_CI),
        ({**CONV_IMPLICIT, "tools": None, "chat_template_kwargs": None}, FMT_CI),
        ({**CONV_IMPLICIT, "chat_template_kwargs": {"enable_thinking": False}}, FMT_CI),
        # A tool call may come without content; tool results come as role 'tool'.
        (
            {
                "prompt": [USER],
                "chosen": [
                    {"role": "assistant", "content": None, "tool_calls": [{"function": {"name": "weather"}}]},
                    {"role": "tool", "content": "sunny"},
                    {"role": "assistant", "content": "It is sunny."},
                ],
                "rejected": [{"role": "assistant", "content": "I do not know."}],
            },
            FMT_CE,
        ),
        # An implicit-prompt row may carry prompt=None (a column that exists in other data).
        ({**STANDARD_IMPLICIT, "prompt": None}, FMT_SI),
    ],
)
def test_valid_examples_pass(example, fmt):
    validate_example(example, 3, fmt)


def _msg(role="assistant", content="hi", **kw):
    return {"role": role, "content": content, **kw}


INVALID = [
    # (example, fmt, field, code, words that must be in the message)
    ({"rejected": "no"}, FMT_SI, "chosen", MISSING, ["missing"]),
    ({"chosen": None, "rejected": "no"}, FMT_SI, "chosen", NULL, ["None"]),
    ({"chosen": 5, "rejected": "no"}, FMT_SI, "chosen", WRONG_TYPE, ["int", "string"]),
    ({"chosen": "yes", "rejected": {"a": 1}}, FMT_SI, "rejected", WRONG_TYPE, ["dict", "string"]),
    ({"chosen": "", "rejected": "no"}, FMT_SI, "chosen", EMPTY, ["empty"]),
    ({"chosen": "yes", "rejected": "   "}, FMT_SI, "rejected", EMPTY, ["empty"]),
    ({"prompt": "", "chosen": "yes", "rejected": "no"}, FMT_SE, "prompt", EMPTY, ["empty"]),
    ({"chosen": "yes", "rejected": "no"}, FMT_SE, "prompt", MISSING, ["missing"]),
    ({"prompt": None, "chosen": "yes", "rejected": "no"}, FMT_SE, "prompt", NULL, ["None"]),
    ({"chosen": [], "rejected": [USER, GREEN]}, FMT_CI, "chosen", EMPTY, ["empty message list"]),
    ({"prompt": [], "chosen": [BLUE], "rejected": [GREEN]}, FMT_CE, "prompt", EMPTY, ["empty message list"]),
    ({"chosen": ["hello"], "rejected": [USER, GREEN]}, FMT_CI, "chosen", BAD_MESSAGE, ["message 0", "str", "dict"]),
    ({"chosen": [USER, {"content": "x"}], "rejected": [USER]}, FMT_CI, "chosen", BAD_MESSAGE, ["message 1", "role"]),
    ({"chosen": [_msg(role=1)], "rejected": [USER]}, FMT_CI, "chosen", BAD_MESSAGE, ["'role'", "int", "string"]),
    ({"chosen": [USER], "rejected": [{"role": "assistant"}]}, FMT_CI, "rejected", BAD_MESSAGE, ["content"]),
    ({"chosen": [USER], "rejected": [_msg(content=None)]}, FMT_CI, "rejected", BAD_MESSAGE, ["tool_calls"]),
    ({"chosen": [USER], "rejected": [_msg(content=3)]}, FMT_CI, "rejected", BAD_MESSAGE, ["'content'", "int"]),
    ({"chosen": [_msg(tool_calls="f()")], "rejected": [USER]}, FMT_CI, "chosen", BAD_MESSAGE, ["tool_calls"]),
    ({**STANDARD_IMPLICIT, "margin": float("nan")}, FMT_SI, "margin", BAD_MARGIN, ["finite"]),
    ({**STANDARD_IMPLICIT, "margin": math.inf}, FMT_SI, "margin", BAD_MARGIN, ["finite"]),
    ({**STANDARD_IMPLICIT, "margin": "0.5"}, FMT_SI, "margin", BAD_MARGIN, ["str", "number"]),
    ({**STANDARD_IMPLICIT, "margin": True}, FMT_SI, "margin", BAD_MARGIN, ["bool", "number"]),
    ({**STANDARD_IMPLICIT, "margin": None}, FMT_SI, "margin", NULL, ["None"]),
    ({**CONV_IMPLICIT, "tools": {"type": "function"}}, FMT_CI, "tools", BAD_TOOLS, ["dict", "list"]),
    ({**CONV_IMPLICIT, "tools": "[{not json"}, FMT_CI, "tools", BAD_TOOLS, ["JSON"]),
    ({**CONV_IMPLICIT, "tools": '{"type": "function"}'}, FMT_CI, "tools", BAD_TOOLS, ["list"]),
    ({**CONV_IMPLICIT, "tools": ["weather"]}, FMT_CI, "tools", BAD_TOOLS, ["tool 0", "str"]),
    ({**CONV_IMPLICIT, "chat_template_kwargs": [1]}, FMT_CI, "chat_template_kwargs", BAD_KWARGS, ["list", "dict"]),
    # A row whose format differs from the dataset's.
    ({"chosen": "It is blue.", "rejected": [USER, GREEN]}, FMT_CI, "chosen", MISMATCH, ["conversational"]),
    ({"chosen": [USER, BLUE], "rejected": "no"}, FMT_SI, "chosen", MISMATCH, ["plain text"]),
    ({"prompt": "What color?", "chosen": [BLUE], "rejected": [GREEN]}, FMT_CE, "prompt", MISMATCH, ["string"]),
    ({**STANDARD_IMPLICIT, "prompt": "Hi"}, FMT_SI, "prompt", MISMATCH, ["prompt"]),
    (TOKENIZED, FMT_SI, "chosen_ids", MISMATCH, ["pre-tokenized"]),
    # Chosen identical to rejected.
    ({"chosen": "same", "rejected": "same"}, FMT_SI, "rejected", IDENTICAL, ["identical to 'chosen'"]),
    ({"prompt": "p", "chosen": " a", "rejected": " a"}, FMT_SE, "rejected", IDENTICAL, ["identical", "prompt"]),
    ({"chosen": [USER, BLUE], "rejected": [USER, BLUE]}, FMT_CI, "rejected", IDENTICAL, ["identical"]),
    ({"prompt": [USER], "chosen": [BLUE], "rejected": [dict(BLUE)]}, FMT_CE, "rejected", IDENTICAL, ["identical"]),
    # Pre-tokenized rows.
    ({"chosen_ids": [1, 2], "rejected_ids": []}, FMT_TOK, "rejected_ids", EMPTY, ["empty"]),
    ({"chosen_ids": None, "rejected_ids": [1]}, FMT_TOK, "chosen_ids", NULL, ["None"]),
    ({"chosen_ids": "1 2", "rejected_ids": [1]}, FMT_TOK, "chosen_ids", WRONG_TYPE, ["str", "list"]),
    ({"chosen_ids": [1, "2"], "rejected_ids": [1]}, FMT_TOK, "chosen_ids", WRONG_TYPE, ["token 1", "int"]),
    ({"chosen_ids": [1, -2], "rejected_ids": [1]}, FMT_TOK, "chosen_ids", WRONG_TYPE, ["non-negative"]),
    ({"chosen_ids": [1, 2.5], "rejected_ids": [1]}, FMT_TOK, "chosen_ids", WRONG_TYPE, ["float"]),
    ({"chosen_input_ids": [1, 2], "rejected_input_ids": []}, FMT_TOK, "rejected_input_ids", EMPTY, ["empty"]),
    ({"chosen_ids": [4, 2], "rejected_ids": [4, 2]}, FMT_TOK, "rejected_ids", IDENTICAL, ["identical"]),
    ({**TOKENIZED, "margin": "big"}, FMT_TOK, "margin", BAD_MARGIN, ["number"]),
]


@pytest.mark.parametrize("example, fmt, field, code, words", INVALID)
def test_invalid_examples(example, fmt, field, code, words):
    with pytest.raises(InvalidRowError) as info:
        validate_example(example, 17, fmt)
    check_row_error(info.value, field, code, words, max_reason=160)


def test_validate_dataset_all_valid_returns_same_object():
    ds = Dataset.from_list([STANDARD_EXPLICIT, {"prompt": "a", "chosen": " b", "rejected": " c"}])
    out, skipped = validate_dataset(ds, skip_invalid=False, dataset_name="train")
    assert out is ds and skipped == {}


def _mixed_rows():
    return [
        {"chosen": "good one", "rejected": "bad one", "margin": 1.0},  # 0 ok
        {"chosen": "same", "rejected": "same", "margin": 0.5},  # 1 identical
        {"chosen": "", "rejected": "bad", "margin": 1.0},  # 2 empty
        {"chosen": "yes", "rejected": "no", "margin": float("nan")},  # 3 bad margin
        {"chosen": None, "rejected": "no", "margin": 1.0},  # 4 null
        {"chosen": "again", "rejected": "again", "margin": 2.0},  # 5 identical
        {"chosen": "last", "rejected": "one", "margin": 3.0},  # 6 ok
    ]


def test_validate_dataset_skip_counts_per_reason_and_keeps_order():
    ds = Dataset.from_list(_mixed_rows())
    out, skipped = validate_dataset(ds, skip_invalid=True, dataset_name="train")
    assert skipped == {IDENTICAL: 2, EMPTY: 1, BAD_MARGIN: 1, NULL: 1}
    assert out["chosen"] == ["good one", "last"]
    assert out["margin"] == [1.0, 3.0]


def test_validate_dataset_raises_first_error_with_dataset_name():
    ds = Dataset.from_list(_mixed_rows())
    with pytest.raises(InvalidRowError) as info:
        validate_dataset(ds, skip_invalid=False, dataset_name="eval")
    error = info.value
    assert error.index == 1 and error.field == "rejected" and error.dataset == "eval"
    assert str(error).startswith("eval dataset, row 1, field 'rejected': identical to 'chosen'")
    assert error.code == IDENTICAL


def test_validate_dataset_conversational_with_tools_and_arrow_nulls():
    # Arrow fills keys missing from some rows with None: tool_calls=None on plain messages, tools=None.
    rows = [
        {
            "prompt": [USER],
            "chosen": [{"role": "assistant", "content": None, "tool_calls": [{"name": "weather"}]}],
            "rejected": [GREEN],
            "tools": json.dumps([{"type": "function", "function": {"name": "weather"}}]),
        },
        {"prompt": [USER], "chosen": [BLUE], "rejected": [GREEN], "tools": None},
        {"prompt": [USER], "chosen": [{"role": "assistant", "content": None}], "rejected": [GREEN], "tools": None},
    ]
    ds = Dataset.from_list(rows)
    assert ds[1]["chosen"][0]["tool_calls"] is None  # the Arrow null we must tolerate
    out, skipped = validate_dataset(ds, skip_invalid=True, dataset_name="train")
    assert len(out) == 2 and skipped == {BAD_MESSAGE: 1}


def test_validate_dataset_empty_and_unusable():
    empty = Dataset.from_dict({"chosen": [], "rejected": []})
    with pytest.raises(RewardlabError, match="empty"):
        validate_dataset(empty, skip_invalid=True, dataset_name="train")
    with pytest.raises(RewardlabError, match="'chosen' and 'rejected'"):
        validate_dataset(Dataset.from_dict({"text": ["a"]}), skip_invalid=True, dataset_name="train")


def test_validate_dataset_is_fast_on_15k_rows():
    rows = [
        {"prompt": [USER], "chosen": [{"role": "assistant", "content": f"blue {i}"}], "rejected": [GREEN]}
        for i in range(15_000)
    ]
    ds = Dataset.from_list(rows)
    start = time.perf_counter()
    out, skipped = validate_dataset(ds, skip_invalid=True, dataset_name="train")
    elapsed = time.perf_counter() - start
    assert len(out) == 15_000 and skipped == {}
    assert elapsed < 5.0, f"validating 15k rows took {elapsed:.1f}s"


def test_hh_helpful_has_two_identical_pairs():
    with gzip.open(HH_HELPFUL, "rt") as f:
        rows = [json.loads(line) for line in f]
    ds = Dataset.from_list(rows)
    out, skipped = validate_dataset(ds, skip_invalid=True, dataset_name="train")
    assert skipped == {IDENTICAL: 2}
    assert len(out) == len(rows) - 2
