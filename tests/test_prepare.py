"""Dataset preparation for the trainer (rewardlab.data.prepare): formats, policies, counts, streaming."""

import gzip
import json
from itertools import islice
from pathlib import Path

import pytest
from datasets import Dataset, DatasetDict, IterableDataset
from tiny import make_tokenizer

import rewardlab
from rewardlab.config import RewardConfig
from rewardlab.data.positions import common_prefix_length
from rewardlab.data.prepare import PreparationStats, prepare_preference_dataset
from rewardlab.data.tokenize import CHAT_TEMPLATE_ERROR, tokenize_pair
from rewardlab.data.validate import BAD_MARGIN, EMPTY, IDENTICAL
from rewardlab.errors import InvalidRowError, RewardlabError

HH_HARMLESS = Path(rewardlab.__file__).parent / "demo_data" / "hh-rlhf-harmless-base-test.jsonl.gz"

USER = {"role": "user", "content": "what color is the sky ?"}
BLUE = {"role": "assistant", "content": "the sky is blue ."}
GREEN = {"role": "assistant", "content": "the sky is green ."}
RED = {"role": "assistant", "content": "red , sorry"}

FORMAT_ROWS = {
    "standard implicit": [
        {"chosen": "the sky is blue", "rejected": "the sky is green"},
        {"chosen": "how can I help ? sure", "rejected": "how can I help ? no"},
    ],
    "standard explicit": [
        {"prompt": "the sky is", "chosen": " blue", "rejected": " green"},
        {"prompt": "how can I help ?", "chosen": " sure", "rejected": " no"},
    ],
    "conversational implicit": [
        {"chosen": [USER, BLUE], "rejected": [USER, GREEN]},
        {"chosen": [USER, GREEN], "rejected": [USER, RED]},
    ],
    "conversational explicit": [
        {"prompt": [USER], "chosen": [BLUE], "rejected": [GREEN]},
        {"prompt": [USER], "chosen": [GREEN], "rejected": [RED]},
    ],
    "pre-tokenized": [
        {"chosen_ids": [5, 6, 7], "rejected_ids": [5, 6, 8]},
        {"chosen_ids": [9, 10], "rejected_ids": [9, 11, 12]},
    ],
}


def cfg(**kwargs) -> RewardConfig:
    defaults = dict(output_dir="/tmp/rewardlab-test-prepare", report_to=[], max_length=1024, use_cpu=True)
    return RewardConfig(**{**defaults, **kwargs})


def prepare(rows_or_dataset, tokenizer, name="train", **kwargs):
    ds = rows_or_dataset if not isinstance(rows_or_dataset, list) else Dataset.from_list(rows_or_dataset)
    return prepare_preference_dataset(ds, tokenizer, cfg(**kwargs), name)


def streaming(rows) -> IterableDataset:
    return Dataset.from_list(rows).to_iterable_dataset()


@pytest.mark.parametrize("fmt", list(FORMAT_ROWS))
def test_every_format_on_every_tokenizer(fmt, tokenizer):
    rows = [{**row, "source": "unit", "id": i} for i, row in enumerate(FORMAT_ROWS[fmt])]
    out, stats = prepare(rows, tokenizer)
    assert out.column_names == ["chosen_ids", "rejected_ids"]  # text and extra columns removed
    assert stats.rows_in == stats.pairs_out == 2
    for row, got in zip(rows, out, strict=True):
        assert got == tokenize_pair(row, tokenizer, tokenizer.eos_token_id)
        assert got["chosen_ids"] != got["rejected_ids"]


def test_margin_is_carried_as_float():
    tokenizer = make_tokenizer("qwen3")
    rows = [{**row, "margin": m} for row, m in zip(FORMAT_ROWS["standard explicit"], (1, 2), strict=True)]
    out, _ = prepare(rows, tokenizer)
    assert out.column_names == ["chosen_ids", "rejected_ids", "margin"]
    assert out.features["margin"].dtype == "float64"
    assert out["margin"] == [1.0, 2.0] and all(isinstance(m, float) for m in out["margin"])


def test_legacy_tokenized_columns_are_accepted():
    tokenizer = make_tokenizer("llama")
    rows = [{"chosen_input_ids": [1, 5, 6], "rejected_input_ids": [1, 5, 7]}]
    out, _ = prepare(rows, tokenizer)
    assert out.column_names == ["chosen_ids", "rejected_ids"]
    assert out[0] == {"chosen_ids": [1, 5, 6], "rejected_ids": [1, 5, 7]}


def test_preparing_twice_changes_nothing(tokenizer):
    rows = [{"prompt": "the sky is blue . " * 12, "chosen": "yes", "rejected": "no", "margin": 0.5}] * 3
    once, first = prepare(rows, tokenizer, max_length=24)
    twice, second = prepare(once, tokenizer, max_length=24)
    assert first.prompt_truncated == 3
    assert twice.to_dict() == once.to_dict()
    assert second.prompt_truncated == 0 and second.pairs_out == 3


