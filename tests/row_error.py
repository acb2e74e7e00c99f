"""The checks every invalid-row test makes on an `InvalidRowError` raised for row 17."""

from __future__ import annotations

from rewardlab.errors import InvalidRowError


def check_row_error(error: InvalidRowError, field: str, code: str, words: list[str], max_reason: int) -> None:
    """Names row 17 and `field`, has reason `code`, says each of `words`, and fits one log line."""
    message = str(error)
    assert error.index == 17 and "row 17" in message
    assert error.field == field and f"'{field}'" in message
    assert error.code == code
    for word in words:
        assert word in message, (word, message)
    assert len(error.reason) < max_reason  # short enough for one log line
