"""Ranked data (K >= 2 responses per prompt): detection, validation, tokenization and preparation."""

import json
import math
from pathlib import Path

import pytest
from datasets import Dataset, IterableDataset, load_dataset
from row_error import check_row_error
from tiny import make_tokenizer

from rewardlab.config import RewardConfig
from rewardlab.data.formats import (
    PreferenceFormat,
    detect_dataset_format,
    detect_format,
    is_ranked_dataset,
    is_ranked_example,
)
from rewardlab.data.positions import common_prefix_length
from rewardlab.data.prepare import count_comparisons, prepare_preference_dataset
from rewardlab.data.prepare_item import OUT_OF_VOCAB
from rewardlab.data.tokenize import CHAT_TEMPLATE_ERROR, tokenize_pair, tokenize_ranking, tokenize_text
from rewardlab.data.validate import (
    BAD_KWARGS,
    BAD_MARGIN,
    BAD_MESSAGE,
    BAD_SCORES,
    BAD_TOOLS,
    EMPTY,
    IDENTICAL,
    MISMATCH,
    MISSING,
    NO_PREFERENCE,
    NULL,
    TOO_FEW,
    WRONG_TYPE,
    validate_example,
    validate_ranked_example,
)
from rewardlab.errors import InvalidRowError, RewardlabError

RM_BENCH_CHAT = Path("/work/shared/data/rm-bench/chat_filtered.jsonl.gz")

USER = {"role": "user", "content": "what color is the sky ?"}
BLUE = {"role": "assistant", "content": "the sky is blue ."}
GREEN = {"role": "assistant", "content": "the sky is green ."}
RED = {"role": "assistant", "content": "red , sorry"}
TOOLS = json.dumps([{"type": "function", "function": {"name": "weather", "description": "the weather"}}])

RSI = PreferenceFormat(conversational=False, explicit_prompt=False, ranked=True)
RSE = PreferenceFormat(conversational=False, explicit_prompt=True, ranked=True)
RCI = PreferenceFormat(conversational=True, explicit_prompt=False, ranked=True)
RCE = PreferenceFormat(conversational=True, explicit_prompt=True, ranked=True)
RTOK = PreferenceFormat(conversational=False, explicit_prompt=False, tokenized=True, ranked=True)
PAIR_SE = PreferenceFormat(conversational=False, explicit_prompt=True)


def cfg(tmp_path, **kwargs) -> RewardConfig:
    return RewardConfig(**{"output_dir": str(tmp_path), "report_to": [], "use_cpu": True, **kwargs})


def table(rows: list[dict]) -> Dataset:
    """`Dataset.from_list` keeps only the first row's keys: give every row every key (None where absent), as Arrow
    does when it reads a file whose rows differ."""
    keys = list(dict.fromkeys(k for row in rows for k in row))
    return Dataset.from_list([{k: row.get(k) for k in keys} for row in rows])


def prepare(rows_or_dataset, tokenizer, tmp_path, name="train", **kwargs):
    ds = table(rows_or_dataset) if isinstance(rows_or_dataset, list) else rows_or_dataset
    return prepare_preference_dataset(ds, tokenizer, cfg(tmp_path, **kwargs), name)


def text_ids(tokenizer, text):
    return tokenize_text(tokenizer, text, tokenizer.eos_token_id)


# ------------------------------------------------------------------------------------------------ spellings


STANDARD_SPELLINGS = {
    # name: (row, the responses in order, their scores)
    "best first": (
        {"prompt": "the sky is", "responses": [" blue", " green", " red"]},
        [" blue", " green", " red"],
        [2.0, 1.0, 0.0],
    ),
    "with scores": (
        {"prompt": "the sky is", "responses": [" blue", " green", " red", " sunny"], "scores": [3, 0.5, 0.5, -1]},
        [" blue", " green", " red", " sunny"],
        [3.0, 0.5, 0.5, -1.0],
    ),
    "tiered": (
        {"prompt": "the sky is", "chosen": [" blue", " blue ."], "rejected": [" green", " red", " sunny"]},
        [" blue", " blue .", " green", " red", " sunny"],
        [1.0, 1.0, 0.0, 0.0, 0.0],
    ),
}


@pytest.mark.parametrize("spelling", list(STANDARD_SPELLINGS))
def test_standard_spellings_tokenize_prompt_plus_each_response(spelling, tokenizer, tmp_path):
    row, responses, scores = STANDARD_SPELLINGS[spelling]
    out, stats = prepare([{**row, "source": "unit"}], tokenizer, tmp_path)
    assert out.column_names == ["response_ids", "scores"]  # every other column removed
    expected = [text_ids(tokenizer, "the sky is" + r) for r in responses]
    assert out[0] == {"response_ids": expected, "scores": scores}
    assert tokenize_ranking(row, tokenizer, tokenizer.eos_token_id) == out[0]
    assert (stats.kind, stats.rows_in, stats.pairs_out) == ("rankings", 1, 1)
    assert stats.comparisons_out == count_comparisons(scores)