def _crafted_rows():
    """Row 0/3 fit in 32 tokens, 1/4 fit only without most of their long prompt, 2's chosen response alone is too
    long. Lengths are checked against the tokenizer in the test."""
    long_prompt = "the sky is blue . " * 10
    return [
        {"prompt": "the sky is", "chosen": " blue", "rejected": " green"},
        {"prompt": long_prompt, "chosen": "yes , good", "rejected": "no"},
        {"prompt": "what color ?", "chosen": " good" * 40, "rejected": " bad"},
        {"prompt": "the city is", "chosen": " paris", "rejected": " rome"},
        {"prompt": long_prompt + "today", "chosen": "sunny", "rejected": "rainy"},
    ]


def test_overlength_policy_counts_on_crafted_dataset():
    tokenizer = make_tokenizer("llama")
    rows = _crafted_rows()
    lengths = [len(tokenize_pair(r, tokenizer, tokenizer.eos_token_id)["chosen_ids"]) for r in rows]
    assert lengths[0] <= 32 and lengths[3] <= 32 and lengths[1] > 32 and lengths[4] > 32 and lengths[2] > 42

    out, stats = prepare(rows, tokenizer, max_length=32)
    assert (stats.rows_in, stats.pairs_out) == (5, 5)
    assert (stats.prompt_truncated, stats.response_truncated, stats.dropped_overlength) == (2, 1, 0)
    assert all(len(r["chosen_ids"]) <= 32 and len(r["rejected_ids"]) <= 32 for r in out)
    bos = tokenizer.bos_token_id
    for i in (1, 4):  # the responses survive whole, BOS stays first
        original = tokenize_pair(rows[i], tokenizer, tokenizer.eos_token_id)
        got = out[i]
        assert got["chosen_ids"][0] == bos and got["rejected_ids"][0] == bos
        suffix = len(original["chosen_ids"]) - common_prefix_length(original["chosen_ids"], original["rejected_ids"])
        assert got["chosen_ids"][-suffix:] == original["chosen_ids"][-suffix:]
    assert out[2]["chosen_ids"][-1] == tokenizer.eos_token_id  # cut response keeps its eos
    assert out[0] == tokenize_pair(rows[0], tokenizer, tokenizer.eos_token_id)  # untouched

    dropped, drop_stats = prepare(rows, tokenizer, max_length=32, overlength_policy="drop")
    assert (drop_stats.pairs_out, drop_stats.dropped_overlength, drop_stats.prompt_truncated) == (2, 3, 0)
    assert dropped["chosen_ids"] == [out[0]["chosen_ids"], out[3]["chosen_ids"]]
    assert "3 dropped" in drop_stats.summary()

    with pytest.raises(InvalidRowError) as info:
        prepare(rows, tokenizer, name="eval", max_length=32, overlength_policy="error")
    assert info.value.index == 1 and info.value.dataset == "eval"
    assert "eval dataset, row 1" in str(info.value) and "max_length=32" in str(info.value)


def test_overlength_error_is_not_skipped_and_names_the_original_row():
    tokenizer = make_tokenizer("llama")
    rows = [{"prompt": "p", "chosen": "", "rejected": "b"}] + _crafted_rows()  # row 0 invalid, skipped
    with pytest.raises(InvalidRowError) as info:
        prepare(rows, tokenizer, max_length=32, overlength_policy="error", skip_invalid_rows=True)
    assert info.value.index == 2  # crafted row 1, after the skipped row 0


def test_skip_invalid_rows_counts_and_summary():
    tokenizer = make_tokenizer("bert")
    rows = [
        {"chosen": "the sky is blue", "rejected": "the sky is green", "margin": 1.0},
        {"chosen": "same", "rejected": "same", "margin": 1.0},
        {"chosen": "", "rejected": "no", "margin": 1.0},
        {"chosen": "Yes", "rejected": "yes", "margin": 1.0},  # identical once BERT lowercases
        {"chosen": "good", "rejected": "bad", "margin": float("inf")},
        {"chosen": "sure", "rejected": "no", "margin": 2.0},
    ]
    out, stats = prepare(rows, tokenizer, skip_invalid_rows=True, max_length=64)
    assert stats.invalid_skipped == {IDENTICAL: 2, EMPTY: 1, BAD_MARGIN: 1}
    assert (stats.rows_in, stats.pairs_out) == (6, 2)
    assert out["margin"] == [1.0, 2.0]
    assert stats.summary() == (
        "train: 6 rows → 2 pairs; 0 prompts truncated from the left, 0 responses cut, 0 dropped "
        "(max_length=64, policy=truncate_prompt); skipped 4 invalid rows "
        "(identical chosen and rejected: 2, empty value: 1, invalid margin: 1)"
    )
    as_dict = stats.to_dict()
    assert as_dict["invalid_skipped"] == stats.invalid_skipped and as_dict["pairs_out"] == 2

    with pytest.raises(InvalidRowError, match=r"train dataset, row 1, field 'rejected': identical"):
        prepare(rows, tokenizer)
    with pytest.raises(InvalidRowError, match=r"row 3, field 'rejected'.*same ids"):
        prepare([rows[0], rows[5], rows[0], rows[3]], tokenizer)


