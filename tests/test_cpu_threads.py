"""Torch's thread count adapted to the cores the process gets (`rewardlab.cpu_threads`)."""

from __future__ import annotations

import pytest
import torch

from rewardlab.cpu_threads import (
    FIRST_PROBE_INTERVAL,
    LAST_PROBE_INTERVAL,
    LONGEST_PROBE_WAIT_SECONDS,
    AdaptiveThreads,
    core_share,
    threads_for_share,
)


@pytest.fixture(autouse=True)
def _restore_torch_threads():
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


class Machine:
    """Fake clocks and probe: each step takes one wall second and `cores` CPU seconds; a probe returns `free`."""

    def __init__(self, cores: float, free: float):
        self.cores, self.free = cores, free
        self.wall = self.cpu = 0.0
        self.probes: list[int] = []

    def clock(self) -> float:
        return self.wall

    def cpu_clock(self) -> float:
        return self.cpu

    def probe(self, threads: int) -> float:
        self.probes.append(threads)
        return min(self.free, threads)

    def run(self, adaptive: AdaptiveThreads, steps: int, seconds: float = 1.0) -> list[int]:
        """The thread count torch had during each of `steps` steps of `seconds` each."""
        seen = []
        for _ in range(steps):
            with adaptive.step():
                seen.append(torch.get_num_threads())
                self.wall += seconds
                self.cpu += seconds * min(self.cores, seen[-1])
        return seen


def adaptive_on(machine: Machine, max_threads: int = 4) -> AdaptiveThreads:
    return AdaptiveThreads(max_threads, probe=machine.probe, clock=machine.clock, cpu_clock=machine.cpu_clock)


@pytest.mark.parametrize(
    ("share", "max_threads", "expected"),
    [(4.0, 4, 4), (3.8, 4, 4), (3.7, 4, 3), (1.0, 2, 1), (1.74, 2, 1), (1.75, 2, 2), (0.2, 4, 1), (9.0, 4, 4)],
)
def test_threads_for_share_rounds_down_unless_a_quarter_core_short(share, max_threads, expected):
    assert threads_for_share(share, max_threads) == expected


def test_free_cores_keep_every_thread_and_probe_nothing():
    machine = Machine(cores=4, free=4)
    adaptive = adaptive_on(machine)
    with adaptive.active():
        assert machine.run(adaptive, 50) == [4] * 50
    assert machine.probes == []


def test_contention_lowers_the_count_after_one_step_and_the_free_cores_raise_it_again():
    machine = Machine(cores=1.0, free=1.0)  # other processes leave one core
    adaptive = adaptive_on(machine)
    with adaptive.active():
        assert machine.run(adaptive, 3) == [4, 1, 1]
        assert machine.probes == [4]  # the slow step's confirmation
        machine.cores = machine.free = 4  # the other processes are gone
        seen = machine.run(adaptive, FIRST_PROBE_INTERVAL)
    assert seen[-1] == 4 and seen.count(1) == FIRST_PROBE_INTERVAL - 2
    assert machine.probes == [4, 4]  # one raise probe, at the full count, after FIRST_PROBE_INTERVAL steps
    assert torch.get_num_threads() == 4


def test_a_slow_step_with_free_cores_changes_nothing():
    machine = Machine(cores=1.0, free=4.0)  # the step was slow for another reason: the probe finds the cores free
    adaptive = adaptive_on(machine)
    with adaptive.active():
        assert machine.run(adaptive, 3) == [4, 4, 4]
    assert machine.probes == [4, 4, 4]


def test_partial_contention_keeps_as_many_threads_as_cores():
    machine = Machine(cores=2.2, free=2.2)
    adaptive = adaptive_on(machine)
    with adaptive.active():
        assert machine.run(adaptive, 4) == [4, 2, 2, 2]


