import gzip
import itertools
import json
import os
from collections import Counter
from pathlib import Path

import pytest

from rewardlab.data.apply_mapping import apply_mapping, get_path, rm_bench_difficulty, split_hh_dialogue, split_hh_pair
from rewardlab.data.formats import detect_dataset_format
from rewardlab.data.mapping import PRESETS, LabelMapping, describe_mapping, get_preset, parse_mapping
from rewardlab.data.validate import validate_example
from rewardlab.errors import InvalidRowError, RewardlabError


def _data_dir() -> Path | None:
    candidates = [os.environ.get("REWARDLAB_EVAL_DATA"), Path(__file__).resolve().parents[1] / "shared" / "data"]
    candidates.append("/work/shared/data")
    for candidate in candidates:
        if candidate and (Path(candidate) / "PROVENANCE.md").is_file():
            return Path(candidate)
    return None


DATA = _data_dir()
needs_data = pytest.mark.skipif(
    DATA is None,
    reason="the real evaluation sets (shared/data with PROVENANCE.md) are not on this machine; "
    "set REWARDLAB_EVAL_DATA to their directory to run these tests",
)


def read_rows(relative: str, limit: int | None = 300) -> list[dict]:
    with gzip.open(DATA / relative, "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in itertools.islice(f, limit)]


def assert_trainer_accepts(rows: list[dict]) -> None:
    """The rows pass the trainer's own validation, so they train and score without user code."""
    trainer_columns = ("prompt", "chosen", "rejected", "margin")
    fmt = detect_dataset_format(rows)
    for i, row in enumerate(rows):
        validate_example({k: v for k, v in row.items() if k in trainer_columns}, i, fmt)


def assert_every_row_accounted_for(stats) -> None:
    assert stats.rows_in == stats.rows_used + stats.rows_skipped
    assert stats.to_dict()["rows_skipped"] == stats.rows_skipped


# ---------------------------------------------------------------------------------------------------------------
# Paths
# ---------------------------------------------------------------------------------------------------------------


def test_dotted_paths_reach_nested_values():
    row = {"chosen": {"answer": "yes"}, "conv": [{"content": "first"}, {"content": "last"}], "a.b": 1}
    assert get_path(row, "chosen.answer") == "yes"
    assert get_path(row, "conv.-1.content") == "last" and get_path(row, "conv.0.content") == "first"
    assert get_path(row, "a.b") == 1  # a key with a dot is found as is
    with pytest.raises(KeyError, match="no key 'answr' in 'chosen'"):
        get_path(row, "chosen.answr")
    with pytest.raises(KeyError, match="'conv' has 2 items, no item 5"):
        get_path(row, "conv.5.content")
    with pytest.raises(KeyError, match="'x' is null"):
        get_path({"x": None}, "x.y")


# ---------------------------------------------------------------------------------------------------------------
# Layouts
# ---------------------------------------------------------------------------------------------------------------


def test_pairs_layout_with_nested_fields_category_margin_and_kept_ids():
    mapping = LabelMapping(
        layout="pairs",
        prompt="q",
        chosen="good.text",
        rejected="bad.text",
        margin="gap",
        category="meta.kind",
        keep=("id", "absent"),
    )
    rows = [
        {"q": "2+2?", "good": {"text": "4"}, "bad": {"text": "5"}, "gap": 2, "meta": {"kind": "math"}, "id": 7},
        {"q": "hi", "good": {"text": "hello"}, "bad": {"text": "go away"}, "gap": "0.5", "meta": {"kind": 3}},
    ]
    out, stats = apply_mapping(rows, mapping)
    assert out == [
        {
            "prompt": "2+2?",
            "chosen": "4",
            "rejected": "5",
            "margin": 2.0,
            "category": "math",
            "id": 7,
            "absent": None,
            "row_index": 0,
        },
        {
            "prompt": "hi",
            "chosen": "hello",
            "rejected": "go away",
            "margin": 0.5,
            "category": "3",
            "id": None,
            "absent": None,
            "row_index": 1,
        },
    ]
    assert (stats.rows_in, stats.rows_used, stats.pairs_out) == (2, 2, 2)


def test_pairs_layout_defaults_to_chosen_and_rejected_with_an_implicit_prompt():
    out, _ = apply_mapping([{"chosen": "a", "rejected": "b", "prompt": "ignored"}], LabelMapping())
    assert out == [{"chosen": "a", "rejected": "b", "row_index": 0}]


AB = LabelMapping(layout="ab", prompt="p", response_a="x", response_b="y", label="winner")


@pytest.mark.parametrize(
    ("label", "side"),
    [
        (1, "a"),
        (2, "b"),
        ("1", "a"),
        ("2", "b"),
        (1.0, "a"),
        ("2.0", "b"),
        ("A", "a"),
        ("B", "b"),
        ("a", "a"),
        ("b", "b"),
        ("model_a", "a"),
        ("Model_B", "b"),
        (" b ", "b"),
    ],
)
def test_ab_labels_in_every_common_spelling(label, side):
    out, stats = apply_mapping([{"p": "q", "x": "first", "y": "second", "winner": label}], AB)
    chosen, rejected = ("first", "second") if side == "a" else ("second", "first")
    assert out == [{"prompt": "q", "chosen": chosen, "rejected": rejected, "chosen_side": side, "row_index": 0}]
    assert stats.pairs_out == 1


def test_ab_ties_and_unrecognised_labels_are_skipped_and_counted():
    labels = ["tie", "Tie (bothbad)", "draw", "3", 0, True, 1.5, "c", "c", 1]
    rows = [{"p": "q", "x": "first", "y": "second", "winner": w} for w in labels]
    out, stats = apply_mapping(rows, AB)
    assert [r["row_index"] for r in out] == [9]
    assert (stats.ties_skipped, stats.unrecognised_skipped, stats.pairs_out) == (3, 6, 1)
    assert stats.unrecognised_labels == {"'3'": 1, "0": 1, "True": 1, "1.5": 1, "'c'": 2}
    assert_every_row_accounted_for(stats)
    assert "3 ties" in stats.summary() and "6 unrecognised labels" in stats.summary()


def test_ab_custom_label_values():
    mapping = LabelMapping(
        layout="ab", response_a="x", response_b="y", label="w", a_values=("left",), b_values=("right",), tie_values=()
    )
    rows = [{"x": "1", "y": "2", "w": "LEFT"}, {"x": "1", "y": "2", "w": "right"}, {"x": "1", "y": "2", "w": "tie"}]
    out, stats = apply_mapping(rows, mapping)
    assert [r["chosen_side"] for r in out] == ["a", "b"] and stats.unrecognised_skipped == 1


def test_ab_numeric_preference_with_a_threshold():
    mapping = LabelMapping(layout="ab", response_a="o1", response_b="o2", label="pref", threshold=1.5)
    prefs = [1.0, 1.2, 1.5, 1.8, 2.0, "1.7", "tie", "x", float("nan")]
    rows = [{"o1": "one", "o2": "two", "pref": v} for v in prefs]
    out, stats = apply_mapping(rows, mapping)
    assert [(r["row_index"], r["chosen_side"]) for r in out] == [(0, "a"), (1, "a"), (3, "b"), (4, "b"), (5, "b")]
    assert out[0]["chosen"] == "one" and out[3]["chosen"] == "two"
    assert (stats.ties_skipped, stats.unrecognised_skipped) == (2, 2)
    # A tie band widens the tie, and above_threshold flips the direction.
    banded = LabelMapping(
        layout="ab", response_a="o1", response_b="o2", label="pref", threshold=1.5, tie_band=0.35, above_threshold="a"
    )
    out, stats = apply_mapping(rows[:5], banded)
    assert [(r["row_index"], r["chosen_side"]) for r in out] == [(0, "b"), (4, "a")]
    assert stats.ties_skipped == 3


def test_ab_scores_decide_without_a_label_and_give_the_margin():
    mapping = LabelMapping(layout="ab", response_a="x", response_b="y", score_a="s.a", score_b="s.b")
    rows = [
        {"x": "one", "y": "two", "s": {"a": 3, "b": 7.5}},
        {"x": "one", "y": "two", "s": {"a": 9, "b": 1}},
        {"x": "one", "y": "two", "s": {"a": 4, "b": 4}},
    ]
    out, stats = apply_mapping(rows, mapping)
    assert [(r["chosen"], r["margin"], r["chosen_side"]) for r in out] == [("two", 4.5, "b"), ("one", 8.0, "a")]
    assert stats.ties_skipped == 1


def test_variants_layout_pairs_every_chosen_with_every_rejected():
    mapping = LabelMapping(layout="variants", prompt="p", category="subset")
    row = {"p": "q", "chosen": ["c0", "c1", "c2"], "rejected": ["r0", "r1"], "subset": "chat"}
    out, stats = apply_mapping([row], mapping)
    assert [(r["chosen"], r["rejected"], r["chosen_index"], r["rejected_index"]) for r in out] == [
        ("c0", "r0", 0, 0),
        ("c0", "r1", 0, 1),
        ("c1", "r0", 1, 0),
        ("c1", "r1", 1, 1),
        ("c2", "r0", 2, 0),
        ("c2", "r1", 2, 1),
    ]
    assert all(r["prompt"] == "q" and r["category"] == "chat" and r["row_index"] == 0 for r in out)
    assert (stats.rows_used, stats.pairs_out) == (1, 6)


def test_variants_aligned_pairing_and_identical_variants():
    aligned = LabelMapping(layout="variants", pairing="aligned")
    out, stats = apply_mapping([{"chosen": ["a", "same"], "rejected": ["b", "same"]}], aligned)
    assert [(r["chosen_index"], r["rejected_index"]) for r in out] == [(0, 0)]
    assert (stats.identical_skipped, stats.identical_rows, stats.rows_used) == (1, 0, 1)
    out, stats = apply_mapping([{"chosen": ["x"], "rejected": ["x"]}], aligned)
    assert out == [] and (stats.identical_skipped, stats.identical_rows) == (1, 1)
    assert_every_row_accounted_for(stats)
    with pytest.raises(InvalidRowError, match="row 0, field 'rejected': has 1 responses but 'chosen' has 2"):
        apply_mapping([{"chosen": ["a", "b"], "rejected": ["c"]}], aligned)
    with pytest.raises(InvalidRowError, match="expects a non-empty list of chosen responses"):
        apply_mapping([{"chosen": "a", "rejected": ["c"]}], aligned)


def test_identical_pairs_are_skipped_and_counted():
    out, stats = apply_mapping([{"chosen": "x", "rejected": "x"}, {"chosen": "x", "rejected": "y"}], "hh-rlhf")
    assert [r["row_index"] for r in out] == [1]
    assert (stats.identical_skipped, stats.identical_rows) == (1, 1)
    assert_every_row_accounted_for(stats)


def test_message_list_prompt_gets_assistant_message_responses():
    mapping = get_preset("rmb")
    row = {
        "conversation_input": [{"role": "user", "content": "hi", "language": "English"}],
        "chosen": {"answer": "hello"},
        "reject": {"answer": "bye"},
        "category_path": "Pairwise_set/Helpfulness/Chat",
        "pair_uid": "9",
    }
    (out,), _ = apply_mapping([row], mapping)
    assert out["prompt"] == row["conversation_input"]
    assert out["chosen"] == [{"role": "assistant", "content": "hello"}]
    assert out["rejected"] == [{"role": "assistant", "content": "bye"}]
    assert_trainer_accepts([out])
    # Without match_formats the kinds stay mixed, which nothing can score: the row is invalid, naming its prompt path.
    unmatched = LabelMapping.from_dict({"preset": "rmb", "match_formats": False})
    with pytest.raises(InvalidRowError, match="row 0, field 'conversation_input': is a list, but .* plain text"):
        apply_mapping([row], unmatched)
    # The other way round: a text prompt to message-list responses becomes a user message.
    messages = {
        "p": "q",
        "chosen": [{"role": "assistant", "content": "a"}],
        "rejected": [{"role": "assistant", "content": "b"}],
    }
    (out,), _ = apply_mapping([messages], LabelMapping(prompt="p"))
    assert out["prompt"] == [{"role": "user", "content": "q"}]
    assert_trainer_accepts([out])


def test_score_fields_give_the_margin():
    (out,), _ = apply_mapping(
        [{"prompt": "p", "chosen": "a", "rejected": "b", "metadata": {"score_chosen": 8.5, "score_rejected": 6}}],
        "ultrafeedback",
    )
    assert out["margin"] == 2.5


# ---------------------------------------------------------------------------------------------------------------
# Invalid rows
# ---------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("row", "field", "reason"),
    [
        ({"rejected": "b"}, "chosen", "is missing (no key 'chosen' in the row)"),
        ({"chosen": None, "rejected": "b"}, "chosen", "is null"),
        ({"chosen": "  ", "rejected": "b"}, "chosen", "is an empty string"),
        ({"chosen": 3, "rejected": "b"}, "chosen", "is a int; expected the chosen response"),
        ({"chosen": [], "rejected": "b"}, "chosen", "is an empty list"),
        ({"chosen": ["x"], "rejected": "b"}, "chosen", "is a list but not of messages"),
        ({"chosen": "a", "rejected": "b", "m": "big"}, "m", "is 'big', expected a number"),
        ({"chosen": "a", "rejected": "b", "m": float("inf")}, "m", "expected a finite number"),
        ({"chosen": "a", "rejected": "b", "m": True}, "m", "is a bool, expected a number"),
    ],
)
def test_invalid_rows_raise_naming_the_row_and_field(row, field, reason):
    mapping = LabelMapping(margin="m") if "m" in row else LabelMapping()
    rows = [{"chosen": "fine", "rejected": "also fine", "m": 0}, row]
    with pytest.raises(InvalidRowError) as caught:
        apply_mapping(rows, mapping)
    assert (caught.value.index, caught.value.field) == (1, field)
    assert reason in caught.value.reason