def test_chat_template_failure_is_a_row_error():
    tokenizer = make_tokenizer("qwen3")
    tokenizer.chat_template = (
        "{% for m in messages %}{% if m['content'] == 'boom' %}{{ raise_exception('cannot render boom') }}"
        "{% endif %}{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}"
    )
    rows = [
        {"chosen": [USER, BLUE], "rejected": [USER, GREEN]},
        {"chosen": [USER, {"role": "assistant", "content": "boom"}], "rejected": [USER, GREEN]},
    ]
    with pytest.raises(InvalidRowError) as info:
        prepare(rows, tokenizer)
    assert info.value.index == 1 and info.value.field == "chosen"
    assert "cannot render boom" in str(info.value)
    out, stats = prepare(rows, tokenizer, skip_invalid_rows=True)
    assert len(out) == 1 and stats.invalid_skipped == {CHAT_TEMPLATE_ERROR: 1}


def test_conversational_without_chat_template():
    tokenizer = make_tokenizer("bert")
    tokenizer.chat_template = None
    with pytest.raises(RewardlabError, match="chat_template_path"):
        prepare(FORMAT_ROWS["conversational implicit"], tokenizer)


def test_eos_token_option():
    qwen = make_tokenizer("qwen3")
    out, _ = prepare(FORMAT_ROWS["standard implicit"], qwen, eos_token="<|endoftext|>")
    assert out[0]["chosen_ids"][-1] == qwen.convert_tokens_to_ids("<|endoftext|>")
    with pytest.raises(RewardlabError, match="not in the tokenizer's vocabulary"):
        prepare(FORMAT_ROWS["standard implicit"], qwen, eos_token="<eos_that_does_not_exist>")
    bert = make_tokenizer("bert")
    out, _ = prepare(FORMAT_ROWS["standard implicit"], bert, eos_token="[SEP]")
    assert out[0]["chosen_ids"] == bert("the sky is blue")["input_ids"]  # one [SEP], not two


def test_out_of_vocabulary_token_ids():
    tokenizer = make_tokenizer("llama")
    rows = [{"chosen_ids": [1, 5, 10_000], "rejected_ids": [1, 6]}]
    with pytest.raises(InvalidRowError, match="outside the tokenizer's vocabulary"):
        prepare(rows, tokenizer)


def test_unusable_inputs():
    tokenizer = make_tokenizer("llama")
    with pytest.raises(RewardlabError, match="empty"):
        prepare(Dataset.from_dict({"chosen": [], "rejected": []}), tokenizer)
    with pytest.raises(RewardlabError, match="pass one split"):
        prepare(DatasetDict({"train": Dataset.from_list(FORMAT_ROWS["standard implicit"])}), tokenizer)
    with pytest.raises(RewardlabError, match="no usable pairs"):
        prepare([{"chosen": "a", "rejected": "a"}], tokenizer, skip_invalid_rows=True)
    with pytest.raises(RewardlabError, match="datasets.Dataset"):
        prepare_preference_dataset(FORMAT_ROWS["standard implicit"], tokenizer, cfg(), "train")


def test_num_proc_reports_errors_from_workers():
    tokenizer = make_tokenizer("llama")
    rows = _crafted_rows() * 2
    out, stats = prepare(rows, tokenizer, max_length=32, dataset_num_proc=2)
    assert (stats.prompt_truncated, stats.response_truncated) == (4, 2)
    single, _ = prepare(rows, tokenizer, max_length=32)
    assert out.to_dict() == single.to_dict()
    with pytest.raises(InvalidRowError, match="row 1"):
        prepare(rows, tokenizer, max_length=32, overlength_policy="error", dataset_num_proc=2)


@pytest.mark.parametrize("arch", ["llama", "bert"])
def test_iterable_dataset_matches_dataset(arch):
    tokenizer = make_tokenizer(arch)
    rows = [{**row, "margin": float(i), "source": "x"} for i, row in enumerate(_crafted_rows())]
    rows.insert(2, {"prompt": "a", "chosen": " b", "rejected": " b", "margin": 9.0, "source": "x"})
    expected, expected_stats = prepare(rows, tokenizer, max_length=32, skip_invalid_rows=True)

    out, stats = prepare_preference_dataset(
        streaming(rows), tokenizer, cfg(max_length=32, skip_invalid_rows=True), "train"
    )
    assert isinstance(out, IterableDataset)
    got = list(out)
    assert got == list(expected)
    assert all(set(r) == {"chosen_ids", "rejected_ids", "margin"} for r in got)
    # Counted on the fly; a second pass restarts the counts instead of doubling them.
    assert stats.streaming
    for _ in range(2):
        list(out)
        assert {**stats.to_dict(), "streaming": False} == expected_stats.to_dict()
    next(iter(out))  # a partial pass (e.g. a peek) counts only what it read
    assert stats.rows_in == 1


