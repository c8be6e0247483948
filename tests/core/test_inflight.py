"""InFlight: at most N unfinished, per lane; nothing it started outlives its block."""

from __future__ import annotations

import threading
from concurrent.futures import Future, ThreadPoolExecutor

import pytest

from modelmanager.core.jobs import InFlight, JobContext, threaded
from modelmanager.errors import Cancelled


class Gate:
    """Work that records how many run at once and blocks until released."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.running = self.most = 0
        self.started: list[int] = []
        self.release = threading.Event()

    def __call__(self, item: int) -> int:
        with self.lock:
            self.running += 1
            self.most = max(self.most, self.running)
            self.started.append(item)
        self.release.wait(30)
        with self.lock:
            self.running -= 1
        return item * 2


def test_never_more_than_the_limit_unfinished_and_every_result_comes_back() -> None:
    gate = Gate()
    gate.release.set()
    with ThreadPoolExecutor(8) as pool, InFlight(range(40), lambda i: pool.submit(gate, i), 3) as r:
        got = {item: fut.result() for item, fut in r}
    assert got == {i: 2 * i for i in range(40)}
    assert gate.most <= 3


def test_ordered_results_come_in_submission_order() -> None:
    with threaded(lambda i: i * i, range(50), 4, "t-order", ordered=True) as results:
        assert [item for item, _fut in results] == list(range(50))


def test_the_limit_holds_per_lane_and_a_stuck_lane_holds_up_only_itself() -> None:
    slow = Gate()  # lane "a" blocks until lane "b" is all done

    def work(item: tuple[str, int]) -> int:
        return slow(item[1]) if item[0] == "a" else item[1]

    items = [("a", n) for n in range(10)] + [("b", n) for n in range(20)]
    done: list[tuple[str, int]] = []
    with (
        ThreadPoolExecutor(8) as pool,
        InFlight(items, lambda it: pool.submit(work, it), 2, lane=lambda it: it[0]) as results,
    ):
        for item, fut in results:
            fut.result()
            done.append(item)
            if item[0] == "b" and sum(1 for lane, _n in done if lane == "b") == 20:
                assert len(slow.started) <= 2  # lane "a" never had more than 2 in flight
                slow.release.set()
    assert sorted(done) == sorted(items)
    assert slow.most <= 2


def test_a_failure_cancels_what_has_not_started_and_waits_for_what_runs() -> None:
    gate = Gate()
    boom: Future[int] = Future()
    boom.set_exception(OSError("disk gone"))

    def submit(i: int) -> Future[int]:
        return boom if i == 0 else pool.submit(gate, i)

    with ThreadPoolExecutor(2) as pool:

        def run() -> None:
            with InFlight(range(10), submit, 3) as results:
                for _item, fut in results:
                    gate.release.set()  # running ones may end now; close must wait for them
                    fut.result()

        with pytest.raises(OSError, match="disk gone"):
            run()
        assert gate.running == 0  # nothing it started is still running
        assert set(gate.started) <= {1, 2}  # items past the window never started


def test_a_cancelled_job_stops_before_submitting_more() -> None:
    ctx = JobContext()
    submitted: list[int] = []

    def submit(i: int) -> Future[int]:
        submitted.append(i)
        if i == 1:
            ctx.cancel()
        fut: Future[int] = Future()
        fut.set_result(i)
        return fut

    def run() -> None:
        with InFlight(range(10), submit, 4, ctx=ctx) as results:
            for _item, _fut in results:
                pass

    with pytest.raises(Cancelled):
        run()
    assert submitted == [0, 1]