def test_raises_that_do_not_hold_are_probed_ever_less_often():
    """The probe sees free cores but the next step is contended again (the other process comes and goes)."""
    machine = Machine(cores=1.0, free=4.0)

    def probe(threads: int) -> float:
        machine.probes.append(threads)
        return 4.0 if threads == 4 and len(machine.probes) % 2 == 0 else 1.0  # a raise probe, then a lower probe

    adaptive = AdaptiveThreads(4, probe=probe, clock=machine.clock, cpu_clock=machine.cpu_clock)
    intervals = []
    with adaptive.active():
        for _ in range(400):
            machine.run(adaptive, 1)
            intervals.append(adaptive.probe_interval)
    assert intervals[0] == FIRST_PROBE_INTERVAL
    assert sorted(set(intervals)) == [8, 16, 32, 64, 128, 256]
    assert intervals[-1] == LAST_PROBE_INTERVAL


def test_long_steps_get_the_cores_back_within_the_longest_probe_wait():
    """Backed off to 256 steps by raises that did not hold, 30-second steps still probe every two minutes."""
    machine = Machine(cores=1.0, free=1.0)
    adaptive = adaptive_on(machine)
    adaptive.probe_interval = LAST_PROBE_INTERVAL
    with adaptive.active():
        assert machine.run(adaptive, 2, seconds=30.0) == [4, 1]
        machine.cores = machine.free = 4
        seen = machine.run(adaptive, 8, seconds=30.0)
    # Lowered by the probe at 30 s; the raise probe comes at 150 s, the end of the fifth step.
    assert LONGEST_PROBE_WAIT_SECONDS == 120.0 and seen == [1, 1, 1, 4, 4, 4, 4, 4]


def test_the_users_thread_count_comes_back_after_the_outermost_block_and_steps_outside_change_nothing():
    torch.set_num_threads(2)
    machine = Machine(cores=1.0, free=1.0)
    adaptive = adaptive_on(machine, max_threads=2)
    assert machine.run(adaptive, 2) == [2, 2]  # outside active(): measured nowhere, changed nowhere
    with adaptive.active():
        machine.run(adaptive, 1)
        with adaptive.active():  # e.g. evaluation during training
            assert machine.run(adaptive, 1) == [1]
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == 2
    with adaptive.active():  # the next run starts from what was measured
        assert torch.get_num_threads() == 1


def test_core_share_measures_this_process_on_the_real_clocks():
    torch.set_num_threads(2)
    share = core_share(1, seconds=0.05)
    assert 0.0 < share <= 1.1  # one thread cannot hold more than one core
    assert torch.get_num_threads() == 2


def test_one_thread_is_never_probed_for_fewer():
    machine = Machine(cores=0.3, free=0.3)  # heavily contended: even one thread gets a third of a core
    adaptive = adaptive_on(machine)
    with adaptive.active():
        assert machine.run(adaptive, 5) == [4, 1, 1, 1, 1]
    assert machine.probes == [4]


def test_scoring_adapts_its_threads_on_a_cpu_and_gives_them_back():
    """`RewardModel` on a contended CPU (fake clocks: one core for two threads) scores on one thread, with the
    rewards of an unadapted model, and leaves torch's thread count as it found it."""
    import time

    from tiny import make_model, make_tokenizer

    from rewardlab import RewardModel

    tok = make_tokenizer("llama")
    model = make_model("llama", tok)
    torch.set_num_threads(2)
    texts = ["the sky is blue", "it is green sorry", "warm today"] * 4
    plain = RewardModel(model, tok, adapt_cpu_threads=False, max_tokens_per_batch=16)
    assert plain.cpu_threads is None
    expected = plain.score_texts(texts)
    adapted = RewardModel(model, tok, max_tokens_per_batch=16)  # several forward passes
    adapted.cpu_threads = AdaptiveThreads(2, probe=lambda threads: 1.0, cpu_clock=time.perf_counter)
    seen = []  # torch's thread count at each forward pass
    model.get_input_embeddings().register_forward_pre_hook(lambda *_: seen.append(torch.get_num_threads()))
    assert adapted.score_texts(texts) == pytest.approx(expected, abs=1e-6)
    assert seen[0] == 2 and set(seen[1:]) == {1}
    assert torch.get_num_threads() == 2
