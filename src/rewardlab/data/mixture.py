"""A mixture of several preference datasets as one training set: the `datasets:` section of a TRL config file.

Each entry names a dataset as `datasets.load_dataset` does (`path`, `name`, `data_dir`, `data_files`, `split`), may
keep only some `columns`, and may set its share of the mixture (`fraction`). The semantics are TRL 1.16's
`get_dataset`, so a TRL YAML file means the same here; what differs is that a local `path` is read by
`rewardlab.data.loading` (its errors name the file and what to do), and that the test split is drawn with a seed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any

import datasets
from datasets import DatasetDict, IterableDatasetDict

from rewardlab.data.loading import AnyDataset, AnyDatasetDict, load_preference_data
from rewardlab.errors import RewardlabError, first_line


@dataclass(frozen=True)
class DatasetSource:
    """One dataset of a mixture (TRL's `DatasetConfig`)."""

    path: str
    name: str | None = None
    data_dir: str | None = None
    data_files: str | list[str] | dict[str, str] | None = None
    split: str = "train"
    columns: list[str] | None = None
    fraction: float | None = None
    objective: str | None = None  # the objective every row of this dataset is for (a multi-objective model's head)

    @classmethod
    def from_dict(cls, values: Mapping[str, Any], position: int) -> DatasetSource:
        """An entry of the YAML `datasets:` list; an unknown or missing key is an error naming the entry."""
        if not isinstance(values, Mapping):
            raise RewardlabError(f"datasets[{position}] must be a mapping with at least 'path', got {values!r}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise RewardlabError(f"datasets[{position}]: unknown key {unknown[0]!r}; the keys are {', '.join(known)}")
        if not values.get("path"):
            raise RewardlabError(f"datasets[{position}] has no 'path' (a data file, a directory or a Hub dataset id)")
        fraction = values.get("fraction")
        if fraction is not None and (
            isinstance(fraction, bool) or not isinstance(fraction, int | float) or fraction < 0
        ):
            raise RewardlabError(f"datasets[{position}]: fraction must be a number of at least 0, got {fraction!r}")
        objective = values.get("objective")
        if objective is not None and (not isinstance(objective, str) or not objective.strip()):
            raise RewardlabError(f"datasets[{position}]: objective must be an objective's name, got {objective!r}")
        return cls(**values)


def load_mixture(
    entries: Sequence[Mapping[str, Any] | DatasetSource],
    *,
    streaming: bool = False,
    test_split_size: float | int | None = None,
    seed: int = 42,
) -> AnyDatasetDict:
    """The datasets of `entries` concatenated as the split `train`, and with `test_split_size` (a fraction or a row
    count) a `test` split drawn from them at random with `seed`.

    With `fraction` set on every entry (or on none), the fractions are normalised to sum to one and each dataset
    gives its first `round(share * N)` rows, `N` the largest mixture size that repeats no row. An entry's `objective`
    names the objective of each of its rows (an `objective` column), for a multi-objective model.
    """
    if not entries:
        raise RewardlabError("the datasets list is empty: give at least one entry with a 'path'")
    sources = [e if isinstance(e, DatasetSource) else DatasetSource.from_dict(e, k) for k, e in enumerate(entries)]
    if len({s.objective is None for s in sources}) > 1:
        raise RewardlabError("objective must be set for either all datasets of the mixture or none of them")
    parts = [_load_source(source, k, streaming) for k, source in enumerate(sources)]
    parts = _take_fractions(parts, [s.fraction for s in sources], streaming)
    try:
        combined = datasets.concatenate_datasets(parts)
    except ValueError as e:
        columns = "; ".join(f"datasets[{k}]: {', '.join(p.column_names or [])}" for k, p in enumerate(parts))
        raise RewardlabError(
            f"the datasets of the mixture cannot be concatenated ({first_line(e)}); give them the same columns "
            f"and types, e.g. with 'columns' ({columns})"
        ) from e
    if test_split_size is None:
        return (IterableDatasetDict if streaming else DatasetDict)({"train": combined})
    if streaming:
        raise RewardlabError("test_split_size cannot split streamed datasets: drop streaming, or give a test split")
    try:
        return combined.train_test_split(test_size=test_split_size, shuffle=True, seed=seed)
    except ValueError as e:
        raise RewardlabError(f"test_split_size={test_split_size}: {first_line(e)}") from e


def _load_source(source: DatasetSource, position: int, streaming: bool) -> AnyDataset:
    if source.data_dir is None and source.data_files is None:
        dataset = load_preference_data(source.path, config_name=source.name, split=source.split, streaming=streaming)
    else:  # a builder or Hub repository with files picked inside it: datasets' own call, as TRL makes it
        try:
            dataset = datasets.load_dataset(
                source.path,
                source.name,
                data_dir=source.data_dir,
                data_files=source.data_files,
                split=source.split,
                streaming=streaming,
            )
        except Exception as e:  # datasets raises many types for a bad path, file or split
            raise RewardlabError(f"datasets[{position}] ({source.path}): cannot load it: {first_line(e)}") from e
    if source.columns is not None:
        missing = [c for c in source.columns if c not in (dataset.column_names or [])]
        if missing:
            raise RewardlabError(
                f"datasets[{position}] ({source.path}) has no column {missing[0]!r}; its columns are "
                f"{', '.join(dataset.column_names or [])}"
            )
        dataset = dataset.select_columns(source.columns)
    if source.objective is not None:
        if "objective" in (dataset.column_names or []):
            raise RewardlabError(
                f"datasets[{position}] ({source.path}) names its rows' objectives in an `objective` column and "
                f"through objective: {source.objective!r}; keep one"
            )
        dataset = dataset.map(lambda _: {"objective": source.objective})
    return dataset


def _take_fractions(parts: list[AnyDataset], fractions: list[float | None], streaming: bool) -> list[AnyDataset]:
    if all(f is None for f in fractions):
        return parts
    if any(f is None for f in fractions):
        raise RewardlabError("fraction must be set for either all datasets of the mixture or none of them")
    if streaming:
        raise RewardlabError("a dataset fraction cannot be taken from a stream: drop streaming or the fractions")
    if sum(fractions) <= 0:
        raise RewardlabError("the fractions of the mixture sum to 0: give at least one a positive share")
    shares = [f / sum(fractions) for f in fractions]
    total = min(len(p) / share for p, share in zip(parts, shares, strict=True) if share > 0)
    return [p.select(range(round(share * total))) for p, share in zip(parts, shares, strict=True)]


def describe_mixture(entries: Sequence[Mapping[str, Any] | DatasetSource]) -> str:
    """A short name for a mixture in logs and reports, e.g. "mixture of 2: a.jsonl, b.jsonl"."""
    paths = [e.path if isinstance(e, DatasetSource) else str(e.get("path")) for e in entries]
    return f"mixture of {len(paths)}: {', '.join(paths)}"