def test_implicit_prompt_responses_are_whole_sequences(tokenizer, tmp_path):
    rows = [{"responses": ["the sky is blue", "the sky is green"]}, {"chosen": ["yes"], "rejected": ["no", "sorry"]}]
    out, _ = prepare(rows, tokenizer, tmp_path)
    assert out[0]["response_ids"] == [text_ids(tokenizer, "the sky is blue"), text_ids(tokenizer, "the sky is green")]
    assert out[1]["response_ids"] == [text_ids(tokenizer, t) for t in ("yes", "no", "sorry")]
    assert out["scores"] == [[1.0, 0.0], [1.0, 0.0, 0.0]]


CONVERSATIONAL_ROWS = [
    {"prompt": [USER], "responses": [[BLUE], [GREEN], [RED]]},
    {"prompt": [USER], "responses": [[GREEN], [BLUE], [RED]], "scores": [0.0, 1.0, 0.0]},
    {"prompt": [USER], "chosen": [[BLUE], [GREEN]], "rejected": [[RED]]},
]


@pytest.mark.parametrize("row", CONVERSATIONAL_ROWS, ids=["best first", "with scores", "tiered"])
@pytest.mark.parametrize("options", [{}, {"tools": TOOLS, "chat_template_kwargs": {"enable_thinking": False}}])
def test_conversational_spellings_match_tokenize_pair(row, options, tokenizer, tmp_path):
    row = {**row, **options}
    out, _ = prepare([row], tokenizer, tmp_path)
    responses = row.get("responses") or row["chosen"] + row["rejected"]
    expected = []
    for response in responses:  # each response rendered exactly as a pair's chosen response with the same options
        pair = {"prompt": [USER], "chosen": response, "rejected": [{"role": "assistant", "content": "?"}], **options}
        expected.append(tokenize_pair(pair, tokenizer, tokenizer.eos_token_id)["chosen_ids"])
    assert out[0]["response_ids"] == expected
    assert len(set(map(tuple, expected))) == len(expected)
    text = tokenizer.decode(out[0]["response_ids"][0])
    assert ("weather" in text) == bool(options)


def test_chat_template_kwargs_reach_the_template(tmp_path):
    tokenizer = make_tokenizer("llama")  # its template writes <|nothink|> when enable_thinking is False
    row = {"responses": [[USER, BLUE], [USER, GREEN]], "chat_template_kwargs": {"enable_thinking": False}}
    out, _ = prepare([row], tokenizer, tmp_path)
    assert all("<|nothink|>" in tokenizer.decode(ids) for ids in out[0]["response_ids"])
    plain, _ = prepare([{"responses": row["responses"]}], tokenizer, tmp_path)
    assert all("<|nothink|>" not in tokenizer.decode(ids) for ids in plain[0]["response_ids"])


PAIR_ROWS = {
    "standard implicit": [{"chosen": "the sky is blue", "rejected": "the sky is green"}],
    "standard explicit": [{"prompt": "how can I help ?", "chosen": " sure", "rejected": " no"}],
    "conversational implicit": [{"chosen": [USER, BLUE], "rejected": [USER, GREEN]}],
    "conversational explicit": [{"prompt": [USER], "chosen": [BLUE], "rejected": [GREEN]}],
}


@pytest.mark.parametrize("fmt", list(PAIR_ROWS))
def test_a_ranking_of_two_gives_the_ids_of_the_pair(fmt, tokenizer, tmp_path):
    pairs = PAIR_ROWS[fmt]
    rankings = [
        {k: v for k, v in p.items() if k == "prompt"} | {"responses": [p["chosen"], p["rejected"]]} for p in pairs
    ]
    tiered = [
        {k: v for k, v in p.items() if k == "prompt"} | {"chosen": [p["chosen"]], "rejected": [p["rejected"]]}
        for p in pairs
    ]
    pair_out, pair_stats = prepare(pairs, tokenizer, tmp_path)
    for rows in (rankings, tiered):
        out, stats = prepare(rows, tokenizer, tmp_path)
        assert out[0]["response_ids"] == [pair_out[0]["chosen_ids"], pair_out[0]["rejected_ids"]]
        assert out[0]["scores"] == [1.0, 0.0]
        assert (stats.pairs_out, stats.comparisons_out) == (pair_stats.pairs_out, pair_stats.comparisons_out) == (1, 1)


