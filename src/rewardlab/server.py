"""`rewardlab serve`: an HTTP reward server (FastAPI + uvicorn) around one `RewardModel` (or `RewardEnsemble`).

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
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import math
import os
import queue
import secrets
import signal
import threading
import time
from collections.abc import Awaitable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from rewardlab import __version__
from rewardlab.errors import RewardlabError, first_line


class MissingServeExtraError(RewardlabError, ImportError):
    """fastapi/uvicorn are not installed. Both a RewardlabError (the CLI prints one line) and an ImportError."""


try:
    import uvicorn
    from fastapi import Depends, FastAPI, HTTPException, Request
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse
    from fastapi.security import HTTPBearer
    from pydantic import BaseModel, ConfigDict, Field, model_validator
except ImportError as e:
    raise MissingServeExtraError(
        f"`rewardlab serve` needs fastapi and uvicorn: pip install 'rewardlab[serve]' ({first_line(e)})"
    ) from e

if TYPE_CHECKING:
    from rewardlab.scoring import RewardModel

logger = logging.getLogger(__name__)

API_KEY_ENV = "REWARDLAB_API_KEY"
OPEN_PATHS = ("/health",)
DESCRIPTION = (
    "Rewards from a rewardlab reward model. `POST /score` takes `texts`, or `prompts` with `completions`; "
    "`POST /get_reward` is OpenRLHF's remote reward model protocol. Concurrent requests are micro-batched."
)  # reachable without the API key, so load balancers and orchestrators can probe


@dataclass
class ServerSettings:
    """What `create_app` needs besides the model; every field is a `rewardlab serve` flag of the same name."""

    model_name: str = "reward-model"
    api_key: str | None = field(default=None, repr=False)
    max_batch_tokens: int = 8192
    max_batch_items: int = 1024
    max_wait_ms: float = 5.0
    max_items_per_request: int = 8192
    max_text_chars: int = 200_000
    max_request_bytes: int = 64 * 1024 * 1024
    normalize: bool = False
    uncertainty_penalty: float = 0.0

    def __post_init__(self):
        for name in ("max_batch_tokens", "max_batch_items", "max_items_per_request", "max_text_chars"):
            if getattr(self, name) < 1:
                raise RewardlabError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.max_wait_ms < 0 or self.max_request_bytes < 1:
            raise RewardlabError("max_wait_ms must be >= 0 and max_request_bytes >= 1")
        if not math.isfinite(self.uncertainty_penalty) or self.uncertainty_penalty < 0:
            raise RewardlabError(f"uncertainty_penalty must be a finite number >= 0, got {self.uncertainty_penalty}")
        if self.api_key == "":
            self.api_key = None


# ---------------------------------------------------------------------------------------------------------------------
# Request and response schemas (they make /openapi.json and /docs describe the API).


class Message(BaseModel):
    """One chat message, as the model's chat template takes it (other keys, e.g. `tool_calls`, are passed on)."""

    model_config = ConfigDict(extra="allow")
    role: str
    content: Any = None


Item = str | list[Message]


