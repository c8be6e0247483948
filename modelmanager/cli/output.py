"""Printing for the command line: sizes, tables, JSON, and a progress line on a terminal."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Sequence
from itertools import repeat
from typing import Any, TextIO

from modelmanager.core.jobs import JobContext
from modelmanager.core.text import json_shown, shown
from modelmanager.core.units import human_bytes, human_count, plural, signed_bytes

# The display helpers live in core (the GUI uses them too); the commands import them from here.
__all__ = ["human_bytes", "human_count", "plural", "shown", "signed_bytes"]


def print_json(doc: Any, out: TextIO | None = None) -> None:
    """Print one JSON document: exact when parsed, with no raw control or bidi character."""
    (out or sys.stdout).write(json_shown(json.dumps(doc, indent=2, ensure_ascii=False)) + "\n")


def print_table(
    headers: Sequence[str], rows: Sequence[Sequence[Any]], out: TextIO | None = None
) -> None:
    """A plain aligned table; numbers (right-aligned) and text (left-aligned, escaped).

    Written for 10,000 rows (a broad search): the work is done a column at a time by
    builtins over the whole column (``map``, ``max``, one printable test), so Python runs
    per column, not per cell; one join per line, one write. Row by row it took 18 ms of
    ``ls``'s ~110 at 10,000 models, column by column 13."""
    out = out or sys.stdout
    raw = list(zip(*rows, strict=True)) if rows else [() for _h in headers]
    kinds = [set(map(type, col)) for col in raw]
    cols = [
        col if kind <= {str} else tuple(map(str, col)) for col, kind in zip(raw, kinds, strict=True)
    ]
    for i, col in enumerate(cols):
        if not "".join(col).isprintable():  # something in the column to escape
            cols[i] = tuple(map(shown, col))
    widths = [max([len(h), *map(len, col)]) for h, col in zip(headers, cols, strict=True)]
    # Right-aligned when every cell is a number (subclasses too: bool, numpy's float64).
    pads = [
        str.rjust if all(issubclass(k, (int, float)) for k in kind) else str.ljust for kind in kinds
    ]
    # Each column padded to its width by one ``map`` (str.format parsed its pattern again
    # for every line), then joined a line at a time.
    padded = [
        tuple(map(pad, col, repeat(w))) for pad, col, w in zip(pads, cols, widths, strict=True)
    ]
    head = "  ".join(pad(h, w) for pad, h, w in zip(pads, headers, widths, strict=True))
    text = [head.rstrip(), *map(str.rstrip, map("  ".join, zip(*padded, strict=True)))]
    out.write("\n".join(text) + "\n")


class ProgressLine:
    """A one-line progress display on stderr, redrawn at most ten times a second."""

    def __init__(self, verb: str, *, enabled: bool = True, stream: TextIO | None = None) -> None:
        self.verb = verb
        self.stream = stream or sys.stderr
        self.enabled = enabled and self.stream.isatty()
        self.start = time.monotonic()
        self._last = 0.0
        self._shown = False
        self.ctx: JobContext | None = None

    def __call__(self, done: int, total: int, text: str) -> None:
        now = time.monotonic()
        if not self.enabled or (now - self._last < 0.1 and done < total):
            return
        self._last = now
        rate = done / max(now - self.start, 1e-6)
        pct = f"{100 * done / total:5.1f}%" if total else "     "
        unit = self.ctx.unit if self.ctx is not None else ""
        if unit:  # items, not bytes: "120 of 4,000 chunks (830 chunks/s)"
            amount = f"{done:,} of {total:,} {unit}s ({rate:,.0f} {unit}s/s)"
        else:
            amount = f"{human_bytes(done)} of {human_bytes(total)} ({human_bytes(rate)}/s)"
        line = f"{self.verb} {pct} {amount}  {shown(text)}"
        self.stream.write("\r" + line[:110].ljust(110))
        self.stream.flush()
        self._shown = True

    def finish(self) -> None:
        if self._shown:
            self.stream.write("\r" + " " * 110 + "\r")
            self.stream.flush()

    def context(self) -> JobContext:
        """The job context whose reports this line draws (its ``unit`` says bytes or items)."""
        self.ctx = JobContext(on_progress=self)
        return self.ctx

    def __enter__(self) -> JobContext:
        return self.context()

    def __exit__(self, *exc: object) -> None:
        self.finish()
