"""The reward server's FastAPI app: routes, the API-key and body-size guard, and readable validation errors."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import Awaitable, Sequence
from typing import Any

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.security import HTTPBearer

from rewardlab._version import __version__
from rewardlab.errors import RewardlabError, first_line
from rewardlab.score.ensemble import RewardEnsemble, members_of
from rewardlab.score.reward_model import RewardModel
from rewardlab.score.shaping import check_shaping, shape_rewards
from rewardlab.serve.batcher import MicroBatcher, Scored, ServerClosedError, plain_text
from rewardlab.serve.schemas import (
    ERROR_RESPONSES,
    GetRewardRequest,
    GetRewardResponse,
    HealthResponse,
    Message,
    ScoreRequest,
    ScoreResponse,
)
from rewardlab.serve.settings import ServerSettings

logger = logging.getLogger(__name__)

OPEN_PATHS = ("/health",)  # reachable without the API key, so load balancers and orchestrators can probe
DESCRIPTION = (
    "Rewards from a rewardlab reward model. `POST /score` takes `texts`, or `prompts` with `completions`; "
    "`POST /get_reward` is OpenRLHF's remote reward model protocol. Concurrent requests are micro-batched."
)


def create_app(reward_model: RewardModel | RewardEnsemble, settings: ServerSettings | None = None) -> FastAPI:
    """The reward server for `reward_model`. `app.state.batcher` is its `MicroBatcher` (with `stats`).

    Use it with uvicorn (`rewardlab serve` does), or in-process with `fastapi.testclient.TestClient` / httpx.
    """
    settings = settings or ServerSettings()
    check_shaping(reward_model, settings.normalize, settings.uncertainty_penalty, flags=True)
    batcher = MicroBatcher(
        reward_model,
        max_batch_tokens=settings.max_tokens_per_batch,
        max_batch_items=settings.max_batch_items,
        max_wait_ms=settings.max_wait_ms,
    )

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        batcher.start()
        yield
        # uvicorn gets here after in-flight requests have finished; joining the worker in a helper thread keeps the
        # event loop free while it finishes whatever is still queued.
        await asyncio.to_thread(batcher.close)

    app = FastAPI(title="rewardlab reward server", version=__version__, description=DESCRIPTION, lifespan=lifespan)
    app.state.batcher = batcher
    app.state.settings = settings
    app.state.reward_model = reward_model
    app.add_middleware(_Guard, api_key=settings.api_key, max_request_bytes=settings.max_request_bytes)
    app.add_exception_handler(RequestValidationError, _validation_error)
    _add_routes(app, reward_model, batcher, settings)
    return app


def _add_routes(
    app: FastAPI, reward_model: RewardModel | RewardEnsemble, batcher: MicroBatcher, settings: ServerSettings
) -> None:
    # The middleware enforces the key on every path; this only declares the scheme in the OpenAPI spec.
    secured = [Depends(HTTPBearer(auto_error=False))] if settings.api_key else []
    # An ensemble's members were trained alike: the first one's tokenizer, device and max_length stand for all.
    described = members_of(reward_model)[0]
    pad_token = getattr(described.tokenizer, "pad_token", None)
    normalization = reward_model.normalization if settings.normalize else None

    def finish(scored: Scored) -> tuple[list[float | None], list[float | None] | None]:
        """Rewards as served (normalized, minus the uncertainty penalty), and the stds in the same units."""
        rewards, stds = scored
        return shape_rewards(
            rewards, stds, normalization=normalization, uncertainty_penalty=settings.uncertainty_penalty
        )

    @app.get("/health", response_model=HealthResponse, tags=["server"])
    async def health() -> HealthResponse:
        """Whether the server is up, which model it serves, and the batching counters."""
        return HealthResponse(
            status="ok",
            model=settings.model_name,
            device=str(described.device),
            max_length=described.max_length,
            normalize=settings.normalize,
            uncertainty_penalty=settings.uncertainty_penalty,
            version=__version__,
            stats=batcher.stats,
        )

    @app.post("/score", response_model=ScoreResponse, responses=ERROR_RESPONSES, dependencies=secured, tags=["score"])
    async def score(body: ScoreRequest) -> ScoreResponse:
        """Rewards of whole texts, or of completions to prompts (strings, or message lists through the chat
        template), in request order."""
        if body.texts is not None:
            _check_limits(settings, texts=body.texts)
            scored = await _scored(batcher.score_texts(body.texts))
        else:
            prompts = [_as_item(p) for p in body.prompts]
            completions = [_as_item(c) for c in body.completions]
            _check_limits(settings, prompts=prompts, completions=completions)
            scored = await _scored(batcher.score(prompts, completions))
        rewards, stds = finish(scored)
        return ScoreResponse(rewards=rewards, stds=stds)

    @app.post(
        "/get_reward", response_model=GetRewardResponse, responses=ERROR_RESPONSES, dependencies=secured, tags=["score"]
    )
    async def get_reward(body: GetRewardRequest) -> GetRewardResponse:
        """OpenRLHF's remote reward model endpoint: each query is a whole text. Pad tokens around a query (left in by
        OpenRLHF versions that decode padded sequences) are removed first."""
        queries = [_strip_token(q, pad_token) for q in body.query]
        _check_limits(settings, query=queries)
        rewards, stds = finish(await _scored(batcher.score_texts(queries)))
        return GetRewardResponse(
            rewards=rewards, scores=rewards, extra_logs={} if stds is None else {"reward_std": stds}
        )


async def _scored(pending: Awaitable[Scored]) -> Scored:
    try:
        return await pending
    except RewardlabError as e:
        raise HTTPException(422, f"cannot score this request: {e}") from None
    except ServerClosedError as e:
        raise HTTPException(503, str(e)) from None
    except Exception as e:
        raise HTTPException(500, f"scoring failed: {type(e).__name__}: {first_line(e)}") from None


def _as_item(item: str | list[Message]) -> Any:
    return item if isinstance(item, str) else [m.model_dump(exclude_unset=True) for m in item]


def _strip_token(text: str, token: str | None) -> str:
    if not token:
        return text
    while text.startswith(token):
        text = text[len(token) :]
    while text.endswith(token):
        text = text[: -len(token)]
    return text


def _check_limits(settings: ServerSettings, **fields: list[Any]) -> None:
    """413 for a request over --max_items_per_request or --max_text_chars (checked before it joins a batch)."""
    n = len(next(iter(fields.values())))
    if n > settings.max_items_per_request:
        raise HTTPException(
            413,
            f"{n} items in one request, over the limit of {settings.max_items_per_request} (--max_items_per_request)",
        )
    for name, values in fields.items():
        for i, value in enumerate(values):
            chars = len(plain_text(value))
            if chars > settings.max_text_chars:
                raise HTTPException(
                    413,
                    f"{name}[{i}] has {chars} characters, over the limit of {settings.max_text_chars} "
                    "(--max_text_chars)",
                )


async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    """One readable line (`texts[2]: Input should be a valid string`) instead of FastAPI's nested list."""
    errors = list(exc.errors())
    if any(e.get("type") == "json_invalid" for e in errors):
        reason = next(e.get("ctx", {}).get("error", "") for e in errors if e.get("type") == "json_invalid")
        return JSONResponse({"detail": f"the request body is not valid JSON: {reason}"}, status_code=400)
    parts: list[str] = []
    for e in errors:
        loc = tuple(e.get("loc", ()))
        message = str(e.get("msg", "")).removeprefix("Value error, ")
        if loc == ("body",) and e.get("type") in ("model_attributes_type", "dict_type"):
            message = "the request body must be a JSON object, sent with Content-Type: application/json"
        elif loc and loc[-1] in _ITEM_BRANCHES:  # an item that is neither branch of `str | list[Message]`
            message = "should be a string or a list of messages ({'role': ..., 'content': ...})"
        where = _location(loc)
        part = f"{where}: {message}" if where else message
        if part not in parts:
            parts.append(part)
    shown = "; ".join(parts[:3]) + (f"; and {len(parts) - 3} more" if len(parts) > 3 else "")
    summary = [{"loc": list(e.get("loc", ())), "msg": e.get("msg"), "type": e.get("type")} for e in errors[:20]]
    return JSONResponse({"detail": shown, "errors": summary}, status_code=422)