class ScoreRequest(BaseModel):
    """Either `texts`, or `prompts` with one `completion` each (both strings, or both message lists)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"texts": ["Human: What color is the sky?\n\nAssistant: Blue."]},
                {"prompts": ["What color is the sky?"], "completions": [" Blue."]},
                {
                    "prompts": [[{"role": "user", "content": "What color is the sky?"}]],
                    "completions": [[{"role": "assistant", "content": "Blue."}]],
                },
            ]
        },
    )
    texts: list[str] | None = Field(None, min_length=1, description="Whole texts, each scored on its own.")
    prompts: list[Item] | None = Field(None, min_length=1, description="Prompts: strings or message lists.")
    completions: list[Item] | None = Field(None, min_length=1, description="One completion per prompt.")

    @model_validator(mode="after")
    def _one_form(self) -> ScoreRequest:
        if self.texts is not None:
            if self.prompts is not None or self.completions is not None:
                raise ValueError("give either texts, or prompts and completions, not both")
            return self
        if self.prompts is None and self.completions is None:
            raise ValueError("give texts, or prompts and completions")
        if self.prompts is None or self.completions is None:
            missing = "prompts" if self.prompts is None else "completions"
            raise ValueError(f"{missing} is missing: prompts and completions go together")
        if len(self.prompts) != len(self.completions):
            raise ValueError(
                f"{len(self.prompts)} prompts but {len(self.completions)} completions: give one prompt per completion"
            )
        for i, (prompt, completion) in enumerate(zip(self.prompts, self.completions, strict=True)):
            if isinstance(prompt, str) != isinstance(completion, str):
                raise ValueError(f"prompts[{i}] and completions[{i}] must both be strings or both be message lists")
        return self


class ScoreResponse(BaseModel):
    rewards: list[float | None] = Field(description="One reward per item, in request order (null: dropped).")
    stds: list[float | None] | None = Field(
        None, description="An ensemble's standard deviation of each reward, in the units of `rewards` (else null)."
    )


class GetRewardRequest(BaseModel):
    """OpenRLHF's remote reward model request. Only `query` is used."""

    model_config = ConfigDict(extra="allow", json_schema_extra={"examples": [{"query": ["Hello world"]}]})
    query: list[str] = Field(min_length=1, description="Whole texts (prompt + response) to score.")
    prompts: list[Any] | None = Field(None, description="Accepted and ignored (the prompts are inside `query`).")
    labels: list[Any] | None = Field(None, description="Accepted and ignored.")


class GetRewardResponse(BaseModel):
    rewards: list[float | None] = Field(description="One reward per query, in request order.")
    scores: list[float | None] = Field(description="The same as `rewards` (OpenRLHF's dynamic filtering reads it).")
    # OpenRLHF concatenates every extra_logs value across requests, so a value must be one number per query.
    extra_logs: dict[str, list[float | None]] = Field(
        default_factory=dict, description="`reward_std`: an ensemble's standard deviation of each reward."
    )


class BatchStats(BaseModel):
    requests: int = Field(0, description="Requests scored (or failed) by the batching worker.")
    items: int = Field(0, description="Items (texts or prompt/completion pairs) in those requests.")
    batches: int = Field(0, description="Micro-batches formed; requests / batches is the mean requests per batch.")
    model_calls: int = Field(0, description="RewardModel.score_texts / score calls.")
    fallbacks: int = Field(0, description="Batches that failed and were re-scored one request at a time.")
    failed_requests: int = Field(0, description="Requests answered with an error by the model.")


class HealthResponse(BaseModel):
    status: Literal["ok"]
    model: str
    device: str
    max_length: int | None
    normalize: bool
    uncertainty_penalty: float
    version: str
    stats: BatchStats


class ErrorResponse(BaseModel):
    detail: str = Field(description="What is wrong, in one line.")


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorResponse, "description": "The body is not valid JSON."},
    401: {"model": ErrorResponse, "description": "Missing or wrong API key (when the server has one)."},
    413: {"model": ErrorResponse, "description": "Over a size limit (body bytes, items, characters)."},
    422: {"model": ErrorResponse, "description": "Wrong shape or types, or an item the model cannot score."},
    503: {"model": ErrorResponse, "description": "The server is shutting down."},
}


# ---------------------------------------------------------------------------------------------------------------------
# Micro-batching.


class ServerClosedError(RuntimeError):
    """The batcher was closed (the server is shutting down) before this request was queued."""


TEXTS, PAIRS = "texts", "pairs"
Scored = tuple[list[float], list[float] | None]  # rewards, and an ensemble's standard deviations


@dataclass(eq=False)
class _Job:
    kind: str  # TEXTS: `a` are texts; PAIRS: `a` prompts, `b` completions
    a: list[Any]
    b: list[Any] | None
    future: asyncio.Future
    loop: asyncio.AbstractEventLoop
    queued_at: float = field(default_factory=time.monotonic)
    tokens: int | None = None  # counted by the worker when it first sees the job

    def __len__(self) -> int:
        return len(self.a)


