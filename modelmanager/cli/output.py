"""Printing for the command line: sizes, tables, JSON, and a progress line on a terminal."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Sequence
from typing import Any, TextIO

from modelmanager.core.gcpause import paused_gc
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

    Written for 10,000 rows (a broad search): one printable test per row (a cell is escaped
    only when its row holds something to escape), one format per line, one write, and no
    cyclic garbage collection while the rows are made."""
    out = out or sys.stdout
    cells = []
    with paused_gc():  # a list per row, none in a cycle
        for row in rows:
            texts = [str(c) for c in row]
            cells.append(texts if "".join(texts).isprintable() else [shown(t) for t in texts])
    widths = [max([len(h), *(len(r[i]) for r in cells)]) for i, h in enumerate(headers)]
    numeric = [all(isinstance(row[i], (int, float)) for row in rows) for i in range(len(headers))]
    line = "  ".join(
        f"{{:{'>' if num else '<'}{w}}}" for w, num in zip(widths, numeric, strict=True)
    )
    text = [line.format(*headers).rstrip()]
    text += [line.format(*row).rstrip() for row in cells]
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