def test_invalid_rows_are_skipped_and_counted_when_asked():
    rows = [{"chosen": "a", "rejected": "b"}, {"rejected": "b"}, "not a dict", {"chosen": "a", "rejected": None}]
    out, stats = apply_mapping(rows, LabelMapping(), skip_invalid=True)
    assert [r["row_index"] for r in out] == [0]
    assert stats.invalid_skipped == 3
    assert stats.invalid_by_field == {"chosen": 1, "(row)": 1, "rejected": 1}
    assert stats.first_invalid == "row 1, field 'chosen': is missing (no key 'chosen' in the row)"
    assert_every_row_accounted_for(stats)
    with pytest.raises(InvalidRowError, match="^eval dataset, row 1, field 'chosen'"):
        apply_mapping(rows, LabelMapping(), dataset_name="eval")


def test_a_null_label_is_an_invalid_row():
    with pytest.raises(InvalidRowError, match="row 0, field 'winner': is null"):
        apply_mapping([{"p": "q", "x": "1", "y": "2", "winner": None}], AB)


# ---------------------------------------------------------------------------------------------------------------
# Parsing
# ---------------------------------------------------------------------------------------------------------------

ALPACA_FLAGS = (
    "layout=ab,prompt=instruction,response_a=output_1,response_b=output_2,label=preference,threshold=1.5,"
    "category=dataset"
)