class MicroBatcher:
    """Scores requests from many coroutines on one worker thread, several requests per model call.

    The worker takes the oldest queued request, then keeps adding queued requests while the batch stays within
    `max_batch_tokens` (estimated) tokens and `max_batch_items` items, waiting for more to arrive until the oldest
    request has waited `max_wait_ms`. A request is never split, so one larger than the budget is a batch of its
    own. While the model is busy, new requests queue up, so under load batches fill without any added wait.
    `max_batch_items=1` with `max_wait_ms=0` scores one request at a time (no batching).

    `close()` lets the worker finish everything already queued, then stops it.
    """

    def __init__(
        self,
        reward_model: RewardModel,
        *,
        max_batch_tokens: int = 8192,
        max_batch_items: int = 1024,
        max_wait_ms: float = 5.0,
    ):
        from rewardlab.deep_ensemble import members_of

        self.reward_model = reward_model
        self.max_length = members_of(reward_model)[0].max_length  # an ensemble's members share it
        self.max_batch_tokens = max_batch_tokens
        self.max_batch_items = max_batch_items
        self.max_wait_s = max_wait_ms / 1000
        self.stats = BatchStats()  # written by the worker thread only
        self._queue: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._closed = False

    @property
    def closed(self) -> bool:
        return self._closed

    def start(self) -> None:
        with self._lock:
            if self._thread is None and not self._closed:
                self._thread = threading.Thread(target=self._work, name="rewardlab-scorer", daemon=True)
                self._thread.start()

    def close(self) -> None:
        """Score what is queued, then stop the worker (blocks until it has)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            thread = self._thread
        if thread is not None:
            self._queue.put(None)
            thread.join()
        # A request queued in the instant between the closed check and the sentinel would wait forever: fail it.
        while True:
            try:
                job = self._queue.get_nowait()
            except queue.Empty:
                break
            if job is not None:
                _settle(job, error=ServerClosedError("the server is shutting down"))

    async def score_texts(self, texts: Sequence[str]) -> Scored:
        return await self._submit(TEXTS, list(texts), None)

    async def score(self, prompts: Sequence[Any], completions: Sequence[Any]) -> Scored:
        return await self._submit(PAIRS, list(prompts), list(completions))

    async def _submit(self, kind: str, a: list[Any], b: list[Any] | None) -> Scored:
        if self._closed:
            raise ServerClosedError("the server is shutting down")
        self.start()  # also works without the app's lifespan (e.g. a TestClient used outside `with`)
        loop = asyncio.get_running_loop()
        job = _Job(kind, a, b, loop.create_future(), loop)
        self._queue.put(job)
        return await job.future

    # ------------------------------------------------------------------------------------------ worker thread
    def _work(self) -> None:
        held: _Job | None = None  # a job that did not fit the last batch; it opens the next one
        while True:
            job = held or self._queue.get()
            held = None
            if job is None:
                return
            batch, tokens, items = [job], self._tokens(job), len(job)
            stop = False
            # Measured from the oldest request's arrival: one that queued while the model was busy has waited enough.
            deadline = job.queued_at + self.max_wait_s
            while items < self.max_batch_items and tokens < self.max_batch_tokens:
                wait = deadline - time.monotonic()
                try:
                    nxt = self._queue.get(timeout=wait) if wait > 0 else self._queue.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    stop = True
                    break
                cost = self._tokens(nxt)
                if items + len(nxt) > self.max_batch_items or tokens + cost > self.max_batch_tokens:
                    held = nxt
                    break
                batch.append(nxt)
                tokens += cost
                items += len(nxt)
            try:
                self._score_batch(batch)
            except Exception as e:  # never let the worker die: every waiting request would hang
                logger.exception("the scoring worker failed on a batch")
                for j in batch:
                    _settle(j, error=e)
            if stop:
                return

    def _tokens(self, job: _Job) -> int:
        """An estimate of the job's tokens (4 characters each, capped at max_length), to fill micro-batches.

        Only an estimate: tokenizing here would tokenize every request twice, and `RewardModel` already splits each
        call into forward passes under its real token budget, so a high or low guess changes batching, not memory.
        """
        if job.tokens is None:
            texts = job.a if job.kind == TEXTS else [_plain(p) + _plain(c) for p, c in zip(job.a, job.b, strict=True)]
            cap = self.max_length
            job.tokens = sum(min(len(t) // 4 + 1, cap) if cap else len(t) // 4 + 1 for t in texts)
        return job.tokens

    def _score_batch(self, batch: list[_Job]) -> None:
        batch = [j for j in batch if not j.future.cancelled()]  # the client went away: skip its work
        if not batch:
            return
        self.stats.batches += 1
        self.stats.requests += len(batch)
        self.stats.items += sum(len(j) for j in batch)
        try:
            results = self._call(batch)
        except Exception as e:
            if len(batch) == 1:
                self._fail(batch[0], e)
                return
            self.stats.fallbacks += 1
            logger.info("a batch of %d requests failed (%s); scoring them one by one", len(batch), first_line(e))
            for job in batch:
                try:
                    results = self._call([job])
                except Exception as e:
                    self._fail(job, e)
                else:
                    _settle(job, result=results[0])
            return
        for job, result in zip(batch, results, strict=True):
            _settle(job, result=result)

    def _call(self, batch: list[_Job]) -> list[Scored]:
        """One model call per kind of request in `batch`; each job's slice of the rewards (and of an ensemble's
        standard deviations), in batch order."""
        out: dict[int, Scored] = {}
        with_std = self.reward_model.has_uncertainty
        for kind in (TEXTS, PAIRS):
            jobs = [j for j in batch if j.kind == kind]
            if not jobs:
                continue
            self.stats.model_calls += 1
            if kind == TEXTS:
                scored = self.reward_model.score_texts([t for j in jobs for t in j.a], return_std=with_std)
            else:
                prompts, completions = [p for j in jobs for p in j.a], [c for j in jobs for c in j.b]
                scored = self.reward_model.score(prompts, completions, return_std=with_std)
            rewards, stds = scored if with_std else (scored, None)
            start = 0
            for job in jobs:
                end = start + len(job)
                out[id(job)] = (rewards[start:end], None if stds is None else stds[start:end])
                start = end
        return [out[id(j)] for j in batch]

    def _fail(self, job: _Job, error: Exception) -> None:
        self.stats.failed_requests += 1
        if not isinstance(error, RewardlabError):
            logger.error("scoring failed", exc_info=error)
        _settle(job, error=error)


def _settle(job: _Job, result: Scored | None = None, error: BaseException | None = None) -> None:
    """Resolve a job's future on its own event loop (asyncio futures are not thread-safe)."""

    def settle() -> None:
        if job.future.done():  # cancelled: the client disconnected
            return
        if error is not None:
            job.future.set_exception(error)
        else:
            job.future.set_result(result)

    with contextlib.suppress(RuntimeError):  # the loop is closed: nobody is waiting for this answer
        job.loop.call_soon_threadsafe(settle)


