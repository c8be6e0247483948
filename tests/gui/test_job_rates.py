"""The Jobs tab tells only true rates (issue 19): items/s for item jobs, bytes/s for byte jobs,
nothing for a job without a total, 100 % and the average once a job is done."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable

import pytest

pytest.importorskip("PySide6")

from PySide6.QtWidgets import QProgressBar

from modelmanager.core.jobs import JobContext
from modelmanager.gui.jobs_bridge import DONE, JobRecord
from modelmanager.gui.main_window import MainWindow


def _row(win: MainWindow, job: JobRecord) -> tuple[str, str, str]:
    """The bar's text, the rate cell and the state cell of ``job``'s row."""
    row = win.jobs_table.rows[job.id]
    bar = win.jobs_table.cellWidget(row, 1)
    assert isinstance(bar, QProgressBar)
    rate, state = win.jobs_table.item(row, 2), win.jobs_table.item(row, 3)
    assert rate is not None
    assert state is not None
    return bar.text(), rate.text(), state.text()


def _held(qtbot, win: MainWindow, unit: str, steps: list[tuple[int, int]]):  # type: ignore[no-untyped-def]
    """A job reporting ``steps`` then waiting to be released; the release function."""
    go, reported = threading.Event(), threading.Event()

    def work(ctx: JobContext) -> None:
        for done, total in steps:
            ctx.report(done, total, "x")
        reported.set()
        assert go.wait(30)

    job = win.runner.submit("Held job", work, unit=unit)
    qtbot.waitUntil(lambda: reported.is_set() and (job.done, job.total) == steps[-1])
    release: Callable[[], None] = go.set
    return job, release


def test_an_item_job_shows_items_per_second_and_items_left(  # type: ignore[no-untyped-def]
    qtbot, one_model_window: MainWindow
) -> None:
    job, release = _held(qtbot, one_model_window, "chunk", [(10, 40)])
    bar, rate, _state = _row(one_model_window, job)
    assert bar == "25% (10 of 40 chunks)"
    assert re.fullmatch(r"[\d.]+[kMBT]? chunks/s, 30 chunks left, \d+ (s|min \d+ s|h \d+ min) left",
                        rate), rate  # fmt: skip
    assert "B/s" not in rate
    release()
    qtbot.waitUntil(lambda: job.state == DONE)
    bar, rate, state = _row(one_model_window, job)
    assert (bar, state) == ("100% (10 of 40 chunks)", "done")
    assert re.fullmatch(r"average [\d.]+[kMBT]? chunks/s", rate), rate


def test_a_byte_job_shows_bytes_per_second(qtbot, one_model_window: MainWindow) -> None:  # type: ignore[no-untyped-def]
    job, release = _held(qtbot, one_model_window, "", [(3 << 30, 5 << 30)])  # past 32 bits, too
    bar, rate, _state = _row(one_model_window, job)
    assert bar == "60%"
    assert re.fullmatch(r"[\d.]+ [KMGT]?i?B/s, \d+ (s|min \d+ s|h \d+ min) left", rate), rate
    release()
    qtbot.waitUntil(lambda: job.state == DONE)
    bar, rate, _state = _row(one_model_window, job)
    assert bar == "100%"
    assert re.fullmatch(r"average [\d.]+ [KMGT]?i?B/s", rate), rate


def test_a_job_without_a_total_shows_no_rate_and_ends_at_100(  # type: ignore[no-untyped-def]
    qtbot, one_model_window: MainWindow
) -> None:
    job, release = _held(qtbot, one_model_window, "", [(5, 0)])  # counts something, knows no total
    bar, rate, _state = _row(one_model_window, job)
    assert (bar, rate) == ("0%", "")
    release()
    qtbot.waitUntil(lambda: job.state == DONE)
    assert _row(one_model_window, job) == ("100%", "", "done")  # never "0 %" or "0 B/s" once done


def test_a_job_that_reports_nothing_ends_at_100_without_a_rate(  # type: ignore[no-untyped-def]
    qtbot, one_model_window: MainWindow
) -> None:
    job = one_model_window.runner.submit(
        "Add device d", lambda _ctx: None, writes=one_model_window.ws.repo.root
    )
    qtbot.waitUntil(lambda: job.state == DONE)
    assert _row(one_model_window, job) == ("100%", "", "done")