def test_flag_string_parses_to_the_same_mapping_as_the_preset():
    mapping = LabelMapping.from_flags(ALPACA_FLAGS)
    assert mapping.threshold == 1.5 and mapping.above_threshold == "b" and mapping.tie_band == 0.0
    assert mapping == LabelMapping(**(get_preset("alpaca-eval").__dict__ | {"keep": (), "name": None}))
    assert parse_mapping(ALPACA_FLAGS) == mapping
    spaced = LabelMapping.from_flags(" layout = AB , response_a=a, response_b=b, label=l, tie_values=Tie|DRAW ,")
    assert spaced.layout == "ab" and spaced.tie_values == ("tie", "draw")


def test_presets_by_name_with_overrides_and_round_trips():
    assert parse_mapping("alpaca_eval") is PRESETS["alpaca-eval"]
    assert parse_mapping("RM-Bench").layout == "variants"
    custom = parse_mapping("preset=rmb,category=pair_uid,keep=")
    assert custom.chosen == "chosen.answer" and custom.category == "pair_uid" and custom.keep == ()
    relaid = parse_mapping({"preset": "hh-rlhf", "layout": "ab", "response_a": "x", "response_b": "y", "label": "l"})
    assert relaid.layout == "ab" and relaid.chosen is None
    for mapping in PRESETS.values():
        assert LabelMapping.from_dict(mapping.to_dict()) == mapping
        assert LabelMapping.from_flags(describe_mapping(mapping)) == mapping
        json.dumps(mapping.to_dict())


