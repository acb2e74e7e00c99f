"""Micro-batching: requests from many coroutines scored on one worker thread, several requests per model call."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from rewardlab.errors import RewardlabError, first_line
from rewardlab.score.ensemble import members_of
from rewardlab.serve.schemas import BatchStats

if TYPE_CHECKING:
    from rewardlab.score.ensemble import RewardEnsemble
    from rewardlab.score.reward_model import RewardModel

logger = logging.getLogger(__name__)


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
        reward_model: RewardModel | RewardEnsemble,
        *,
        max_batch_tokens: int = 8192,
        max_batch_items: int = 1024,
        max_wait_ms: float = 5.0,
    ):
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
            texts = (
                job.a
                if job.kind == TEXTS
                else [plain_text(p) + plain_text(c) for p, c in zip(job.a, job.b, strict=True)]
            )
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


def plain_text(item: Any) -> str:
    if isinstance(item, str):
        return item
    return "\n".join(str(m.get("content") or "") for m in item if isinstance(m, dict))
