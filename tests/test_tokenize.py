"""Tokenization of preference pairs (rewardlab.data.tokenize): TRL-compatible ids on three tokenizer shapes."""

import json

import pytest
from tiny import make_tokenizer

from rewardlab.data.tokenize import leading_special_count, tokenize_pair
from rewardlab.errors import InvalidRowError, RewardlabError

USER = {"role": "user", "content": "what color is the sky ?"}
BLUE = {"role": "assistant", "content": "the sky is blue ."}
GREEN = {"role": "assistant", "content": "the sky is green ."}
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "weather",
            "description": "the weather in a city",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
        },
    }
]


def chat_ids(tokenizer, messages, **kwargs):
    return list(tokenizer.apply_chat_template(messages, tokenize=True, return_dict=True, **kwargs)["input_ids"])


def test_standard_implicit_matches_tokenizer_plus_eos(tokenizer):
    example = {"chosen": "the sky is blue", "rejected": "the sky is green"}
    out = tokenize_pair(example, tokenizer, tokenizer.eos_token_id)
    for key, text in (("chosen_ids", example["chosen"]), ("rejected_ids", example["rejected"])):
        plain = tokenizer(text)["input_ids"]
        if tokenizer.eos_token_id is None:  # BERT: nothing appended, [SEP] closes the sequence once
            assert out[key] == plain and plain[-1] == tokenizer.sep_token_id
        else:
            assert out[key] == plain + [tokenizer.eos_token_id]


@pytest.mark.parametrize("arch", ["llama", "qwen3"])
@pytest.mark.parametrize(
    "text", ["the sky is blue", "how can I help ? sure , here is a list", "yes", "the sky is blue</s>"]
)
def test_token_level_eos_equals_trl_text_eos(arch, text):
    """TRL appends the eos *text* before tokenizing; appending the id gives the same ids on BPE tokenizers."""
    tokenizer = make_tokenizer(arch)
    out = tokenize_pair({"chosen": text, "rejected": text + " no"}, tokenizer, tokenizer.eos_token_id)
    eos = tokenizer.eos_token
    trl_text = text if text.endswith(eos) else text + eos
    assert out["chosen_ids"] == tokenizer(trl_text)["input_ids"]
    assert out["chosen_ids"].count(tokenizer.eos_token_id) == 1


def test_bert_sep_as_eos_is_not_doubled():
    tokenizer = make_tokenizer("bert")
    out = tokenize_pair({"chosen": "the sky is blue", "rejected": "no"}, tokenizer, tokenizer.sep_token_id)
    assert out["chosen_ids"] == tokenizer("the sky is blue")["input_ids"]
    assert out["chosen_ids"][-2] != tokenizer.sep_token_id


def test_no_eos_when_eos_id_is_none(tokenizer):
    out = tokenize_pair({"chosen": "the sky", "rejected": "the city"}, tokenizer, None)
    assert out["chosen_ids"] == tokenizer("the sky")["input_ids"]


def test_standard_explicit_prepends_prompt(tokenizer):
    eos = tokenizer.eos_token_id
    explicit = tokenize_pair({"prompt": "the sky is", "chosen": " blue", "rejected": " green"}, tokenizer, eos)
    implicit = tokenize_pair({"chosen": "the sky is blue", "rejected": "the sky is green"}, tokenizer, eos)
    assert explicit == implicit


def test_prompt_none_is_no_prompt(tokenizer):
    implicit = {"chosen": "the sky is blue", "rejected": "the sky is green"}
    assert tokenize_pair({**implicit, "prompt": None}, tokenizer, None) == tokenize_pair(implicit, tokenizer, None)


def test_conversational_implicit_uses_chat_template(tokenizer):
    out = tokenize_pair({"chosen": [USER, BLUE], "rejected": [USER, GREEN]}, tokenizer, tokenizer.eos_token_id)
    assert out["chosen_ids"] == chat_ids(tokenizer, [USER, BLUE])
    assert out["rejected_ids"] == chat_ids(tokenizer, [USER, GREEN])
    assert out["chosen_ids"] != out["rejected_ids"]


def test_conversational_explicit_concatenates_messages(tokenizer):
    explicit = tokenize_pair({"prompt": [USER], "chosen": [BLUE], "rejected": [GREEN]}, tokenizer, 0)
    implicit = tokenize_pair({"chosen": [USER, BLUE], "rejected": [USER, GREEN]}, tokenizer, 0)
    assert explicit == implicit


def test_tools_reach_the_template(tokenizer):
    base = {"prompt": [USER], "chosen": [BLUE], "rejected": [GREEN]}
    without = tokenize_pair(base, tokenizer, None)
    with_list = tokenize_pair({**base, "tools": TOOLS}, tokenizer, None)
    with_json = tokenize_pair({**base, "tools": json.dumps(TOOLS)}, tokenizer, None)
    assert with_list["chosen_ids"] != without["chosen_ids"]
    assert len(with_list["chosen_ids"]) > len(without["chosen_ids"])
    assert with_json == with_list
    assert with_list["chosen_ids"] == chat_ids(tokenizer, [USER, BLUE], tools=TOOLS)


