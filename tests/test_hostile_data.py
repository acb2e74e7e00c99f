"""Generated hostile rows through the data pipeline and the CLI: a clear error naming the row and field, or a counted,
recorded skip; never a crash inside a library, a hang, or a silently wrong pair."""

import contextlib
import io
import json
import math

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from tiny import make_tokenizer, save_tiny

from rewardlab.cli import main
from rewardlab.data.formats import detect_format
from rewardlab.data.tokenize import tokenize_pair
from rewardlab.data.truncation import truncate_pair
from rewardlab.data.validate import validate_example
from rewardlab.errors import InvalidRowError, RewardlabError

FIELDS = ["prompt", "chosen", "rejected", "margin", "tools", "chat_template_kwargs", "other"]
texts = st.one_of(
    st.text(max_size=40),
    st.just(""),
    st.just(" ".join(["word"] * 3000)),  # huge
    st.sampled_from(["\x00", "😀" * 5, "\ud7ff", "a\nb\tc", "<|im_end|>"]),
)
messages = st.fixed_dictionaries(
    {
        "role": st.sampled_from(["user", "assistant", "system", "tool", "robot", ""]),
        "content": st.one_of(texts, st.none(), st.integers()),
    }
)
values = st.one_of(
    texts,
    st.none(),
    st.integers(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.lists(messages, max_size=3),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=2),
)
rows = st.dictionaries(st.sampled_from(FIELDS), values, max_size=6)
FMT_ERRORS = (InvalidRowError, RewardlabError)


@pytest.fixture(scope="module")
def tokenizer():
    return make_tokenizer("qwen3")


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(example=rows)
def test_every_row_is_a_clean_pair_or_a_clear_error(example, tokenizer):
    try:
        fmt = detect_format(example)
        validate_example(example, 7, fmt)
    except FMT_ERRORS as e:
        assert "row 7" in str(e) or "row" not in str(e), str(e)  # a row error names the row
        return
    try:
        pair = tokenize_pair(example, tokenizer, tokenizer.eos_token_id)
    except InvalidRowError as e:  # e.g. a chat template that rejects the messages
        assert e.field, str(e)
        return
    result = truncate_pair(pair["chosen_ids"], pair["rejected_ids"], 64, "truncate_prompt")
    vocab = len(tokenizer)
    for ids in (result.chosen_ids, result.rejected_ids):
        assert ids and len(ids) <= 64 and all(isinstance(t, int) and 0 <= t < vocab for t in ids)
    assert result.chosen_ids != result.rejected_ids  # a pair that differed still differs after truncation
    if "margin" in example:
        assert math.isfinite(float(example["margin"]))


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return str(save_tiny("qwen3", tmp_path_factory.mktemp("hostile-model")))


# Rows that look like pairs but carry every kind of wrong value; and lines that break the file itself.
pair_rows = st.fixed_dictionaries(
    {"chosen": values, "rejected": values},
    optional={"prompt": values, "margin": values, "tools": values, "chat_template_kwargs": values, "other": values},
)
broken_lines = st.sampled_from([b'{"chosen": "a", ', b"[1, 2]", b"null", b'{"chosen": "x\xff", "rejected": "y"}', b"0"])
GOOD = json.dumps({"prompt": "q", "chosen": " blue", "rejected": " green"}).encode()


def train_on(lines: list[bytes], model_dir: str, directory) -> tuple[int, str]:
    data = directory / "data.jsonl"
    data.write_bytes(b"\n".join(lines) + b"\n")
    stderr = io.StringIO()
    with contextlib.redirect_stderr(stderr), contextlib.redirect_stdout(io.StringIO()):
        code = main(
            [
                "train",
                "--model_name_or_path",
                model_dir,
                "--dataset_name",
                str(data),
                "--output_dir",
                str(directory / "out"),
                "--max_steps",
                "1",
                "--per_device_train_batch_size",
                "2",
                "--report_to",
                "none",
                "--use_cpu",
                "--skip_invalid_rows",
                "--max_length",
                "64",
                "--save_strategy",
                "no",
            ]
        )
    log = stderr.getvalue()
    assert "Traceback" not in log
    assert code in (0, 2), log[-2000:]
    if code == 2:
        assert log.strip().splitlines()[-1].startswith("rewardlab: error: "), log[-2000:]
    return code, log


@settings(max_examples=10, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    good=st.lists(pair_rows.map(lambda r: json.dumps(r).encode()), max_size=4),
    bad=broken_lines,
    where=st.integers(0, 4),
)
def test_a_line_that_is_not_a_row_stops_with_its_line_number(good, bad, where, model_dir, tmp_path_factory):
    lines = [GOOD, *good]
    lines.insert(min(where, len(lines)), bad)
    code, log = train_on(lines, model_dir, tmp_path_factory.mktemp("broken"))
    assert code == 2 and "line " in log.strip().splitlines()[-1]


@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
@given(hostile=st.lists(pair_rows, min_size=1, max_size=6), duplicate=st.booleans())
# A content with U+0085, which str.splitlines() breaks a line at: the skipped row's record must stay one line.
@example(hostile=[{"chosen": "", "rejected": "\x85"}], duplicate=False)
def test_hostile_rows_train_with_every_skip_recorded_or_stop_clearly(hostile, duplicate, model_dir, tmp_path_factory):
    lines = [json.dumps(row).encode() for row in hostile] + [GOOD] * (2 if duplicate else 1)  # duplicates count twice
    directory = tmp_path_factory.mktemp("hostile")
    code, log = train_on(lines, model_dir, directory)
    if code == 2:
        return
    out = directory / "out"
    record = json.loads((out / "rewardlab_run.json").read_text())["data"]["train"]
    skipped = (out / "skipped_rows.jsonl").read_text().splitlines() if (out / "skipped_rows.jsonl").exists() else []
    # Every row is accounted for: a pair, a recorded skip with its reason, or an over-length drop.
    assert record["rows_in"] == len(lines)
    assert record["rows_in"] == record["pairs_out"] + len(skipped) + record["dropped_overlength"]
    assert sum(record["invalid_skipped"].values()) == len(skipped)
    for line in skipped:
        entry = json.loads(line)
        assert entry["reason"] and entry["row"] is not None and "content" in entry