_ITEM_BRANCHES = ("str", "list[Message]")  # how pydantic names the alternatives of `Item` in an error location


def _location(loc: Sequence[Any]) -> str:
    """('body', 'prompts', 1, 'list[Message]', 0, 'role') -> 'prompts[1][0].role'."""
    out = ""
    for part in loc[1:] if loc and loc[0] == "body" else loc:
        if part in _ITEM_BRANCHES:
            continue
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


class _Guard:
    """ASGI middleware: the API key on every path but /health (401), then the body size limit (413).

    The body is read here, counting bytes as they arrive, so an oversized or chunked body is refused before any of
    it is parsed; the app then gets the buffered body.
    """

    def __init__(self, app: Any, api_key: str | None, max_request_bytes: int):
        self.app = app
        self.expected = f"Bearer {api_key}".encode() if api_key else None
        self.max_bytes = max_request_bytes

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = dict(scope.get("headers") or [])
        if self.expected and scope["path"] not in OPEN_PATHS:
            given = headers.get(b"authorization", b"")
            if not secrets.compare_digest(given, self.expected):
                problem = "wrong API key" if given else "missing API key"
                return await _reply(
                    scope,
                    send,
                    401,
                    f"{problem}: send the header 'Authorization: Bearer <key>'",
                    {"WWW-Authenticate": "Bearer"},
                )
        declared = headers.get(b"content-length")
        if declared is not None:
            if not declared.isdigit():
                return await _reply(scope, send, 400, "bad Content-Length header")
            if int(declared) > self.max_bytes:
                return await _reply(scope, send, 413, self._too_large(int(declared)))
        if scope["method"] not in ("POST", "PUT", "PATCH"):
            return await self.app(scope, receive, send)
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                return await _reply(scope, send, 413, self._too_large(size, more=True))
            chunks.append(chunk)
            if not message.get("more_body"):
                break
        body = b"".join(chunks)
        delivered = False

        async def replay() -> dict:
            nonlocal delivered
            if not delivered:
                delivered = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()  # after the body: wait for the disconnect, as the server would

        await self.app(scope, replay, send)

    def _too_large(self, size: int, more: bool = False) -> str:
        at_least = "at least " if more else ""
        return f"the request body is {at_least}{size} bytes, over the limit of {self.max_bytes} (--max_request_bytes)"


async def _reply(scope: dict, send: Any, status: int, detail: str, headers: dict[str, str] | None = None) -> None:
    async def no_body() -> dict:
        return {"type": "http.disconnect"}

    await JSONResponse({"detail": detail}, status_code=status, headers=headers)(scope, no_body, send)