def test_mapping_from_json_and_yaml_files(tmp_path):
    as_json = tmp_path / "m.json"
    as_json.write_text(
        json.dumps({"layout": "ab", "response_a": "x", "response_b": "y", "label": "w", "a_values": [0]})
    )
    as_yaml = tmp_path / "m.yaml"
    as_yaml.write_text("layout: ab\nresponse_a: x\nresponse_b: y\nlabel: w\na_values: [0]\n")
    assert parse_mapping(str(as_json)) == parse_mapping(as_yaml) == LabelMapping.from_file(as_json)
    assert parse_mapping(as_yaml).a_values == ("0",)
    preset_yaml = tmp_path / "p.yml"
    preset_yaml.write_text("preset: ultrafeedback\nskip: 1\n")
    with pytest.raises(RewardlabError, match="unknown key 'skip'"):
        parse_mapping(preset_yaml)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("layout=ab,respons_a=x", "unknown key 'respons_a' \\(did you mean 'response_a'\\?\\)"),
        ("layout=pairs,chosen", "expected key=value, got 'chosen'"),
        ("chosen=a,chosen=b", "key 'chosen' is given twice"),
        ("layout=pairs,prompt=", "key 'prompt' has an empty value"),
        ("layout=ab,response_a=x,response_b=y,label=l,threshold=half", "threshold must be a number, got 'half'"),
        ("layout=grid", "layout must be one of pairs, ab, variants, got 'grid'"),
        ("layout=pairs,label=winner", "'label' is only used with layout=ab, but layout=pairs"),
        ("layout=ab,chosen=c,response_a=x,response_b=y,label=l", "'chosen' is only used with layout=pairs or layout="),
        ("layout=ab,response_a=x,response_b=y", "layout=ab needs a 'label'"),
        ("layout=ab,response_a=x,label=l", "layout=ab needs 'response_b'"),
        ("layout=ab,response_a=x,response_b=y,label=l,tie_band=0.1", "'tie_band' needs a 'threshold'"),
        ("layout=ab,response_a=x,response_b=y,label=l,threshold=1.5,above_threshold=c", "above_threshold must be"),
        ("layout=ab,response_a=x,response_b=y,label=l,a_values=1|x,b_values=x", "'x' in both a_values and b_values"),
        ("layout=pairs,pairing=aligned", "'pairing' is only used with layout=variants"),
        ("layout=variants,pairing=zip", "pairing must be one of all, aligned"),
        ("layout=pairs,match_formats=maybe", "match_formats must be true or false"),
        ("layout=pairs,keep=chosen", "keep 'chosen' would overwrite an output column"),
        ("layout=pairs,score_chosen=s", "give both 'score_chosen' and 'score_rejected'"),
        ("layout=pairs,margin=m,score_chosen=s,score_rejected=t", "give 'margin' or scores"),
        ("alpaca", "unknown label-mapping preset 'alpaca' \\(did you mean 'alpaca-eval'\\?\\)"),
        ("", "empty mapping string"),
        ("missing.yaml", "label mapping file 'missing.yaml' does not exist"),
    ],
)
def test_bad_mappings_name_the_key_and_value(spec, message):
    with pytest.raises(RewardlabError, match=message):
        parse_mapping(spec)