def _plain(item: Any) -> str:
    if isinstance(item, str):
        return item
    return "\n".join(str(m.get("content") or "") for m in item if isinstance(m, dict))


# ---------------------------------------------------------------------------------------------------------------------
# The app.


def create_app(reward_model: RewardModel, settings: ServerSettings | None = None) -> FastAPI:
    """The reward server for `reward_model`. `app.state.batcher` is its `MicroBatcher` (with `stats`).

    Use it with uvicorn (`rewardlab serve` does), or in-process with `fastapi.testclient.TestClient` / httpx.
    """
    from rewardlab.deep_ensemble import members_of
    from rewardlab.rl import shape_rewards

    settings = settings or ServerSettings()
    if settings.normalize and not reward_model.normalization:
        raise RewardlabError(
            "--normalize needs the reward statistics saved by a training run with an evaluation set; this model has "
            "none"
        )
    if settings.uncertainty_penalty and not reward_model.has_uncertainty:
        raise RewardlabError(
            "--uncertainty_penalty needs an ensemble: a model trained with --ensemble_heads >= 2, or several --model "
            "paths; this model has a single head"
        )
    batcher = MicroBatcher(
        reward_model,
        max_batch_tokens=settings.max_batch_tokens,
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

    app = FastAPI(
        title="rewardlab reward server",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
    )
    app.state.batcher = batcher
    app.state.settings = settings
    app.state.reward_model = reward_model
    app.add_middleware(_Guard, api_key=settings.api_key, max_request_bytes=settings.max_request_bytes)
    app.add_exception_handler(RequestValidationError, _validation_error)
    # The middleware enforces the key on every path; this only declares the scheme in the OpenAPI spec.
    secured = [Depends(HTTPBearer(auto_error=False))] if settings.api_key else []
    # An ensemble's members were trained alike: the first one's tokenizer, device and max_length stand for all.
    described = members_of(reward_model)[0]
    pad_token = getattr(described.tokenizer, "pad_token", None)
    normalization = reward_model.normalization if settings.normalize else None

    def finish(scored: Scored) -> tuple[list[float | None], list[float | None] | None]:
        """Rewards as served (normalized, minus the uncertainty penalty), and the stds in the same units."""
        rewards, stds = scored
        return shape_rewards(rewards, stds, normalization=normalization,
                             uncertainty_penalty=settings.uncertainty_penalty)  # fmt: skip

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
        "/get_reward",
        response_model=GetRewardResponse,
        responses=ERROR_RESPONSES,
        dependencies=secured,
        tags=["score"],
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

    return app


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
            chars = len(_plain(value))
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


# ---------------------------------------------------------------------------------------------------------------------
# `rewardlab serve`.


def build_parser() -> argparse.ArgumentParser:
    from rewardlab.cli import ArgumentParser, add_reward_model_arguments

    defaults = ServerSettings()
    parser = ArgumentParser(
        prog="rewardlab serve",
        description="Serve a reward model over HTTP: POST /score, OpenRLHF's POST /get_reward, GET /health, "
        "the OpenAPI spec at /openapi.json and docs at /docs. Concurrent requests are micro-batched. SIGTERM "
        "finishes in-flight requests, then exits.",
    )
    parser.add_argument(
        "--model",
        required=True,
        nargs="+",
        help="A saved reward model: a directory (full or LoRA) or hub id; several: one deep ensemble (their mean "
        "centred reward, see rewardlab.RewardEnsemble).",
    )
    parser.add_argument("--host", default="127.0.0.1", help="Address to listen on (0.0.0.0: all interfaces).")
    parser.add_argument("--port", type=int, default=8000, help="Port to listen on. Default %(default)s.")
    add_reward_model_arguments(parser)
    parser.add_argument("--normalize", action="store_true", help="Return (reward - mean) / std from training.")
    parser.add_argument(
        "--uncertainty_penalty",
        type=float,
        default=0.0,
        help="For an ensemble: serve the conservative reward mean - k * std (k >= 0). Default %(default)s.",
    )
    parser.add_argument(
        "--max_batch_tokens",
        type=int,
        default=defaults.max_batch_tokens,
        help="Token budget of one forward pass, and of one micro-batch (requests are batched up to it, their tokens "
        "estimated at 4 characters each). Default %(default)s.",
    )
    parser.add_argument(
        "--max_batch_items",
        type=int,
        default=defaults.max_batch_items,
        help="Most items in one micro-batch (a request is never split; 1 with --max_wait_ms 0: no batching). "
        "Default %(default)s.",
    )
    parser.add_argument(
        "--max_wait_ms",
        type=float,
        default=defaults.max_wait_ms,
        help="How long a micro-batch waits for more requests once it has one. Default %(default)s.",
    )
    parser.add_argument(
        "--max_items_per_request",
        type=int,
        default=defaults.max_items_per_request,
        help="Most items (texts, queries or prompt/completion pairs) in one request; more: 413. Default %(default)s.",
    )
    parser.add_argument(
        "--max_text_chars",
        type=int,
        default=defaults.max_text_chars,
        help="Longest text, prompt or completion in characters; longer: 413. Default %(default)s.",
    )
    parser.add_argument(
        "--max_request_bytes",
        type=int,
        default=defaults.max_request_bytes,
        help="Largest request body; larger: 413. Default %(default)s.",
    )
    parser.add_argument(
        "--api_key",
        default=None,
        help=f"Require 'Authorization: Bearer KEY' on every endpoint but /health (default: ${API_KEY_ENV}; "
        "the environment variable keeps the key out of the process list).",
    )
    parser.add_argument(
        "--shutdown_timeout",
        type=float,
        default=60.0,
        help="Seconds in-flight requests get to finish after SIGTERM/SIGINT. Default %(default)s.",
    )
    parser.add_argument(
        "--log_level", default="info", choices=["critical", "error", "warning", "info", "debug", "trace"]
    )
    return parser


def settings_from_args(args: argparse.Namespace, environ: Mapping[str, str] | None = None) -> ServerSettings:
    environ = os.environ if environ is None else environ
    return ServerSettings(
        model_name=", ".join(args.model),
        api_key=args.api_key or environ.get(API_KEY_ENV) or None,
        max_batch_tokens=args.max_batch_tokens,
        max_batch_items=args.max_batch_items,
        max_wait_ms=args.max_wait_ms,
        max_items_per_request=args.max_items_per_request,
        max_text_chars=args.max_text_chars,
        max_request_bytes=args.max_request_bytes,
        normalize=args.normalize,
        uncertainty_penalty=args.uncertainty_penalty,
    )


def serve_command(argv: Sequence[str]) -> int:
    """`rewardlab serve ARGS...`: load the model and serve it until SIGTERM/SIGINT; returns the exit code."""
    args = build_parser().parse_args(list(argv))
    settings = settings_from_args(args)
    logging.getLogger("rewardlab").setLevel(
        logging.DEBUG if args.log_level == "trace" else getattr(logging, args.log_level.upper())
    )
    from rewardlab.cli import load_reward_model

    reward_model = load_reward_model(args.model, args, max_tokens_per_batch=args.max_batch_tokens)
    app = create_app(reward_model, settings)
    config = uvicorn.Config(
        app, host=args.host, port=args.port, log_level=args.log_level, timeout_graceful_shutdown=args.shutdown_timeout
    )
    server = uvicorn.Server(config)
    logger.info(
        "serving %s on http://%s:%d: POST /score, POST /get_reward, GET /health, docs at /docs%s",
        settings.model_name,
        args.host,
        args.port,
        " (API key required)" if settings.api_key else "",
    )
    # uvicorn re-raises a caught SIGTERM once its graceful shutdown is done, which would end the process with the
    # signal's default action (status -15) after a clean drain. A drained shutdown is a success: exit 0.
    on_main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _drained) if on_main_thread else None
    try:
        server.run()
    except SystemExit as e:  # uvicorn exits when it cannot bind the address; it has logged why
        raise RewardlabError(f"could not serve on {args.host}:{args.port} (see the error above)") from e
    finally:
        if on_main_thread:
            signal.signal(signal.SIGTERM, previous)
        batcher: MicroBatcher = app.state.batcher
        batcher.close()  # already done by the lifespan, unless startup failed
    logger.info("stopped after scoring %s", _describe_stats(app.state.batcher.stats))
    return 0


def _drained(signum: int, frame: Any) -> None:
    pass


def _describe_stats(stats: BatchStats) -> str:
    return ", ".join(f"{v} {k.replace('_', ' ')}" for k, v in stats.model_dump().items())


__all__ = [
    "API_KEY_ENV",
    "BatchStats",
    "ErrorResponse",
    "GetRewardRequest",
    "GetRewardResponse",
    "HealthResponse",
    "Message",
    "MicroBatcher",
    "MissingServeExtraError",
    "ScoreRequest",
    "ScoreResponse",
    "ServerClosedError",
    "ServerSettings",
    "build_parser",
    "create_app",
    "serve_command",
    "settings_from_args",
]
