"""User-facing errors. The CLI prints these as one line; anything else is a bug and keeps its traceback."""

from __future__ import annotations

from typing import Any

# The reason code of an `InvalidRowError` made without one.
INVALID_ROW = "invalid row"


class RewardlabError(ValueError):
    """A problem with the user's input (data, path, flag, model) that they can fix.

    It is a `ValueError`, the class TRL and most Python libraries raise for a bad value, so `except ValueError` in
    code written for TRL keeps catching these; the subclasses below are also the class TRL raises in their case.
    """


class RewardlabTypeError(RewardlabError, TypeError):
    """An argument of the wrong type (e.g. `train_dataset` that is not a `Dataset`)."""


class MissingExtraError(RewardlabError, ImportError):
    """An optional dependency is not installed; the message names the extra that installs it."""


class UsageError(RewardlabError):
    """A bad command line or config file."""


class InvalidRowError(RewardlabError):
    """A data row that cannot be used, with the row index and the field at fault.

    `code` is a short reason (e.g. "empty value"): the key under which skipped rows are counted.
    """

    def __init__(
        self,
        index: int | None,
        field: str | None,
        reason: str,
        code: str = INVALID_ROW,
        dataset: str | None = None,
    ):
        self.index = index
        self.field = field
        self.reason = reason
        self.dataset = dataset
        self.code = code
        where = []
        if dataset:
            where.append(f"{dataset} dataset")
        if index is not None:
            where.append(f"row {index}")
        if field:
            where.append(f"field '{field}'")
        super().__init__(f"{', '.join(where) or 'row'}: {reason}")

    def at(self, index: int | None = None, dataset: str | None = None) -> InvalidRowError:
        """The same error for row `index` (when given) of the `dataset` (when given)."""
        return InvalidRowError(
            self.index if index is None else index,
            self.field,
            self.reason,
            self.code,
            self.dataset if dataset is None else dataset,
        )


def first_line(error: BaseException) -> str:
    """The first line of a library's error message (or its type), to quote inside a one-line RewardlabError."""
    return (str(error).strip().splitlines() or [type(error).__name__])[0]


def type_name(value: Any) -> str:
    """The type of `value` as an error message names it: `None` for None, else the class name."""
    return "None" if value is None else type(value).__name__