def test_rm_bench_tiered_rows(tmp_path):
    tokenizer = make_tokenizer("qwen3")
    data = load_dataset("json", data_files=str(RM_BENCH_CHAT), split="train", cache_dir=str(tmp_path / "cache"))
    data = data.select(range(5))
    assert isinstance(data[0]["chosen"], list) and len(data[0]["chosen"]) == 3
    assert is_ranked_dataset(data) and detect_dataset_format(data).name == "ranked standard explicit-prompt"
    out, stats = prepare(data, tokenizer, tmp_path, max_length=None)
    assert out.column_names == ["response_ids", "scores"] and len(out) == 5
    for row, got in zip(data, out, strict=True):
        assert got["scores"] == [1.0, 1.0, 1.0, 0.0, 0.0, 0.0]
        responses = row["chosen"] + row["rejected"]
        assert got["response_ids"] == [text_ids(tokenizer, row["prompt"] + r) for r in responses]
    assert stats.summary() == (
        "train: 5 rows → 5 rankings (45 comparisons); 0 prompts truncated from the left, 0 rankings with "
        "responses cut, 0 dropped (max_length=None, policy=truncate_prompt)"
    )
    assert stats.to_dict()["kind"] == "rankings" and stats.to_dict()["comparisons_out"] == 45


def test_pre_tokenized_rankings_pass_through_and_preparing_twice_changes_nothing(tokenizer, tmp_path):
    rows = [
        {"prompt": "the sky is blue . " * 12, "responses": ["yes", "no", "sure"], "scores": [1, 0, 2]},
        {"prompt": "the city is", "chosen": [" paris"], "rejected": [" rome", " london"]},
    ]
    once, first = prepare(rows, tokenizer, tmp_path, max_length=24)
    assert first.prompt_truncated == 1
    twice, second = prepare(once, tokenizer, tmp_path, max_length=24)
    assert twice.to_dict() == once.to_dict()
    assert (second.prompt_truncated, second.pairs_out, second.comparisons_out) == (0, 2, first.comparisons_out)
    assert detect_format(once[0]) == RTOK
    # Pre-tokenized without scores: best first, as for text.
    assert tokenize_ranking({"response_ids": [[5, 6], [5, 7]]}, tokenizer, None)["scores"] == [1.0, 0.0]


# ------------------------------------------------------------------------------------------------ detection


@pytest.mark.parametrize(
    "example, ranked",
    [
        ({"responses": ["a", "b"]}, True),
        ({"response_ids": [[1], [2]], "scores": [1, 0]}, True),
        ({"chosen": ["a", "b"], "rejected": ["c"]}, True),
        ({"chosen": [[USER, BLUE]], "rejected": [[USER, GREEN]]}, True),
        ({"chosen": None, "rejected": ["a"]}, True),
        # Pairs, never rankings, whatever extra columns they carry.
        ({"chosen": "a", "rejected": "b"}, False),
        ({"chosen": [USER, BLUE], "rejected": [USER, GREEN]}, False),
        ({"prompt": [USER], "chosen": [BLUE], "rejected": [GREEN]}, False),
        ({"chosen": "a", "rejected": "b", "responses": ["x", "y"], "scores": [1, 0]}, False),
        ({"chosen_ids": [1, 2], "rejected_ids": [1, 3], "response_ids": [[1], [2]]}, False),
        ({"chosen": ["hello"], "rejected": [USER, GREEN]}, False),  # a broken message list, still a pair
        ({"chosen": [], "rejected": []}, False),
        ({"text": "hello"}, False),
        ("not a dict", False),
    ],
)
def test_is_ranked_example(example, ranked):
    assert is_ranked_example(example) is ranked


@pytest.mark.parametrize(
    "example, fmt, name",
    [
        ({"prompt": "p", "responses": [" a", " b"]}, RSE, "ranked standard explicit-prompt"),
        ({"chosen": [[USER, BLUE]], "rejected": [[USER, GREEN]]}, RCI, "ranked conversational implicit-prompt"),
        ({"prompt": [USER], "responses": [None, [BLUE]]}, RCE, "ranked conversational explicit-prompt"),
        ({"response_ids": [[1], [2]], "scores": [1, 0]}, RTOK, "ranked pre-tokenized"),
    ],
)
def test_detect_ranked_format(example, fmt, name):
    assert detect_format(example) == fmt and fmt.name == name


