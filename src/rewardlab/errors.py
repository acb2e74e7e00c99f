"""User-facing errors. The CLI prints these as one line; anything else is a bug and keeps its traceback."""

from __future__ import annotations


class RewardlabError(Exception):
    """A problem with the user's input (data, path, flag, model) that they can fix."""


class InvalidRowError(RewardlabError):
    """A data row that cannot be used, with the row index and the field at fault."""

    def __init__(self, index: int | None, field: str | None, reason: str, dataset: str | None = None):
        self.index = index
        self.field = field
        self.reason = reason
        self.dataset = dataset
        where = []
        if dataset:
            where.append(f"{dataset} dataset")
        if index is not None:
            where.append(f"row {index}")
        if field:
            where.append(f"field '{field}'")
        super().__init__(f"{', '.join(where) or 'row'}: {reason}")


def first_line(error: BaseException) -> str:
    """The first line of a library's error message (or its type), to quote inside a one-line RewardlabError."""
    return (str(error).strip().splitlines() or [type(error).__name__])[0]
