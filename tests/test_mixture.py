"""A mixture of datasets (TRL's `datasets:` config section): loading, columns, fractions, the test split, errors."""

import json

import pytest
from datasets import IterableDatasetDict

from rewardlab.data.mixture import DatasetSource, describe_mixture, load_mixture
from rewardlab.errors import RewardlabError


def write_pairs(path, n: int, tag: str, extra: dict | None = None) -> str:
    with open(path, "w", encoding="utf-8") as f:
        for i in range(n):
            row = {"prompt": f"{tag} {i}?", "chosen": " blue", "rejected": " green", **(extra or {})}
            f.write(json.dumps(row) + "\n")
    return str(path)


def test_entries_are_concatenated_in_order_as_the_train_split(tmp_path):
    first = write_pairs(tmp_path / "a.jsonl", 3, "a")
    second = write_pairs(tmp_path / "b.jsonl", 2, "b", {"source": "b"})
    data = load_mixture([{"path": first}, {"path": second, "columns": ["prompt", "chosen", "rejected"]}])
    assert list(data) == ["train"]
    assert data["train"]["prompt"] == ["a 0?", "a 1?", "a 2?", "b 0?", "b 1?"]
    assert describe_mixture([{"path": first}, DatasetSource(second)]).startswith("mixture of 2: ")


def test_fractions_are_shares_of_the_mixture_without_repeating_a_row(tmp_path):
    first = write_pairs(tmp_path / "a.jsonl", 10, "a")
    second = write_pairs(tmp_path / "b.jsonl", 4, "b")
    # Shares 0.5/0.5: the smaller set (4 rows) caps the mixture at 8, its first 4 rows from each.
    data = load_mixture([{"path": first, "fraction": 1}, {"path": second, "fraction": 1}])["train"]
    assert data["prompt"] == ["a 0?", "a 1?", "a 2?", "a 3?", "b 0?", "b 1?", "b 2?", "b 3?"]
    # Shares 0.75/0.25: 10 rows of a allow a mixture of 13.33, of which b gives round(3.33) = 3 of its 4.
    data = load_mixture([{"path": first, "fraction": 3}, {"path": second, "fraction": 1}])["train"]
    assert sum(p.startswith("a") for p in data["prompt"]) == 10 and sum(p.startswith("b") for p in data["prompt"]) == 3


def test_the_test_split_is_drawn_with_the_seed(tmp_path):
    first = write_pairs(tmp_path / "a.jsonl", 10, "a")
    one = load_mixture([{"path": first}], test_split_size=0.3, seed=1)
    again = load_mixture([{"path": first}], test_split_size=0.3, seed=1)
    assert (len(one["train"]), len(one["test"])) == (7, 3)
    assert one["test"]["prompt"] == again["test"]["prompt"]
    assert len(load_mixture([{"path": first}], test_split_size=2)["test"]) == 2


def test_streamed_mixtures(tmp_path):
    first, second = write_pairs(tmp_path / "a.jsonl", 3, "a"), write_pairs(tmp_path / "b.jsonl", 2, "b")
    data = load_mixture([{"path": first}, {"path": second}], streaming=True)
    assert isinstance(data, IterableDatasetDict)
    assert [r["prompt"] for r in data["train"]] == ["a 0?", "a 1?", "a 2?", "b 0?", "b 1?"]
    with pytest.raises(RewardlabError, match="fraction cannot be taken from a stream"):
        load_mixture([{"path": first, "fraction": 1}, {"path": second, "fraction": 1}], streaming=True)


def test_data_files_inside_a_builder_as_trl_writes_them(tmp_path):
    first = write_pairs(tmp_path / "a.jsonl", 3, "a")
    data = load_mixture([{"path": "json", "data_files": first}])
    assert data["train"]["prompt"] == ["a 0?", "a 1?", "a 2?"]


@pytest.mark.parametrize(
    ("entries", "message"),
    [
        ([], "datasets list is empty"),
        ([{"name": "x"}], r"datasets\[0\] has no 'path'"),
        ([{"path": "a.jsonl", "weight": 2}], r"datasets\[0\]: unknown key 'weight'"),
        (["a.jsonl"], r"datasets\[0\] must be a mapping"),
        ([{"path": "A", "fraction": -1}], "fraction must be a number of at least 0"),
    ],
)
def test_malformed_entries_are_named(entries, message):
    with pytest.raises(RewardlabError, match=message):
        load_mixture(entries)


def test_problems_with_the_data_are_named(tmp_path):
    first = write_pairs(tmp_path / "a.jsonl", 3, "a")
    with pytest.raises(RewardlabError, match=r"datasets\[0\] \(.*a.jsonl\) has no column 'answer'"):
        load_mixture([{"path": first, "columns": ["prompt", "answer"]}])
    with pytest.raises(RewardlabError, match="no such file or directory"):
        load_mixture([{"path": str(tmp_path / "missing.jsonl")}])
    with pytest.raises(RewardlabError, match="either all datasets of the mixture or none"):
        load_mixture([{"path": first, "fraction": 1}, {"path": first}])
    other = tmp_path / "other.jsonl"
    other.write_text(json.dumps({"prompt": "p", "chosen": 1, "rejected": 2}) + "\n")
    with pytest.raises(RewardlabError, match="cannot be concatenated"):
        load_mixture([{"path": first}, {"path": str(other)}])