def test_dataset_detection_uses_the_first_decisive_row():
    rows = [{"prompt": None, "responses": None}] * 3 + [{"prompt": "p", "responses": [" a", " b"]}]
    assert detect_dataset_format(rows) == RSE
    assert is_ranked_dataset(Dataset.from_list(rows)) and is_ranked_dataset(
        Dataset.from_list(rows).to_iterable_dataset()
    )
    assert not is_ranked_dataset(Dataset.from_list(PAIR_ROWS["standard explicit"]))
    assert not is_ranked_dataset(Dataset.from_dict({"responses": []}))  # empty: preparation says why
    assert not is_ranked_dataset([{"text": "hello"}])


# ------------------------------------------------------------------------------------------------ validation


@pytest.mark.parametrize(
    "example, fmt",
    [
        ({"prompt": "p", "responses": [" a", " b"]}, RSE),
        ({"prompt": "p", "responses": [" a", " a", " b"], "scores": [1, 1, 0]}, RSE),  # equal and equally scored
        ({"prompt": "p", "responses": [" a", " b", " c"], "scores": [0.5, 0.5, -2]}, RSE),
        ({"responses": ["a", "b"], "prompt": None, "margin": None, "chosen": None, "rejected": None}, RSI),  # Arrow
        ({"chosen": [[USER, BLUE]], "rejected": [[USER, GREEN], [USER, RED]], "tools": TOOLS}, RCI),
        ({"prompt": [USER], "responses": [[BLUE], [GREEN]], "chat_template_kwargs": {"enable_thinking": False}}, RCE),
        ({"response_ids": [[1, 2], [1, 3], [1, 2]], "scores": [1, 0, 1]}, RTOK),
        ({"response_ids": [[1, 2], [1, 3]], "responses": "ignored: token ids win"}, RTOK),
    ],
)
def test_valid_rankings_pass(example, fmt):
    validate_ranked_example(example, 3, fmt)


