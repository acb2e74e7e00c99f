"""Loading preference data from every supported source, the error for each way it can fail, and eval splits."""

from __future__ import annotations

import gzip
import json

import pytest
from datasets import Dataset, DatasetDict, IterableDataset, IterableDatasetDict

from rewardlab.data.loading import file_builder, load_preference_data, split_train_eval
from rewardlab.errors import RewardlabError

ROWS = [{"chosen": f"good answer {i}", "rejected": f"bad answer {i}"} for i in range(6)]


def write_jsonl(path, rows=ROWS):
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "wt", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row) + "\n")
    return path


def write_file(path):
    """Write ROWS to `path` in the format its extension names."""
    name = str(path)
    if name.endswith((".jsonl", ".jsonl.gz")):
        return write_jsonl(path)
    if name.endswith(".json.gz"):
        with gzip.open(path, "wt", encoding="utf-8") as f:
            json.dump(ROWS, f)
    elif name.endswith(".json"):
        path.write_text(json.dumps(ROWS, indent=2))
    elif name.endswith(".parquet"):
        Dataset.from_list(ROWS).to_parquet(name)
    elif name.endswith(".csv"):
        Dataset.from_list(ROWS).to_csv(name, index=False)
    return path


@pytest.mark.parametrize("name", ["d.jsonl", "d.jsonl.gz", "d.json", "d.json.gz", "d.parquet", "d.csv"])
def test_every_file_format_loads_as_train_split(tmp_path, name):
    path = write_file(tmp_path / name)
    data = load_preference_data(str(path))
    assert isinstance(data, DatasetDict)
    assert list(data) == ["train"]
    assert data["train"].to_list() == ROWS


def test_split_argument_returns_one_dataset(tmp_path):
    path = write_jsonl(tmp_path / "d.jsonl")
    ds = load_preference_data(path, split="train")
    assert isinstance(ds, Dataset)
    assert len(ds) == len(ROWS)


def test_streaming_file(tmp_path):
    path = write_jsonl(tmp_path / "d.jsonl.gz")
    data = load_preference_data(str(path), streaming=True)
    assert isinstance(data, IterableDatasetDict)
    assert list(data["train"]) == ROWS


def test_directory_of_files_gives_splits_by_file_name(tmp_path):
    folder = tmp_path / "folder"
    folder.mkdir()
    write_jsonl(folder / "train.jsonl.gz")
    write_jsonl(folder / "test.jsonl.gz", ROWS[:2])
    data = load_preference_data(str(folder))
    assert set(data) == {"train", "test"}
    assert len(data["train"]) == 6 and len(data["test"]) == 2


def test_saved_dataset_dict_and_single_dataset(tmp_path):
    DatasetDict({"train": Dataset.from_list(ROWS), "test": Dataset.from_list(ROWS[:1])}).save_to_disk(
        str(tmp_path / "dict")
    )
    Dataset.from_list(ROWS[:3]).save_to_disk(str(tmp_path / "single"))
    data = load_preference_data(str(tmp_path / "dict"))
    assert len(data["train"]) == 6 and len(data["test"]) == 1
    assert len(load_preference_data(str(tmp_path / "single"), split="train")) == 3
    streamed = load_preference_data(str(tmp_path / "dict"), split="test", streaming=True)
    assert isinstance(streamed, IterableDataset)
    assert list(streamed) == ROWS[:1]


def test_file_builder_by_extension():
    assert file_builder("a/B.JSONL.GZ") == "json"
    assert file_builder("x.parquet") == "parquet"
    assert file_builder("x.csv") == "csv"
    assert file_builder("x.txt") is None


# --- errors: each is a RewardlabError with one sentence that says what to do -----------------------------------


def one_line_error(fn, *args, **kwargs) -> str:
    with pytest.raises(RewardlabError) as info:
        fn(*args, **kwargs)
    message = str(info.value)
    assert "\n" not in message
    return message


def test_missing_path(tmp_path):
    message = one_line_error(load_preference_data, str(tmp_path / "nope.jsonl"))
    assert "no such file or directory" in message and "nope.jsonl" in message


def test_missing_relative_path_is_not_taken_for_a_hub_id():
    message = one_line_error(load_preference_data, "./data/missing.jsonl")
    assert "no such file or directory" in message


def test_unknown_extension(tmp_path):
    path = tmp_path / "pairs.txt"
    path.write_text("hello\n")
    message = one_line_error(load_preference_data, str(path))
    assert "pairs.txt" in message and ".jsonl" in message