def test_iterable_dataset_errors_name_the_row():
    tokenizer = make_tokenizer("qwen3")
    rows = [{"chosen": "a b", "rejected": "a c"}, {"chosen": "x", "rejected": "y"}, {"chosen": "z", "rejected": None}]
    out, _ = prepare_preference_dataset(streaming(rows), tokenizer, cfg(), "eval")
    head = list(islice(iter(out), 2))
    assert len(head) == 2
    with pytest.raises(InvalidRowError, match=r"eval dataset, row 2, field 'rejected'"):
        list(out)
    long_rows = [{"chosen": "the sky is blue . " * 20, "rejected": "no"}]
    out, _ = prepare_preference_dataset(
        streaming(long_rows), tokenizer, cfg(max_length=8, overlength_policy="error"), "train"
    )
    with pytest.raises(InvalidRowError, match="row 0.*max_length=8"):
        list(out)


def test_iterable_dataset_conversational_with_tools():
    tokenizer = make_tokenizer("qwen3")
    tools = json.dumps([{"type": "function", "function": {"name": "weather"}}])
    rows = [{"prompt": [USER], "chosen": [BLUE], "rejected": [GREEN], "tools": tools}]
    expected, _ = prepare(rows, tokenizer)
    out, _ = prepare_preference_dataset(streaming(rows), tokenizer, cfg(), "train")
    assert list(out) == list(expected)
    assert "weather" in tokenizer.decode(list(out)[0]["chosen_ids"])


def test_stats_summary_wording():
    stats = PreparationStats(
        "train",
        rows_in=2312,
        pairs_out=2250,
        prompt_truncated=40,
        response_truncated=1,
        dropped_overlength=0,
        max_length=512,
        policy="truncate_prompt",
    )
    assert stats.summary() == (
        "train: 2312 rows → 2250 pairs; 40 prompts truncated from the left, 1 response cut, 0 dropped "
        "(max_length=512, policy=truncate_prompt)"
    )


def test_hh_rlhf_rows_with_tiny_llama():
    tokenizer = make_tokenizer("llama")
    with gzip.open(HH_HARMLESS, "rt") as f:
        rows = [json.loads(line) for line in islice(f, 300)]
    max_length = 64
    out, stats = prepare(rows, tokenizer, max_length=max_length, skip_invalid_rows=True)
    assert stats.invalid_skipped == {} and stats.pairs_out == len(rows) == len(out)
    assert stats.prompt_truncated > 50 and stats.dropped_overlength == 0
    checked = 0
    for row, got in zip(rows, out, strict=True):
        c, r = got["chosen_ids"], got["rejected_ids"]
        assert len(c) <= max_length and len(r) <= max_length
        assert c != r
        full = tokenize_pair(row, tokenizer, tokenizer.eos_token_id)
        prefix = common_prefix_length(full["chosen_ids"], full["rejected_ids"])
        for key in ("chosen_ids", "rejected_ids"):
            response = full[key][prefix:]
            if 1 + len(response) <= max_length:  # the response fits next to BOS: its end must be untouched
                n = min(10, len(response))
                assert got[key][-n:] == response[-n:]
                assert got[key][-len(response) :] == response
                checked += 1
    assert checked > 150  # about 250 of the 600 responses fit in 64 tokens with this tiny vocabulary


def test_prepared_file_data_stays_on_disk(tmp_path):
    """Tokenized pairs are memory-mapped Arrow, not Python objects: memory follows the batch, not the data set."""
    import json

    from datasets.table import MemoryMappedTable
    from tiny import make_tokenizer

    from rewardlab.config import RewardConfig
    from rewardlab.data.loading import load_preference_data
    from rewardlab.data.prepare import prepare_preference_dataset

    rows = [{"prompt": f"q{i}", "chosen": " blue", "rejected": " green"} for i in range(300)]
    (tmp_path / "pairs.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    data = load_preference_data(str(tmp_path / "pairs.jsonl"), split="train")
    args = RewardConfig(str(tmp_path / "out"), use_cpu=True, report_to=[])
    prepared, stats = prepare_preference_dataset(data, make_tokenizer("qwen3"), args, "train")
    assert stats.pairs_out == 300
    assert isinstance(prepared.data, MemoryMappedTable) and prepared.cache_files