INVALID = [
    # (example, fmt, field, code, words that must be in the message)
    ({"prompt": "p"}, RSE, "responses", MISSING, ["missing"]),
    ({"prompt": "p", "responses": None}, RSE, "responses", NULL, ["None"]),
    ({"prompt": "p", "responses": "a b"}, RSE, "responses", WRONG_TYPE, ["str", "list of responses"]),
    ({"prompt": "p", "responses": [" a"]}, RSE, "responses", TOO_FEW, ["1 response", "at least 2"]),
    ({"prompt": "p", "responses": [" a", 5]}, RSE, "responses[1]", WRONG_TYPE, ["int", "string"]),
    ({"prompt": "p", "responses": [" a", None]}, RSE, "responses[1]", NULL, ["None"]),
    ({"prompt": "p", "responses": [" a", "  "]}, RSE, "responses[1]", EMPTY, ["empty"]),
    ({"prompt": "p", "responses": [" a", [BLUE]]}, RSE, "responses[1]", MISMATCH, ["plain text"]),
    ({"prompt": [USER], "responses": [[BLUE], " a"]}, RCE, "responses[1]", MISMATCH, ["conversational"]),
    ({"prompt": [USER], "responses": [[BLUE], [{"content": "x"}]]}, RCE, "responses[1]", BAD_MESSAGE, ["role"]),
    ({"prompt": [USER], "responses": [[], [BLUE]]}, RCE, "responses[0]", EMPTY, ["empty message list"]),
    ({"prompt": "p", "responses": [" a", " b"], "scores": [1]}, RSE, "scores", BAD_SCORES, ["1 scores for 2"]),
    ({"prompt": "p", "responses": [" a", " b"], "scores": ["1", 0]}, RSE, "scores", BAD_SCORES, ["scores[0]", "str"]),
    ({"prompt": "p", "responses": [" a", " b"], "scores": [1, True]}, RSE, "scores", BAD_SCORES, ["scores[1]", "bool"]),
    ({"prompt": "p", "responses": [" a", " b"], "scores": [math.nan, 0]}, RSE, "scores", BAD_SCORES, ["finite"]),
    ({"prompt": "p", "responses": [" a", " b"], "scores": [1, -math.inf]}, RSE, "scores", BAD_SCORES, ["finite"]),
    ({"prompt": "p", "responses": [" a", " b"], "scores": "1 0"}, RSE, "scores", BAD_SCORES, ["str", "numbers"]),
    ({"prompt": "p", "responses": [" a", " b"], "scores": None}, RSE, "scores", NULL, ["None"]),
    ({"prompt": "p", "responses": [" a", " b"], "scores": [2, 2]}, RSE, "scores", NO_PREFERENCE, ["same score"]),
    # Identical responses with different scores: contradictory; both indices named.
    ({"prompt": "p", "responses": [" a", " b", " a"]}, RSE, "responses[2]", IDENTICAL, ["'responses[0]'", "scored"]),
    ({"prompt": "p", "responses": [" a", " a"], "scores": [0, 1]}, RSE, "responses[1]", IDENTICAL, ["responses[0]"]),
    ({"prompt": "p", "chosen": [" a"], "rejected": [" b", " a"]}, RSE, "rejected[1]", IDENTICAL, ["'chosen[0]'"]),
    ({"chosen": [[USER, BLUE]], "rejected": [[USER, BLUE]]}, RCI, "rejected[0]", IDENTICAL, ["chosen[0]"]),
    # Tiered rows.
    ({"prompt": "p", "chosen": [" a", ""], "rejected": [" b"]}, RSE, "chosen[1]", EMPTY, ["empty"]),
    ({"prompt": "p", "chosen": [" a"], "rejected": []}, RSE, "rejected", TOO_FEW, ["one rejected"]),
    ({"prompt": "p", "chosen": [" a"]}, RSE, "rejected", MISSING, ["missing"]),
    ({"prompt": "p", "chosen": [" a"], "rejected": 3}, RSE, "rejected", WRONG_TYPE, ["int", "list"]),
    ({"prompt": "p", "chosen": [" a"], "rejected": [" b"], "scores": [1, 0]}, RSE, "scores", MISMATCH, ["tiered"]),
    (
        {"prompt": "p", "responses": [" a", " b"], "chosen": [" c"], "rejected": [" d"]},
        RSE,
        "responses",
        MISMATCH,
        ["either"],
    ),
    # Rows that do not fit the dataset's format.
    ({"prompt": "p", "chosen": " a", "rejected": " b"}, RSE, "chosen", MISMATCH, ["pair", "do not mix"]),
    ({"chosen": [USER, BLUE], "rejected": [USER, GREEN]}, RCI, "chosen", MISMATCH, ["pair"]),
    ({"chosen_ids": [1, 2], "rejected_ids": [1, 3]}, RTOK, "chosen_ids", MISMATCH, ["pair"]),
    ({"responses": [" a", " b"]}, RSE, "prompt", MISSING, ["missing"]),
    ({"prompt": "p", "responses": [" a", " b"]}, RSI, "prompt", MISMATCH, ["prompt"]),
    ({"prompt": [USER], "responses": [" a", " b"]}, RSE, "prompt", MISMATCH, ["plain text"]),
    ({"response_ids": [[1], [2]]}, RSI, "response_ids", MISMATCH, ["pre-tokenized"]),
    ({"prompt": "p", "responses": [" a", " b"]}, RTOK, "response_ids", MISSING, ["missing"]),
    # Optional columns.
    ({"prompt": "p", "responses": [" a", " b"], "margin": 1.0}, RSE, "margin", BAD_MARGIN, ["margin", "scores"]),
    ({"responses": [[USER, BLUE], [USER, RED]], "tools": {"x": 1}}, RCI, "tools", BAD_TOOLS, ["dict", "list"]),
    (
        {"responses": [[USER, BLUE], [USER, RED]], "chat_template_kwargs": [1]},
        RCI,
        "chat_template_kwargs",
        BAD_KWARGS,
        ["dict"],
    ),
    # Pre-tokenized rankings.
    ({"response_ids": None}, RTOK, "response_ids", NULL, ["None"]),
    ({"response_ids": "1 2"}, RTOK, "response_ids", WRONG_TYPE, ["str"]),
    ({"response_ids": [[1, 2]]}, RTOK, "response_ids", TOO_FEW, ["at least 2"]),
    ({"response_ids": [[1, 2], []]}, RTOK, "response_ids[1]", EMPTY, ["empty"]),
    ({"response_ids": [[1, 2], [1, -3]]}, RTOK, "response_ids[1]", WRONG_TYPE, ["non-negative"]),
    ({"response_ids": [[1, 2], [1, 2.5]]}, RTOK, "response_ids[1]", WRONG_TYPE, ["float"]),
    ({"response_ids": [[1, 2], [1, 2]]}, RTOK, "response_ids[1]", IDENTICAL, ["response_ids[0]"]),
    ({"response_ids": [[1, 2], [1, 3]], "scores": [0, 0]}, RTOK, "scores", NO_PREFERENCE, ["no preference"]),
    ({"response_ids": [[1, 2], [1, 3]], "scores": [0, 1, 2]}, RTOK, "scores", BAD_SCORES, ["3 scores for 2"]),
]


@pytest.mark.parametrize("example, fmt, field, code, words", INVALID)
def test_invalid_rankings(example, fmt, field, code, words):
    with pytest.raises(InvalidRowError) as info:
        validate_ranked_example(example, 17, fmt)
    check_row_error(info.value, field, code, words, max_reason=200)


