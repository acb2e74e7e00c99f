"""The files rewardlab writes and reads besides weights: crash-safe saving, settings files, the run record.

Crash-safe saving: a directory being written carries a marker until every file in it is complete, and single
files (reports, scored data, skipped rows) are written under a temporary name and renamed.

transformers writes a model or a checkpoint file by file, straight into its final directory, so a process killed
mid-save leaves a directory that looks like a checkpoint and loads (`Trainer` resumes from it with whatever files
are there, e.g. a fresh optimizer when `optimizer.pt` is missing). rewardlab creates `SAVING_MARKER` in the directory
before the first file and removes it after the last one (after every process has written its part). Everything in
rewardlab that loads a directory refuses a marked one, and resuming picks the newest unmarked checkpoint.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from rewardlab._compat import checkpoint_file
from rewardlab.errors import RewardlabError, type_name

logger = logging.getLogger(__name__)

RUN_RECORD_FILE = "rewardlab_run.json"
SAVING_MARKER = ".rewardlab-saving"
_CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")
_DISK_FULL = {errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)}
_being_saved: set[Path] = set()  # directories this process is saving now (see `saving`)


def is_incomplete(directory: str | os.PathLike) -> bool:
    return (Path(directory) / SAVING_MARKER).exists()


def check_complete(directory: str | os.PathLike) -> None:
    """Raise if `directory` was left half-written by an interrupted save."""
    if is_incomplete(directory):
        raise RewardlabError(
            f"{directory} is incomplete: the process writing it was stopped before it finished (it still holds "
            f"{SAVING_MARKER}); use an earlier checkpoint, or save the model again"
        )


@contextlib.contextmanager
def saving(directory: str | os.PathLike, is_writer: bool = True) -> Iterator[None]:
    """Mark `directory` as being written for the duration of the block; a full disk becomes a clear error.

    Only `is_writer` (the main process) creates and removes the marker. If the block fails, the marker stays: the
    directory is not complete. Nested blocks on one directory (a checkpoint's model save inside the checkpoint's
    save) leave the marker to the outermost.
    """
    path = Path(directory).resolve()
    outermost = is_writer and path not in _being_saved
    try:
        if outermost:
            _being_saved.add(path)
            path.mkdir(parents=True, exist_ok=True)
            (path / SAVING_MARKER).write_text("a save was started here and has not finished\n", encoding="utf-8")
        yield
        if outermost:
            (path / SAVING_MARKER).unlink(missing_ok=True)
    except OSError as e:
        if e.errno in _DISK_FULL:
            raise RewardlabError(
                f"no space left on the device while writing {directory}: free some space or choose an output_dir "
                "on another disk (earlier checkpoints are intact)"
            ) from e
        raise
    finally:
        if outermost:
            _being_saved.discard(path)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """A temporary path next to `path` to write to; renamed onto `path` when the block succeeds, removed if not.

    A reader (or a later run) then finds the previous complete file or the new complete file, never half of one.
    """
    path = Path(path)
    temporary = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        yield temporary
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


# Characters that `json.dumps(ensure_ascii=False)` leaves raw inside strings but that str.splitlines() and many
# editors treat as line breaks, which would split one JSON Lines record in two for such readers.
_LINE_BREAKS_JSON_KEEPS = {"\x85": "\\u0085", "\u2028": "\\u2028", "\u2029": "\\u2029"}


def json_line(record: Any) -> str:
    """One JSON Lines record, newline included: readable text (no ASCII escapes), one line for any line splitter."""
    text = json.dumps(record, ensure_ascii=False, default=str)
    for character, escape in _LINE_BREAKS_JSON_KEEPS.items():
        text = text.replace(character, escape)
    return text + "\n"


def last_complete_checkpoint(output_dir: str | os.PathLike) -> str | None:
    """The newest `checkpoint-N` in `output_dir` that was completely written; incomplete ones are logged and skipped."""
    directory = Path(output_dir)
    if not directory.is_dir():
        return None
    found = []
    for child in directory.iterdir():
        match = _CHECKPOINT.match(child.name)
        if match and child.is_dir():
            found.append((int(match.group(1)), child))
    for _, child in sorted(found, reverse=True):
        if is_incomplete(child):
            logger.warning("%s was not completely written (interrupted save): not resuming from it", child)
            continue
        return str(child)
    return None


def read_settings_file(
    path: str | os.PathLike,
    what: str,
    *,
    suffixes: tuple[str, ...] | None = None,
    error: type[RewardlabError] = RewardlabError,
) -> dict[str, Any]:
    """The mapping of settings in a YAML or JSON file (a `.json` file is read as JSON, anything else as YAML, which
    JSON is a subset of); an empty file is {}. Every problem is an `error` whose message starts with `what` and the
    path, e.g. "label mapping file 'x.yaml' is not valid YAML: ...". `suffixes`: the extensions accepted."""
    import yaml

    path = Path(path)
    where = f"{what} {str(path)!r}"
    if suffixes is not None and path.suffix.lower() not in suffixes:
        raise error(f"{where} must end in {', '.join(suffixes[:-1])} or {suffixes[-1]}")
    if not path.is_file():
        raise error(f"{where} does not exist")
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise error(f"cannot read {where}: {e.strerror or e}") from None
    if path.suffix.lower() == ".json":
        try:
            values = json.loads(text) if text.strip() else None
        except json.JSONDecodeError as e:
            raise error(f"{where} is not valid JSON: {e.msg} (line {e.lineno})") from None
    else:
        try:
            values = yaml.safe_load(text)
        except yaml.YAMLError as e:
            raise error(f"{where} is not valid YAML: {' '.join(str(e).split())}") from None
    if values is None:
        return {}
    if not isinstance(values, dict):
        raise error(f"{where} must hold one dict of settings (a mapping of names to values), not a {type_name(values)}")
    return values


def read_run_record(path_or_id: str) -> dict[str, Any] | None:
    """The `rewardlab_run.json` a training run saved with a model (local directory or hub id), or None if it has
    none (see `rewardlab.train.run_record`)."""
    try:
        path = checkpoint_file(path_or_id, RUN_RECORD_FILE)
    except Exception:  # offline, no such repo, ...: a model without a run record is still a model
        return None
    if path is None:
        return None
    with open(path, encoding="utf-8") as f:
        return json.load(f)
