"""The command line's progress line counts in the job's own unit: bytes, or items (chunks)."""

from __future__ import annotations

import io

from modelmanager.cli.output import ProgressLine


class Terminal(io.StringIO):
    """A stream that says it is a terminal, as stderr is when a person runs a command."""

    def isatty(self) -> bool:
        return True


def test_an_item_job_shows_items_and_a_byte_job_bytes() -> None:
    out = Terminal()
    line = ProgressLine("Removing", stream=out)
    ctx = line.context()
    ctx.unit = "chunk"
    ctx.report(1200, 4000, "abc")
    assert "30.0% 1,200 of 4,000 chunks (" in out.getvalue()
    assert " B" not in out.getvalue()  # no "1.2 KiB of 3.9 KiB" for a count of chunks

    out = Terminal()
    line = ProgressLine("Importing", stream=out)
    line.context().report(3 << 30, 6 << 30, "big.safetensors")
    assert "50.0% 3.0 GiB of 6.0 GiB (" in out.getvalue()
