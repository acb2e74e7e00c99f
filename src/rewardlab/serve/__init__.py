"""The HTTP reward server (FastAPI + uvicorn) around one `RewardModel` (or `RewardEnsemble`), `rewardlab serve`.

Endpoints (JSON in, JSON out; the full schema is at `/openapi.json`, an interactive page at `/docs`):

- `POST /score`: `{"texts": [...]}` or `{"prompts": [...], "completions": [...]}` (strings, or message lists for
  conversations) -> `{"rewards": [...]}`, scored exactly as `RewardModel.score_texts` / `RewardModel.score`.
- `POST /get_reward`: OpenRLHF's remote reward model protocol (`--remote_rm_url http://host:port/get_reward`):
  `{"query": [...], "prompts": [...], "labels": [...]}` -> `{"rewards": [...], "scores": [...], "extra_logs": {}}`.
  Each query is a whole text (prompt + response), scored as `score_texts`; `prompts`, `labels` and any other keys
  are accepted and ignored.
- `GET /health`: status, model, and batching counters; never needs the API key.

An ensemble (heads, or several models) also returns each reward's standard deviation (`stds`; OpenRLHF's
`extra_logs.reward_std`), and `--uncertainty_penalty k` serves the conservative reward `mean - k * std`.

Concurrent requests are micro-batched: `MicroBatcher` queues them, and one worker thread (the only one that touches
the model, which is not thread-safe) takes whole requests from the queue until a token budget or a short wait runs
out, scores them in one model call, and hands each request its own slice. A request that makes a batch fail is
found by scoring that batch's requests one by one, so only it gets the error. A reward of `null` is an item the
model dropped (over `max_length` with `overlength_policy="drop"`).

- `settings`: `ServerSettings`, every field a `rewardlab serve` flag;
- `schemas`: the pydantic request and response models (they make `/openapi.json`);
- `batcher`: `MicroBatcher`, the one thread that scores, several requests per model call;
- `app`: `create_app`, the routes, the API-key and size guard, readable validation errors.

Importing any of it without the `serve` extra raises `MissingServeExtraError`, which says what to install.
"""

from __future__ import annotations

from rewardlab.errors import MissingExtraError, first_line


class MissingServeExtraError(MissingExtraError):
    """fastapi/uvicorn are not installed. Both a RewardlabError (the CLI prints one line) and an ImportError."""


try:
    import uvicorn  # noqa: F401 (the command imports it; checked here so that every part of serve says why it failed)
    from fastapi import FastAPI  # noqa: F401
    from pydantic import BaseModel  # noqa: F401
except ImportError as e:
    raise MissingServeExtraError(
        f"`rewardlab serve` needs fastapi and uvicorn: pip install 'rewardlab[serve]' ({first_line(e)})"
    ) from e

from rewardlab.serve.app import create_app  # noqa: E402
from rewardlab.serve.settings import API_KEY_ENV, ServerSettings  # noqa: E402

__all__ = ["API_KEY_ENV", "MissingServeExtraError", "ServerSettings", "create_app"]
