"""Sizes and counts as people read them, for every front and for error messages from the engine."""

from __future__ import annotations


def human_bytes(n: int | float) -> str:
    """1536 -> '1.5 KiB'."""
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(value) < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def signed_bytes(n: int) -> str:
    """-1536 -> '-1.5 KiB', 0 -> '+0 B'."""
    return f"{'+' if n >= 0 else '-'}{human_bytes(abs(n))}"


def plural(n: int, noun: str) -> str:
    """'1 model', '2 models'."""
    return f"{n} {noun}{'' if n == 1 else 's'}"


def human_count(n: int) -> str:
    """22713216 -> '22.7M'."""
    for div, suffix in ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "k")):
        if abs(n) >= div:
            return f"{n / div:.1f}{suffix}"
    return str(n)
