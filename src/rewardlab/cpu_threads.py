"""How many threads torch computes with on a CPU, adapted to the cores this process actually gets.

Why: torch's intra-op threads meet at a barrier at the end of every parallel region, i.e. of almost every operation.
When other processes compete for the cores, one of the threads is often descheduled, and the others wait at the
barrier for a scheduler time slice. The smaller the operations, the more of the time is lost this way, and the fast
path's operations are small (it computes less than a padded batch in as many operations): on 2 cores, a busy loop on
one core makes its training many times slower at 2 threads, while one thread keeps its quiet speed (BENCHMARKS.md).
OpenMP's own answer, `OMP_DYNAMIC`, reads the load average, which counts this process's threads as load, and cannot
be switched on after torch has started; so the adaptation is written here.

The measure is the share of the cores the process gets: its CPU time over wall time while it computes (all
threads' CPU time, spinning included; a descheduled thread adds none). With N threads on N free cores it is about N;
with a busy loop on one of two cores, about 1. `AdaptiveThreads` measures every compute step it wraps; a step that got
less than `threads - 0.5` cores is confirmed by a short probe (`core_share`), after which the process runs with the
threads its cores support. While below the user's thread count it probes the full count every few steps (8 at
first, twice as long after every raise that a contended step undid, up to 256, but never more than two minutes
apart, so long steps get their cores back soon after the other processes end) and raises the count again when the
cores are free.
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from collections.abc import Callable, Iterator

import torch

logger = logging.getLogger(__name__)

FIRST_PROBE_INTERVAL = 8
LAST_PROBE_INTERVAL = 256
# The longest wait between raise probes, whatever the step count: a failed probe costs 50 ms, a raise that does not
# hold one contended step.
LONGEST_PROBE_WAIT_SECONDS = 120.0
# How long a probe computes. Long enough to span several scheduler time slices (a few ms each), short against a step.
PROBE_SECONDS = 0.05


def core_share(threads: int, seconds: float = PROBE_SECONDS) -> float:
    """The cores `threads` torch threads get now: CPU seconds per wall second of an elementwise loop run for
    `seconds` (each operation one parallel region, like a training step's). The thread count is restored after."""
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        # 2^20 floats: above torch's grain size, so every operation runs on all threads.
        source = torch.ones(1 << 20)
        target = torch.empty_like(source)
        wall, cpu = time.perf_counter(), time.process_time()
        while time.perf_counter() - wall < seconds:
            torch.mul(source, 1.0001, out=target)
        return (time.process_time() - cpu) / (time.perf_counter() - wall)
    finally:
        torch.set_num_threads(previous)


def threads_for_share(share: float, max_threads: int) -> int:
    """The thread count that `share` cores support, between 1 and `max_threads`: rounded down unless within a
    quarter of a core of the next count, since one thread too many costs far more than one too few."""
    return max(1, min(max_threads, math.floor(share + 0.25)))


class AdaptiveThreads:
    """Torch's intra-op thread count, adapted to the cores the process gets (see the module doc).

    Wrap every compute step in `step()`, and a whole run in `active()`, which sets the adapted count on entry and
    gives the user's count back on leaving the outermost one. `max_threads` is the user's count (torch's at
    construction). `probe`, `clock` and `cpu_clock` are there for tests.
    """

    def __init__(
        self,
        max_threads: int | None = None,
        probe: Callable[[int], float] = core_share,
        clock: Callable[[], float] = time.perf_counter,
        cpu_clock: Callable[[], float] = time.process_time,
    ):
        self.max_threads = max_threads or torch.get_num_threads()
        self.threads = self.max_threads
        self.probe_interval = FIRST_PROBE_INTERVAL
        self._probe, self._clock, self._cpu_clock = probe, clock, cpu_clock
        self._steps = 0
        self._last_probe = 0
        self._last_probe_time = clock()
        self._last_raise: int | None = None
        self._depth = 0

    @contextlib.contextmanager
    def active(self) -> Iterator[None]:
        """Run with the adapted thread count; the user's count is restored when the outermost block ends."""
        self._depth += 1
        torch.set_num_threads(self.threads)
        try:
            yield
        finally:
            self._depth -= 1
            if self._depth == 0:
                torch.set_num_threads(self.max_threads)

    @contextlib.contextmanager
    def step(self) -> Iterator[None]:
        """Measure one compute step, then adapt the thread count for the next. Only inside `active()`, which gives
        the user's count back."""
        if self._depth == 0:
            yield
            return
        wall, cpu = self._clock(), self._cpu_clock()
        yield
        share = (self._cpu_clock() - cpu) / max(self._clock() - wall, 1e-9)
        self._steps += 1
        self._adapt(share)

    def _adapt(self, share: float) -> None:
        if self.threads > 1 and share < self.threads - 0.5:
            self._probe_and_lower()
        elif self.threads < self.max_threads and self._probe_due():
            self._probe_and_raise()

    def _probe_due(self) -> bool:
        waited = self._clock() - self._last_probe_time >= LONGEST_PROBE_WAIT_SECONDS
        return waited or self._steps - self._last_probe >= self.probe_interval

    def _mark_probe(self) -> None:
        self._last_probe, self._last_probe_time = self._steps, self._clock()

    def _probe_and_lower(self) -> None:
        measured = self._probe(self.threads)
        target = threads_for_share(measured, self.threads)
        if target >= self.threads:
            return  # the step was slow for another reason (e.g. serial work): the cores are there
        if self._last_raise is not None and self._steps - self._last_raise <= 1:
            self.probe_interval = min(2 * self.probe_interval, LAST_PROBE_INTERVAL)  # the raise did not hold
        elif self._last_raise is None or self._steps - self._last_raise > self.probe_interval:
            self.probe_interval = FIRST_PROBE_INTERVAL  # a new episode of contention
        self._mark_probe()
        self._set(target, f"other processes are using the CPU: {self.threads} threads got {measured:.1f} cores")

    def _probe_and_raise(self) -> None:
        self._mark_probe()
        measured = self._probe(self.max_threads)
        target = threads_for_share(measured, self.max_threads)
        if target > self.threads:
            self._last_raise = self._steps
            self._set(target, f"{measured:.1f} cores are free again")

    def _set(self, threads: int, reason: str) -> None:
        logger.info("%s; computing with %d of %d threads", reason, threads, self.max_threads)
        self.threads = threads
        torch.set_num_threads(threads)


def adaptive_threads(device: torch.device, enabled: bool = True) -> AdaptiveThreads | None:
    """An `AdaptiveThreads` for computing on `device` from torch's current thread count, or None where there is
    nothing to adapt: `enabled` False, a device other than the CPU, or a single thread."""
    if enabled and device.type == "cpu" and torch.get_num_threads() > 1:
        return AdaptiveThreads()
    return None


def adapted_threads(adaptive: AdaptiveThreads | None) -> contextlib.AbstractContextManager:
    """`adaptive.active()`, or nothing for None."""
    return adaptive.active() if adaptive is not None else contextlib.nullcontext()


def measured_step(adaptive: AdaptiveThreads | None) -> contextlib.AbstractContextManager:
    """`adaptive.step()`, or nothing for None."""
    return adaptive.step() if adaptive is not None else contextlib.nullcontext()