@pytest.mark.parametrize(
    "example, field",
    [({"prompt": "p", "responses": [" a", " b"]}, "responses"), ({"chosen": ["a", "b"], "rejected": ["c"]}, "chosen")],
)
def test_a_ranked_row_in_a_pair_dataset_is_a_mismatch(example, field):
    with pytest.raises(InvalidRowError) as info:
        validate_example(example, 4, PAIR_SE)
    assert info.value.index == 4 and info.value.field == field and info.value.code == MISMATCH
    assert "ranking" in str(info.value)


# ------------------------------------------------------------------------------------------------ preparation


def test_mixed_pair_and_ranked_rows_name_the_row(tmp_path):
    tokenizer = make_tokenizer("qwen3")
    ranked_first = [{"prompt": "p", "responses": [" a", " b"]}, {"prompt": "p", "chosen": " a", "rejected": " b"}]
    with pytest.raises(InvalidRowError, match=r"train dataset, row 1, field 'chosen': this row is a preference pair"):
        prepare(ranked_first, tokenizer, tmp_path)
    out, stats = prepare(ranked_first, tokenizer, tmp_path, skip_invalid_rows=True)
    assert len(out) == 1 and stats.invalid_skipped == {MISMATCH: 1} and stats.kind == "rankings"
    pair_first = ranked_first[::-1]
    with pytest.raises(InvalidRowError, match=r"row 1, field 'responses': this row is a ranking"):
        prepare(pair_first, tokenizer, tmp_path)
    out, stats = prepare(pair_first, tokenizer, tmp_path, skip_invalid_rows=True)
    assert out.column_names == ["chosen_ids", "rejected_ids"] and stats.kind == "pairs"


def test_pair_datasets_are_unaffected(tmp_path):
    tokenizer = make_tokenizer("llama")
    rows = [
        {**PAIR_ROWS["standard explicit"][0], "margin": 0.5},
        {"prompt": "a", "chosen": " b", "rejected": " c", "margin": 1.0},
    ]
    plain, stats = prepare(rows, tokenizer, tmp_path)
    # Extra `responses`/`scores` columns (metadata in some datasets) do not turn pairs into rankings.
    extra = [{**r, "responses": ["x", "y"], "scores": [1.0, 0.0]} for r in rows]
    out, extra_stats = prepare(extra, tokenizer, tmp_path)
    assert out.column_names == ["chosen_ids", "rejected_ids", "margin"]
    assert out.to_dict() == plain.to_dict()
    assert stats.to_dict() == extra_stats.to_dict()
    assert (stats.kind, stats.comparisons_out) == ("pairs", 2)
    assert stats.summary().startswith("train: 2 rows → 2 pairs; 0 prompts truncated from the left, 0 responses cut")


def test_skip_invalid_rows_counts_and_summary(tmp_path):
    tokenizer = make_tokenizer("bert")
    rows = [
        {"prompt": "the sky is", "responses": [" blue", " green", " red"], "scores": [2.0, 1.0, 0.0]},  # 3
        {"prompt": "the sky is", "responses": [" blue", " green"], "scores": [1.0, 1.0]},  # no preference
        {"prompt": "the sky is", "responses": [" blue", ""], "scores": [1.0, 0.0]},  # empty
        {"prompt": "the sky is", "responses": [" Blue", " blue", " red"], "scores": [2.0, 1.0, 0.0]},  # lowercased
        {"prompt": "the sky is", "responses": [" Blue", " blue", " red"], "scores": [1.0, 1.0, 0.0]},  # fine: tie
        {"prompt": "the sky is", "responses": [" blue", " red"], "scores": [1.0, math.nan]},  # bad score
        {"prompt": "how", "responses": [" a", " b", " c", " d"], "scores": [3.0, 2.0, 2.0, 0.0]},  # 5
    ]
    out, stats = prepare(rows, tokenizer, tmp_path, skip_invalid_rows=True, max_length=64)
    assert stats.invalid_skipped == {NO_PREFERENCE: 1, EMPTY: 1, IDENTICAL: 1, BAD_SCORES: 1}
    assert (stats.rows_in, stats.pairs_out, stats.comparisons_out) == (7, 3, 3 + 2 + 5)
    assert out["scores"] == [[2.0, 1.0, 0.0], [1.0, 1.0, 0.0], [3.0, 2.0, 2.0, 0.0]]
    assert [s["row"] for s in stats.skipped_rows] == [1, 2, 5, 3]  # validation first, then tokenization
    assert stats.skipped_rows[-1]["field"] == "responses[1]"
    assert stats.summary() == (
        "train: 7 rows → 3 rankings (10 comparisons); 0 prompts truncated from the left, 0 rankings with responses "
        "cut, 0 dropped (max_length=64, policy=truncate_prompt); skipped 4 invalid rows (no preference: 1, "
        "empty value: 1, invalid scores: 1, identical chosen and rejected: 1)"
    )
    as_dict = stats.to_dict()
    assert as_dict["kind"] == "rankings" and as_dict["comparisons_out"] == 10 and as_dict["pairs_out"] == 3

    with pytest.raises(InvalidRowError, match=r"train dataset, row 1, field 'scores': every response has the same"):
        prepare(rows, tokenizer, tmp_path)
    with pytest.raises(InvalidRowError, match=r"row 1, field 'responses\[1\]': tokenizes to the same ids as "):
        prepare([rows[0], rows[3]], tokenizer, tmp_path)