def test_bad_mapping_files_and_values(tmp_path):
    bad_json = tmp_path / "bad.json"
    bad_json.write_text("{layout: ab}")
    with pytest.raises(RewardlabError, match="is not valid JSON"):
        parse_mapping(bad_json)
    listed = tmp_path / "list.yaml"
    listed.write_text("- layout\n")
    with pytest.raises(RewardlabError, match="must hold one dict of settings"):
        parse_mapping(listed)
    other = tmp_path / "m.toml"
    other.write_text("")
    with pytest.raises(RewardlabError, match="must end in .json, .yaml or .yml"):
        LabelMapping.from_file(other)
    with pytest.raises(RewardlabError, match="threshold must be a number, got True"):
        LabelMapping.from_dict({"layout": "ab", "response_a": "x", "response_b": "y", "label": "l", "threshold": True})
    with pytest.raises(RewardlabError, match="prompt must be a string, got 3"):
        LabelMapping.from_dict({"prompt": 3})
    with pytest.raises(RewardlabError, match="threshold must be a finite number"):
        LabelMapping(layout="ab", response_a="x", response_b="y", label="l", threshold=float("nan"))


# ---------------------------------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------------------------------


def test_split_hh_dialogue_at_the_last_assistant_turn():
    text = "\n\nHuman: hi\n\nAssistant: hello\n\nHuman: how are you?\n\nAssistant: fine"
    prompt, reply = split_hh_dialogue(text)
    assert prompt == "\n\nHuman: hi\n\nAssistant: hello\n\nHuman: how are you?\n\nAssistant:" and reply == " fine"
    with pytest.raises(RewardlabError, match="no '\\\\n\\\\nAssistant:' turn"):
        split_hh_dialogue("\n\nHuman: hi")