def test_invalid_json_lines_names_the_line(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps(ROWS[0]) + "\n" + json.dumps(ROWS[1]) + "\n{oops\n")
    message = one_line_error(load_preference_data, str(path))
    assert "line 3" in message and "bad.jsonl" in message


def test_invalid_gzipped_json_lines_names_the_line(tmp_path):
    path = tmp_path / "bad.jsonl.gz"
    with gzip.open(path, "wt") as f:
        f.write(json.dumps(ROWS[0]) + "\n[1, 2]\n")
    message = one_line_error(load_preference_data, str(path))
    assert "line 2" in message and "object" in message


def test_invalid_json_document_names_the_line(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text('[\n  {"chosen": "a", "rejected": "b"},\n  {"chosen": "a" "rejected": "b"}\n]\n')
    message = one_line_error(load_preference_data, str(path))
    assert "line 3" in message


def test_empty_file(tmp_path):
    path = tmp_path / "empty.jsonl"
    path.write_text("")
    assert "empty" in one_line_error(load_preference_data, str(path))


def test_directory_without_data(tmp_path):
    (tmp_path / "notes.txt").write_text("nothing here")
    message = one_line_error(load_preference_data, str(tmp_path))
    assert "no data files" in message


def test_hub_id_offline_says_what_to_do():
    # conftest sets HF_DATASETS_OFFLINE=1, so this fails at once rather than after network retries.
    message = one_line_error(load_preference_data, "someone/some-preference-data")
    assert "someone/some-preference-data" in message
    assert "local file" in message


def test_missing_split_lists_the_splits(tmp_path):
    path = write_jsonl(tmp_path / "d.jsonl")
    message = one_line_error(load_preference_data, str(path), split="validation")
    assert "'validation'" in message and "train" in message


# --- train/eval split -------------------------------------------------------------------------------------------


def make_dict(n_train=10, n_test=None):
    splits = {"train": Dataset.from_list([{"chosen": f"c{i}", "rejected": f"r{i}"} for i in range(n_train)])}
    if n_test is not None:
        splits["test"] = Dataset.from_list(ROWS[:n_test])
    return DatasetDict(splits)


def test_existing_eval_split_is_used():
    train, evaluation = split_train_eval(make_dict(10, 3), train_split="train", eval_split="test")
    assert len(train) == 10 and len(evaluation) == 3


def test_existing_eval_split_wins_over_fraction():
    train, evaluation = split_train_eval(make_dict(10, 3), eval_fraction=0.5)
    assert len(train) == 10 and len(evaluation) == 3


def test_no_eval_split_and_no_fraction_means_no_eval():
    train, evaluation = split_train_eval(make_dict(10), eval_split="test", eval_fraction=0.0)
    assert len(train) == 10 and evaluation is None


def test_fraction_holds_out_rounded_up_reproducibly():
    data = make_dict(10)
    train_a, eval_a = split_train_eval(data, eval_fraction=0.25, seed=1)
    train_b, eval_b = split_train_eval(data, eval_fraction=0.25, seed=1)
    _, eval_c = split_train_eval(data, eval_fraction=0.25, seed=2)
    assert len(eval_a) == 3 and len(train_a) == 7  # ceil(2.5)
    assert eval_a["chosen"] == eval_b["chosen"] and train_a["chosen"] == train_b["chosen"]
    assert eval_a["chosen"] != eval_c["chosen"]
    assert not set(eval_a["chosen"]) & set(train_a["chosen"])


def test_fraction_on_a_plain_dataset():
    train, evaluation = split_train_eval(make_dict(10)["train"], eval_fraction=0.1)
    assert (len(train), len(evaluation)) == (9, 1)


@pytest.mark.parametrize("fraction", [-0.1, 1.0, 1.5])
def test_fraction_out_of_range(fraction):
    assert "eval_fraction" in one_line_error(split_train_eval, make_dict(10), eval_fraction=fraction)


def test_fraction_that_leaves_no_training_rows():
    message = one_line_error(split_train_eval, make_dict(1), eval_fraction=0.5)
    assert "0 for training" in message


def test_missing_train_split():
    message = one_line_error(split_train_eval, make_dict(4), train_split="training")
    assert "'training'" in message and "train" in message


def test_fraction_on_a_stream_is_refused():
    streamed = IterableDatasetDict({"train": make_dict(4)["train"].to_iterable_dataset()})
    assert "stream" in one_line_error(split_train_eval, streamed, eval_fraction=0.5)
