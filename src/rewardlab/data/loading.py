"""Load preference data from a local file, a local directory or the Hugging Face Hub; split off an eval set.

Every failure a user can cause (missing path, unknown extension, malformed JSON lines, unreachable hub id,
missing split) becomes a `RewardlabError` whose message says what to do, so the CLI can print it as one line.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import logging
import math
import os
from pathlib import Path
from typing import Any

import datasets
from datasets import Dataset, DatasetDict, IterableDataset, IterableDatasetDict

from rewardlab.errors import RewardlabError, first_line

logger = logging.getLogger(__name__)

# Extension -> `datasets` builder. Longest suffixes first so `.jsonl.gz` is not read as `.gz`.
FILE_BUILDERS: dict[str, str] = {
    ".jsonl.gz": "json",
    ".json.gz": "json",
    ".jsonl": "json",
    ".json": "json",
    ".parquet": "parquet",
    ".csv": "csv",
}

AnyDataset = Dataset | IterableDataset
AnyDatasetDict = DatasetDict | IterableDatasetDict


def file_builder(path: str | os.PathLike) -> str | None:
    """The `datasets` builder for a data file, from its extension; None for an unsupported extension."""
    name = str(path).lower()
    for suffix, builder in FILE_BUILDERS.items():
        if name.endswith(suffix):
            return builder
    return None


def _supported_extensions() -> str:
    return ", ".join(FILE_BUILDERS)


def looks_like_local_path(name: str) -> bool:
    """True for strings that can only mean a local path (a hub id is `name` or `org/name`, no extension)."""
    return (
        name.startswith(("/", "./", "../", "~", ".\\", "..\\"))
        or os.path.isabs(name)
        or name.count("/") > 1
        or "\\" in name
        or file_builder(name) is not None
    )


def _open_text(path: Path):
    if str(path).lower().endswith(".gz"):
        return gzip.open(path, "rt", encoding="utf-8")
    return open(path, encoding="utf-8")


def find_json_error(path: str | os.PathLike) -> str | None:
    """Describe where `path` first stops being JSON rows (one list of objects, or one object per line); None if it is.

    Checked before `datasets` reads the file: pyarrow's JSON reader crashes the process (a segmentation fault) on
    some inputs that are not rows, e.g. a line holding just `null`.
    """
    path = Path(path)
    try:
        with _open_text(path) as f:
            head = f.read(4096).lstrip()
            f.seek(0)
            if not head:
                return "it is empty"
            if head.startswith("["):
                # A single JSON document (a list of rows): the decoder knows the line of the error.
                try:
                    document = json.loads(f.read())
                except json.JSONDecodeError as e:
                    return f"line {e.lineno}: not valid JSON ({e.msg})"
                if not isinstance(document, list):
                    return f"a JSON {type(document).__name__}, not a list of objects"
                for number, value in enumerate(document):
                    if not isinstance(value, dict):
                        return f"item {number} of the list is a JSON {type(value).__name__}, not an object"
                return None
            for number, line in enumerate(f, start=1):
                if not line.strip():
                    continue
                try:
                    value = json.loads(line)
                except json.JSONDecodeError as e:
                    return f"line {number}: not valid JSON ({e.msg}); each line must hold one JSON object"
                if not isinstance(value, dict):
                    kind = type(value).__name__
                    return f"line {number}: a JSON {kind}, not an object; each line must hold one JSON object"
    except UnicodeDecodeError as e:
        return f"it is not UTF-8 text ({e.reason})"
    except (OSError, EOFError) as e:
        return f"it cannot be read ({first_line(e)})"
    return None


def find_encoding_error(path: str | os.PathLike) -> str | None:
    """Where a text data file first stops being UTF-8; None if it is UTF-8 throughout.

    pyarrow's JSON and CSV readers store invalid bytes as they are, so without this check the file "loads" and a
    `UnicodeDecodeError` surfaces later, deep inside a library, when a row is first read.
    """
    path = Path(path)
    opener = gzip.open if str(path).lower().endswith(".gz") else open
    try:
        with opener(path, "rb") as f:
            for number, line in enumerate(f, start=1):
                try:
                    line.decode("utf-8")
                except UnicodeDecodeError as e:
                    return (
                        f"line {number} is not UTF-8 text (byte {line[e.start]:#04x} at column {e.start + 1}); "
                        "save the file as UTF-8"
                    )
    except (OSError, EOFError) as e:
        return f"it cannot be read ({first_line(e)})"
    return None


@contextlib.contextmanager
def _quiet_datasets_errors():
    """Silence `datasets`' own ERROR log while it reads local files: a failure is re-raised with a clearer
    message, and the user should see that one line, not two."""
    root = logging.getLogger("datasets")
    level = root.level
    root.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        root.setLevel(level)


def _load_file(path: Path, builder: str, streaming: bool) -> AnyDatasetDict:
    if path.stat().st_size == 0:
        raise RewardlabError(f"data file {path} is empty: it needs one preference pair per row")
    if builder in ("json", "csv"):
        problem = find_encoding_error(path) or (find_json_error(path) if builder == "json" else None)
        if problem is not None:
            raise RewardlabError(f"cannot read {path}: {problem}")
    try:
        with _quiet_datasets_errors():
            return datasets.load_dataset(builder, data_files=str(path), streaming=streaming)
    except Exception as e:  # datasets/pyarrow raise many types; all of them mean "cannot parse this file"
        cause = e.__cause__ or e.__context__ or e
        kind = {"json": "JSON", "parquet": "Parquet", "csv": "CSV"}[builder]
        raise RewardlabError(
            f"cannot read {path} as {kind}: {first_line(cause)}; "
            f"check that the file is {kind} with one preference pair per row"
        ) from e


def _is_saved_dataset(directory: Path) -> bool:
    """A directory written by `Dataset.save_to_disk` / `DatasetDict.save_to_disk`."""
    return (directory / "dataset_dict.json").is_file() or (directory / "state.json").is_file()


def _load_directory(directory: Path, streaming: bool) -> AnyDatasetDict:
    if _is_saved_dataset(directory):
        try:
            loaded = datasets.load_from_disk(str(directory))
        except (OSError, ValueError) as e:
            raise RewardlabError(f"cannot load the saved dataset in {directory}: {first_line(e)}") from e
        if isinstance(loaded, Dataset):
            # A saved single Dataset behaves like a single data file: it is the train split.
            loaded = DatasetDict({"train": loaded})
        if streaming:
            loaded = IterableDatasetDict({name: ds.to_iterable_dataset() for name, ds in loaded.items()})
        return loaded
    data_files = [p for p in directory.rglob("*") if p.is_file() and file_builder(p)]
    if not data_files:
        raise RewardlabError(
            f"directory {directory} holds no data files ({_supported_extensions()}) and was not written by "
            "save_to_disk: point --dataset_name at a data file or at such a directory"
        )
    builders = {file_builder(p) for p in data_files}
    if len(builders) > 1:
        raise RewardlabError(
            f"directory {directory} mixes data file types ({', '.join(sorted(builders))}): keep one type per directory"
        )
    try:
        # `datasets` names the splits after the files (train.jsonl, test.jsonl, ...) and reads .gz files too.
        with _quiet_datasets_errors():
            return datasets.load_dataset(str(directory), streaming=streaming)
    except Exception as e:  # same reasoning as in _load_file
        for p in data_files:
            if file_builder(p) == "json" and (problem := find_json_error(p)) is not None:
                raise RewardlabError(f"cannot read {p}: {problem}") from e
        cause = e.__cause__ or e.__context__ or e
        raise RewardlabError(f"cannot read the data files in {directory}: {first_line(cause)}") from e


def _load_hub(name: str, config_name: str | None, streaming: bool) -> AnyDatasetDict:
    try:
        loaded = datasets.load_dataset(name, config_name, streaming=streaming)
    except datasets.exceptions.DatasetNotFoundError as e:
        raise RewardlabError(
            f"no dataset {name!r} on the Hugging Face Hub (or it is private or gated: log in with "
            "`hf auth login`); check the name, or pass a local file or directory"
        ) from e
    except ConnectionError as e:
        raise RewardlabError(
            f"cannot reach the Hugging Face Hub to load dataset {name!r} ({first_line(e)}); "
            "check your network, or download the data and pass a local file or directory"
        ) from e
    except ValueError as e:
        # Raised for an unknown config name, among others; datasets' message lists the valid ones.
        raise RewardlabError(f"cannot load dataset {name!r}: {first_line(e)}") from e
    if isinstance(loaded, Dataset | IterableDataset):
        return (IterableDatasetDict if streaming else DatasetDict)({"train": loaded})
    return loaded


def load_preference_data(
    name_or_path: str | os.PathLike,
    *,
    config_name: str | None = None,
    split: str | None = None,
    streaming: bool = False,
) -> AnyDataset | AnyDatasetDict:
    """Load preference data from a local file or directory, or a Hugging Face Hub dataset id.

    Args:
        name_or_path: a data file (`.json`, `.jsonl`, `.jsonl.gz`, `.json.gz`, `.parquet`, `.csv`), a
            directory (written by `save_to_disk`, or holding data files whose names give the splits, e.g.
            `train.jsonl` and `test.jsonl`), or a hub id such as `trl-lib/ultrafeedback_binarized`.
        config_name: the hub dataset's configuration (ignored for local data).
        split: return only this split. A single file, or a saved single `Dataset`, is the split `train`.
        streaming: return iterable datasets that read rows on demand.

    Returns:
        A `DatasetDict` (`IterableDatasetDict` when streaming) when `split` is None, else that one split.
    """
    name = os.fspath(name_or_path)
    path = Path(name).expanduser()
    if path.is_dir():
        loaded = _load_directory(path, streaming)
    elif path.is_file():
        builder = file_builder(path)
        if builder is None:
            raise RewardlabError(
                f"cannot tell the format of {path} from its extension: use one of {_supported_extensions()}"
            )
        loaded = _load_file(path, builder, streaming)
    elif looks_like_local_path(name):
        raise RewardlabError(f"no such file or directory: {name}; check the path to the dataset")
    else:
        loaded = _load_hub(name, config_name, streaming)
    if split is None:
        return loaded
    return select_split(loaded, split, source=name)


def select_split(data: AnyDatasetDict, split: str, *, source: str | None = None) -> AnyDataset:
    """`data[split]`, or a `RewardlabError` that lists the splits there are."""
    if split not in data:
        where = f" in {source}" if source else ""
        available = ", ".join(data) or "none"
        raise RewardlabError(f"no split {split!r}{where}; the splits are: {available}")
    return data[split]


def split_train_eval(
    data: AnyDataset | AnyDatasetDict,
    *,
    train_split: str = "train",
    eval_split: str | None = "test",
    eval_fraction: float = 0.0,
    seed: int = 42,
) -> tuple[AnyDataset, AnyDataset | None]:
    """Pick the train and eval sets.

    The named splits are used when they exist. When there is no `eval_split`, `eval_fraction` of the train
    rows (rounded up) are held out at random with `seed`; with `eval_fraction=0` there is no eval set.
    """
    if not 0.0 <= eval_fraction < 1.0:
        raise RewardlabError(f"eval_fraction must be at least 0 and below 1, got {eval_fraction}")
    if isinstance(data, DatasetDict | IterableDatasetDict):
        train = select_split(data, train_split)
        if eval_split and eval_split in data and eval_split != train_split:
            if eval_fraction > 0:
                logger.warning(
                    "using the dataset's %r split for evaluation; eval_fraction=%s is ignored",
                    eval_split,
                    eval_fraction,
                )
            return train, data[eval_split]
    else:
        train = data
    if eval_fraction == 0:
        return train, None
    return hold_out(train, eval_fraction, seed)


def hold_out(train: AnyDataset, eval_fraction: float, seed: int) -> tuple[Dataset, Dataset]:
    """Hold out `ceil(eval_fraction * rows)` rows at random, reproducibly for a given `seed`."""
    if isinstance(train, IterableDataset):
        raise RewardlabError(
            "eval_fraction cannot split a streamed dataset: drop --streaming, or give the data an eval split"
        )
    rows = len(train)
    n_eval = math.ceil(eval_fraction * rows)
    if n_eval == 0 or n_eval >= rows:
        raise RewardlabError(
            f"eval_fraction={eval_fraction} of {rows} rows leaves {n_eval} for eval and {rows - n_eval} "
            "for training; both need at least one row: choose another eval_fraction"
        )
    parts = train.train_test_split(test_size=n_eval, shuffle=True, seed=seed)
    return parts["train"], parts["test"]


def describe(data: Any) -> str:
    """A short `name: rows` summary of a dataset or dict of datasets, for logs."""
    if isinstance(data, DatasetDict | IterableDatasetDict):
        return ", ".join(f"{k}: {describe(v)}" for k, v in data.items())
    if isinstance(data, Dataset):
        return f"{len(data)} rows"
    return "streamed"