@pytest.mark.parametrize("arch", ["llama", "bert"])  # the templates that know `enable_thinking`
def test_chat_template_kwargs_reach_the_template(arch):
    tokenizer = make_tokenizer(arch)
    base = {"chosen": [USER, BLUE], "rejected": [USER, GREEN]}
    default = tokenize_pair(base, tokenizer, None)
    no_think = tokenize_pair({**base, "chat_template_kwargs": {"enable_thinking": False}}, tokenizer, None)
    assert no_think["chosen_ids"] != default["chosen_ids"]
    assert no_think["chosen_ids"] == chat_ids(tokenizer, [USER, BLUE], enable_thinking=False)


def test_arrow_null_keys_do_not_change_the_rendering(tokenizer):
    """Arrow gives every row every struct key, None where absent; the template must see what the user wrote."""
    base = {"chosen": [USER, BLUE], "rejected": [USER, GREEN]}
    plain = tokenize_pair(base, tokenizer, None)
    padded = {
        "chosen": [{**USER, "tool_calls": None}, {**BLUE, "tool_calls": None}],
        "rejected": [{**USER, "tool_calls": None}, {**GREEN, "tool_calls": None}],
        "chat_template_kwargs": {"enable_thinking": None},
        "tools": None,
    }
    assert tokenize_pair(padded, tokenizer, None) == plain


def test_tool_calls_and_tool_messages(tokenizer):
    call = {"role": "assistant", "content": None, "tool_calls": [{"function": {"name": "weather", "arguments": {}}}]}
    result = {"role": "tool", "content": "sunny"}
    example = {
        "prompt": [USER],
        "chosen": [call, result, {"role": "assistant", "content": "it is sunny"}],
        "rejected": [{"role": "assistant", "content": "I do not know"}],
        "tools": TOOLS,
    }
    out = tokenize_pair(example, tokenizer, None)
    assert out["chosen_ids"] == chat_ids(tokenizer, [USER, *example["chosen"]], tools=TOOLS)
    assert "weather" in tokenizer.decode(out["chosen_ids"])


def test_pretokenized_rows_pass_through(tokenizer):
    assert tokenize_pair({"chosen_ids": [1, 2, 3], "rejected_ids": [1, 4]}, tokenizer, 2) == {
        "chosen_ids": [1, 2, 3],
        "rejected_ids": [1, 4],
    }
    legacy = tokenize_pair({"chosen_input_ids": [5, 6], "rejected_input_ids": [5, 7], "chosen": "x"}, tokenizer, 2)
    assert legacy == {"chosen_ids": [5, 6], "rejected_ids": [5, 7]}


def test_failing_chat_template_becomes_rewardlab_error():
    tokenizer = make_tokenizer("qwen3")
    tokenizer.chat_template = (
        "{% for m in messages %}{% if m['role'] == 'tool' %}{{ raise_exception('tool messages are not supported') }}"
        "{% endif %}{{ m['content'] }}{% endfor %}"
    )
    example = {"chosen": [USER, {"role": "tool", "content": "x"}], "rejected": [USER, GREEN]}
    with pytest.raises(InvalidRowError) as info:
        tokenize_pair(example, tokenizer, None)
    assert isinstance(info.value, RewardlabError)
    assert info.value.field == "chosen"
    assert "chat template failed" in str(info.value) and "tool messages are not supported" in str(info.value)


def test_broken_template_syntax_becomes_rewardlab_error():
    tokenizer = make_tokenizer("llama")
    tokenizer.chat_template = "{% for m in messages %}{{ m['content'] }"
    with pytest.raises(RewardlabError, match="chat template failed"):
        tokenize_pair({"chosen": [USER, BLUE], "rejected": [USER, GREEN]}, tokenizer, None)


def test_missing_chat_template_says_how_to_set_one():
    tokenizer = make_tokenizer("bert")
    tokenizer.chat_template = None
    with pytest.raises(RewardlabError, match="chat_template_path") as info:
        tokenize_pair({"chosen": [USER, BLUE], "rejected": [USER, GREEN]}, tokenizer, None)
    assert not isinstance(info.value, InvalidRowError)  # a setup problem, not a row problem
    # Plain text still works without a template.
    assert tokenize_pair({"chosen": "a", "rejected": "b"}, tokenizer, None)["chosen_ids"]


@pytest.mark.parametrize("arch, expected", [("llama", 1), ("qwen3", 0), ("bert", 1)])
def test_leading_special_count(arch, expected):
    tokenizer = make_tokenizer(arch)
    assert leading_special_count(tokenizer("the sky is blue")["input_ids"], tokenizer) == expected
    assert leading_special_count([], tokenizer) == 0


def test_leading_special_count_counts_repeats_and_stops_at_text():
    tokenizer = make_tokenizer("llama")
    bos = tokenizer.bos_token_id
    assert leading_special_count([bos, bos, 50, bos], tokenizer) == 2
    assert leading_special_count([50, bos], tokenizer) == 0
    # The chat template of the tiny Llama starts with BOS too.
    assert leading_special_count(chat_ids(tokenizer, [USER, BLUE]), tokenizer) == 1