def test_split_hh_pair_keeps_a_reply_that_contains_an_assistant_marker_whole():
    prompt = "\n\nHuman: How much do solar panels cost?\n\nAssistant:"
    chosen = prompt + " Umm. Just a second...\n\nAssistant: About $50."
    rejected = prompt + " Look it up."
    assert split_hh_pair(chosen, rejected) == (
        prompt,
        " Umm. Just a second...\n\nAssistant: About $50.",
        " Look it up.",
    )
    assert split_hh_dialogue(chosen)[0] != prompt  # why the pair-aware split exists
    assert split_hh_pair(chosen, chosen) == (*split_hh_dialogue(chosen), split_hh_dialogue(chosen)[1])
    with pytest.raises(RewardlabError, match="share no"):
        split_hh_pair("\n\nHuman: a\n\nAssistant: b", "\n\nHuman: c\n\nAssistant: d")


def test_rm_bench_difficulty_follows_the_matrix_triangles():
    grid = {(i, j): rm_bench_difficulty(i, j) for i in range(3) for j in range(3)}
    assert [k for k, v in grid.items() if v == "hard"] == [(0, 1), (0, 2), (1, 2)]
    assert [k for k, v in grid.items() if v == "normal"] == [(0, 0), (1, 1), (2, 2)]
    assert [k for k, v in grid.items() if v == "easy"] == [(1, 0), (2, 0), (2, 1)]


# ---------------------------------------------------------------------------------------------------------------
# Presets on the real files in shared/data
# ---------------------------------------------------------------------------------------------------------------


@needs_data
@pytest.mark.parametrize("split", ["hh-rlhf-harmless-base-test", "hh-rlhf-helpful-base-test"])
def test_hh_rlhf_preset_on_the_real_files(split):
    rows = read_rows(f"{split}/test.jsonl.gz")
    out, stats = apply_mapping(rows, "hh-rlhf")
    assert stats.rows_in == 300 and stats.pairs_out + stats.identical_skipped == 300
    assert set(out[0]) == {"chosen", "rejected", "row_index"}
    assert detect_dataset_format(out).name == "standard implicit-prompt"
    assert_trainer_accepts(out)
    for row in out:
        prompt, chosen_reply, rejected_reply = split_hh_pair(row["chosen"], row["rejected"])
        assert prompt.endswith("\n\nAssistant:") and prompt.startswith("\n\nHuman:")
        assert prompt + chosen_reply == row["chosen"] and prompt + rejected_reply == row["rejected"]