def test_out_of_vocabulary_and_chat_template_errors(tmp_path):
    tokenizer = make_tokenizer("llama")
    rows = [
        {"response_ids": [[1, 5], [1, 6]], "scores": [1, 0]},
        {"response_ids": [[1, 5], [1, 10_000]], "scores": [0, 1]},
    ]
    with pytest.raises(InvalidRowError, match=r"row 1, field 'response_ids\[1\]': token id 10000 is outside"):
        prepare(rows, tokenizer, tmp_path)
    _, stats = prepare(rows, tokenizer, tmp_path, skip_invalid_rows=True)
    assert stats.invalid_skipped == {OUT_OF_VOCAB: 1}

    tokenizer.chat_template = (
        "{% for m in messages %}{% if m['content'] == 'boom' %}{{ raise_exception('no boom') }}"
        "{% endif %}{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}"
    )
    boom = [{"role": "assistant", "content": "boom"}]
    rows = [
        {"prompt": [USER], "responses": [[BLUE], [GREEN]]},
        {"prompt": [USER], "chosen": [[BLUE]], "rejected": [[GREEN], boom]},
    ]
    with pytest.raises(InvalidRowError, match=r"row 1, field 'rejected\[1\]': chat template failed.*no boom"):
        prepare(rows, tokenizer, tmp_path)
    _, stats = prepare(rows, tokenizer, tmp_path, skip_invalid_rows=True)
    assert stats.invalid_skipped == {CHAT_TEMPLATE_ERROR: 1}
    tokenizer.chat_template = None
    with pytest.raises(RewardlabError, match="chat_template_path"):
        prepare(rows, tokenizer, tmp_path)


LONG_PROMPT = "the sky is blue . " * 10


def _long_rows():
    return [
        {"prompt": LONG_PROMPT, "responses": ["yes , good", " no", " sure thing"]},  # only the prompt is too long
        {"prompt": "what color ?", "responses": [" good" * 40, " bad", " no"]},  # a response alone is too long
        {"prompt": "the sky is", "responses": [" blue", " green"]},  # fits
    ]


def test_overlength_policies_on_rankings(tmp_path):
    tokenizer = make_tokenizer("llama")
    rows = _long_rows()
    full = [tokenize_ranking(r, tokenizer, tokenizer.eos_token_id)["response_ids"] for r in rows]
    assert max(map(len, full[0])) > 32 and max(map(len, full[1][1:])) < 32 < len(full[1][0])
    out, stats = prepare(rows, tokenizer, tmp_path, max_length=32)
    assert (stats.prompt_truncated, stats.response_truncated, stats.dropped_overlength, stats.pairs_out) == (1, 1, 0, 3)

    got = out[0]["response_ids"]
    assert max(map(len, got)) == 32
    removed = {len(f) - len(g) for f, g in zip(full[0], got, strict=True)}
    assert len(removed) == 1 and removed.pop() > 0  # the same number of prompt tokens left out of every response
    shared = common_prefix_length(*full[0])
    for f, g in zip(full[0], got, strict=True):
        assert g[0] == tokenizer.bos_token_id  # BOS kept first
        assert g[-(len(f) - shared) :] == f[shared:]  # every response whole
    assert common_prefix_length(*got) == shared - (len(full[0][0]) - len(got[0]))  # cut identically in all K

    cut = out[1]["response_ids"]
    assert all(len(ids) <= 32 for ids in cut) and cut[0][-1] == tokenizer.eos_token_id
    assert len(cut[0]) == 32 and cut[0][:-1] != full[1][0][-32:-1]  # the long response lost its end, not its start
    for j in (1, 2):  # the short responses stay whole
        own = full[1][j][common_prefix_length(full[1][0], full[1][j]) :]
        assert cut[j][-len(own) :] == own
    assert out[2]["response_ids"] == full[2]

    dropped, drop_stats = prepare(rows, tokenizer, tmp_path, max_length=32, overlength_policy="drop")
    assert (drop_stats.pairs_out, drop_stats.dropped_overlength) == (1, 2)
    assert dropped["response_ids"] == [full[2]]
    with pytest.raises(InvalidRowError) as info:
        prepare(rows, tokenizer, tmp_path, name="eval", max_length=32, overlength_policy="error")
    assert info.value.index == 0 and "eval dataset, row 0" in str(info.value)
    assert "3 responses of" in str(info.value) and "max_length=32" in str(info.value)


