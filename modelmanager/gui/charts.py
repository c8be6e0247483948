"""The Performance tab's four charts, drawn from stored benchmark rows onto matplotlib Figures.

Plain Figures (no pyplot, no global state), so each chart can be drawn, checked by a test from
its artists' data, and saved as a PNG on its own. Throughputs are shown in MB/s (10^6 bytes).
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from dataclasses import fields
from datetime import datetime
from pathlib import Path

import matplotlib
from matplotlib.dates import AutoDateLocator, ConciseDateFormatter, date2num
from matplotlib.figure import Figure

from modelmanager.core.catalog import BenchRow
from modelmanager.core.chunks.selection import STRATEGIES

# matplotlib reads a ``matplotlibrc`` from the working folder first: started inside a model
# folder, that folder's file would style (or break) our charts. Its own defaults, always.
matplotlib.rcdefaults()

CHARTS = ("devices", "threads", "strategies", "history")
TITLES = {
    "devices": "Raw read throughput per device",
    "threads": "Load throughput by thread count (warm)",
    "strategies": "Load throughput by replica strategy (cold)",
    "history": "Cold throughput over time",
}
COLD, WARM = "#3b6fb6", "#e08a2c"
#: The history chart spans at least this (in days): one hour.
HISTORY_MIN_SPAN = 1 / 24


def newest_run(rows: list[BenchRow], kind: str) -> list[BenchRow]:
    """The rows of ``kind`` from the newest run that measured it."""
    of_kind = [r for r in rows if r.kind == kind]
    return [r for r in of_kind if r.run == of_kind[-1].run] if of_kind else []


def _mbps(r: BenchRow) -> float:
    return r.throughput / 1e6


def _empty(fig: Figure, title: str) -> None:
    ax = fig.add_subplot()
    ax.set_title(title, fontsize=10)
    ax.text(0.5, 0.5, "No benchmark yet: run one with 'Run benchmark'", ha="center",
            va="center", transform=ax.transAxes, fontsize=9, color="gray")  # fmt: skip
    ax.set_axis_off()


def draw(fig: Figure, chart: str, rows: list[BenchRow]) -> None:
    """Draw ``chart`` (one of CHARTS) from benchmark rows (oldest first) onto ``fig``."""
    fig.clear()
    title = TITLES[chart]
    if chart == "devices":
        data = newest_run(rows, "device")
        if not data:
            return _empty(fig, title)
        names = list(dict.fromkeys(r.device for r in data))
        ax = fig.add_subplot()
        width = 0.38
        for shift, cache, colour in ((-width / 2, "cold", COLD), (width / 2, "warm", WARM)):
            speed = {r.device: _mbps(r) for r in data if r.cache == cache}
            xs = [i + shift for i, n in enumerate(names) if n in speed]
            ax.bar(xs, [speed[n] for n in names if n in speed], width, label=cache, color=colour)
        ax.set_xticks(range(len(names)), names)
        ax.set_ylabel("MB/s")
        ax.set_ylim(top=1.25 * max(_mbps(r) for r in data))  # room for the legend
        ax.legend(fontsize=8, ncols=2, loc="upper right")
    elif chart == "threads":
        data = sorted(newest_run(rows, "threads"), key=lambda r: r.threads)
        if not data:
            return _empty(fig, title)
        ax = fig.add_subplot()
        ax.plot([r.threads for r in data], [_mbps(r) for r in data], marker="o", color=COLD)
        ax.set_xscale("log", base=2)
        ax.set_xticks([r.threads for r in data], [str(r.threads) for r in data])
        ax.set_xlabel("threads")
        ax.set_ylabel("MB/s")
        ax.set_ylim(bottom=0)
    elif chart == "strategies":
        data = newest_run(rows, "strategy")
        if not data:
            return _empty(fig, title)
        data.sort(key=lambda r: STRATEGIES.index(r.strategy) if r.strategy in STRATEGIES else 99)
        ax = fig.add_subplot()
        best = max(data, key=_mbps).strategy
        colours = [COLD if r.strategy != best else WARM for r in data]
        ax.bar([r.strategy for r in data], [_mbps(r) for r in data], color=colours)
        ax.set_ylabel("MB/s")
        ax.tick_params(axis="x", labelsize=8)
    else:
        series: dict[str, list[BenchRow]] = {}
        for r in rows:
            if r.cache == "cold" and r.kind in ("device", "load"):
                series.setdefault(r.device or "whole load", []).append(r)
        if not series:
            return _empty(fig, title)
        ax = fig.add_subplot()
        times = []
        for name, points in series.items():
            when = [date2num(datetime.fromisoformat(r.at)) for r in points]  # type: ignore[no-untyped-call]
            ax.plot(when, [_mbps(r) for r in points], marker="o", label=name)
            times += when
        if max(times) - min(times) < HISTORY_MIN_SPAN:  # one run: an hour around it, not years
            middle = (max(times) + min(times)) / 2
            ax.set_xlim(middle - HISTORY_MIN_SPAN / 2, middle + HISTORY_MIN_SPAN / 2)
        locator = AutoDateLocator()  # type: ignore[no-untyped-call]
        ax.xaxis.set_major_locator(locator)
        ax.xaxis.set_major_formatter(ConciseDateFormatter(locator))  # type: ignore[no-untyped-call]
        ax.set_ylabel("MB/s")
        ax.legend(fontsize=8)
    ax.set_title(title, fontsize=10)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    return None


def write_csv(rows: Iterable[BenchRow], path: Path) -> int:
    """Every row with its fields and throughput in bytes/s; the number of rows written."""
    names = [f.name for f in fields(BenchRow)]
    n = 0
    with open(path, "w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow([*names, "bytes_per_second"])
        for r in rows:
            writer.writerow([*(getattr(r, k) for k in names), round(r.throughput)])
            n += 1
    return n