@needs_data
def test_rmb_preset_on_the_real_files():
    for goal in ("helpfulness", "harmlessness"):
        out, stats = apply_mapping(read_rows(f"rmb-pairwise/{goal}.jsonl.gz"), "rmb")
        assert stats.rows_in == 300 and stats.invalid_skipped == 0
        assert_trainer_accepts(out)
        assert detect_dataset_format(out).name == "conversational explicit-prompt"
        for row in out:
            assert row["prompt"][-1]["role"] == "user"
            assert row["chosen"][0]["role"] == "assistant" and isinstance(row["chosen"][0]["content"], str)
            assert row["category"].startswith(f"Pairwise_set/{goal.capitalize()}")
            assert isinstance(row["pair_uid"], str)
    # Row 3531 of the harmlessness file has an empty rejected answer: named, or skipped and counted.
    rows = read_rows("rmb-pairwise/harmlessness.jsonl.gz", limit=3532)
    with pytest.raises(InvalidRowError, match="row 3531, field 'reject.answer': is an empty string"):
        apply_mapping(rows, "rmb")
    _, stats = apply_mapping(rows, "rmb", skip_invalid=True)
    assert stats.invalid_by_field == {"reject.answer": 1}
    assert_every_row_accounted_for(stats)


@needs_data
def test_alpaca_eval_preset_on_the_real_files():
    # The whole claude-2 file: preferences below 1.5 in 673 rows, above in 131, exactly 1.5 in one (a tie).
    rows = read_rows("alpaca-eval-gpt4turbo-annotations/claude-2.jsonl.gz", limit=None)
    out, stats = apply_mapping(rows, "alpaca-eval")
    assert (stats.rows_in, stats.pairs_out, stats.ties_skipped, stats.unrecognised_skipped) == (805, 804, 1, 0)
    assert Counter(r["chosen_side"] for r in out) == {"a": 673, "b": 131}
    assert_every_row_accounted_for(stats)
    assert_trainer_accepts(out)
    for row in out:
        source = rows[row["row_index"]]
        winner = "output_1" if source["preference"] < 1.5 else "output_2"
        assert row["chosen"] == source[winner] and row["prompt"] == source["instruction"]
        assert row["category"] == source["dataset"] and row["generator_1"] == "gpt4_1106_preview"
    assert {r["category"] for r in out} == {"helpful_base", "koala", "oasst", "selfinstruct", "vicuna"}


@needs_data
def test_ultrafeedback_preset_on_the_real_files():
    rows = read_rows("ultrafeedback-binarized-subset/eval_clean.jsonl.gz", limit=None)
    out, stats = apply_mapping(rows, "ultrafeedback")
    assert (stats.rows_in, stats.pairs_out, stats.identical_skipped) == (200, 199, 1)
    assert_trainer_accepts(out)
    for row in out:
        scores = rows[row["row_index"]]["metadata"]
        assert row["margin"] == scores["score_chosen"] - scores["score_rejected"]
    assert min(r["margin"] for r in out) == 0.0  # equal ratings happen: the pair stays, with no margin


@needs_data
def test_rm_bench_preset_on_the_real_files():
    rows = read_rows("rm-bench/chat_filtered.jsonl.gz", limit=None)
    out, stats = apply_mapping(rows, "rm-bench")
    assert (stats.rows_in, stats.pairs_out) == (129, 129 * 9)
    assert_trainer_accepts(out)
    assert {r["category"] for r in out} == {"alpacaeval"}
    first = [r for r in out if r["row_index"] == 0]
    assert [(r["chosen_index"], r["rejected_index"]) for r in first] == [(i, j) for i in range(3) for j in range(3)]
    assert first[5]["chosen"] == rows[0]["chosen"][1] and first[5]["rejected"] == rows[0]["rejected"][2]
    assert Counter(rm_bench_difficulty(r["chosen_index"], r["rejected_index"]) for r in out) == {
        "hard": 129 * 3,
        "normal": 129 * 3,
        "easy": 129 * 3,
    }
    safety = read_rows("rm-bench/safety-refuse_filtered.jsonl.gz")
    out, _ = apply_mapping(safety, "rm-bench")
    assert {r["category"] for r in out} <= {"xstest-should-refuse", "refusals-dangerous", "refusals-offensive"}