def test_responses_equal_once_cut_are_dropped_for_length(tmp_path):
    tokenizer = make_tokenizer("llama")
    rows = [
        {"prompt": "q", "responses": [" good" * 40 + " yes", " good" * 40 + " no", " bad"], "scores": [2, 1, 0]},
        {"prompt": "q", "responses": [" good" * 40 + " yes", " good" * 40 + " no", " bad"], "scores": [1, 1, 0]},
        {"prompt": "the sky is", "responses": [" blue", " green"], "scores": [1, 0]},
    ]
    # What tells responses 0 and 1 of row 0 apart lies beyond max_length: the row cannot be represented, so it is
    # dropped and counted as dropped for length (the data itself is valid).
    out, stats = prepare(rows, tokenizer, tmp_path, max_length=16)
    assert stats.dropped_overlength == 1 and stats.invalid_skipped == {} and stats.pairs_out == 2
    assert out[0]["response_ids"][0] == out[0]["response_ids"][1]  # equal scores: equal ids are harmless
    assert stats.response_truncated == 1


def test_iterable_dataset_matches_dataset(tmp_path):
    tokenizer = make_tokenizer("llama")
    rows = [
        {**r, "scores": [float(len(r["responses"]) - j) for j in range(len(r["responses"]))], "source": "x"}
        for r in _long_rows()
    ]
    rows.insert(1, {"prompt": "a", "responses": [" b", " b"], "scores": [1.0, 0.0], "source": "x"})
    expected, expected_stats = prepare(rows, tokenizer, tmp_path, max_length=32, skip_invalid_rows=True)
    assert expected_stats.invalid_skipped == {IDENTICAL: 1}
    streamed = Dataset.from_list(rows).to_iterable_dataset()
    out, stats = prepare_preference_dataset(
        streamed, tokenizer, cfg(tmp_path, max_length=32, skip_invalid_rows=True), "train"
    )
    assert isinstance(out, IterableDataset)
    got = list(out)
    assert got == list(expected) and all(set(r) == {"response_ids", "scores"} for r in got)
    assert stats.streaming and stats.kind == "rankings"
    assert {**stats.to_dict(), "streaming": False} == expected_stats.to_dict()
    list(out)  # a second pass restarts the counts
    assert stats.comparisons_out == expected_stats.comparisons_out == 3 + 3 + 1

    bad = Dataset.from_list([rows[0], {"prompt": "a", "responses": [" b", " c"], "scores": [1.0, 1.0], "source": ""}])
    out, _ = prepare_preference_dataset(bad.to_iterable_dataset(), tokenizer, cfg(tmp_path), "eval")
    with pytest.raises(InvalidRowError, match=r"eval dataset, row 1, field 'scores'"):
        list(out)


def test_num_proc_gives_the_same_result(tmp_path):
    tokenizer = make_tokenizer("llama")
    rows = (_long_rows() + [{"prompt": "x", "chosen": [" a", " b"], "rejected": [" c"]}]) * 2
    rows = [{"prompt": r["prompt"], "responses": r.get("responses") or r["chosen"] + r["rejected"]} for r in rows]
    single, single_stats = prepare(rows, tokenizer, tmp_path, max_length=32)
    multi, multi_stats = prepare(rows, tokenizer, tmp_path, max_length=32, dataset_num_proc=2)
    assert multi.to_dict() == single.to_dict()
    assert multi_stats.to_dict() == single_stats.to_dict()
    assert (multi_stats.prompt_truncated, multi_stats.response_truncated) == (2, 2)
    with pytest.raises(InvalidRowError, match="row 2"):
        prepare(rows[2:], tokenizer, tmp_path, max_length=32, overlength_policy="error", dataset_num_proc=2)


@pytest.mark.parametrize(
    "scores, expected", [([1.0, 0.0], 1), ([2.0, 1.0, 0.0], 3), ([1, 1, 1, 0, 0, 0], 9), ([1, 1, 0, 2], 5), ([3, 3], 0)]
)
def test_count_comparisons(scores, expected):
    assert count_comparisons(scores) == expected
