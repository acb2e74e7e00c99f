"""Plain-text rows as conversations: a string prompt becomes the user's turn and each string response the assistant's.

RewardBench, RewardBench 2, RM-Bench and JudgeBench give a prompt and responses as plain strings and score each
response as the chat `[user: prompt, assistant: response]` through the reward model's chat template (reward-bench
`scripts/run_v2.py`, JudgeBench's reward-model judges). A model without a chat template reads the same row as plain
text, prompt followed by response, exactly as training reads a standard row with an explicit prompt.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

RESPONSE_FIELDS = ("chosen", "rejected", "responses")


def as_conversation(row: Mapping[str, Any]) -> dict[str, Any]:
    """`row` with a string `prompt` as `[{"role": "user", ...}]` and every string response (in `chosen`, `rejected`
    or `responses`, single or in lists) as `[{"role": "assistant", ...}]`. A row without a string prompt (implicit
    prompt, or already messages) is returned unchanged."""
    if not isinstance(row.get("prompt"), str):
        return dict(row)
    out = dict(row) | {"prompt": [{"role": "user", "content": row["prompt"]}]}
    for field in RESPONSE_FIELDS:
        value = row.get(field)
        if isinstance(value, str):
            out[field] = _assistant(value)
        elif isinstance(value, list) and all(isinstance(item, str) for item in value):
            out[field] = [_assistant(item) for item in value]
    return out


def _assistant(text: str) -> list[dict[str, str]]:
    return [{"role": "assistant", "content": text}]
