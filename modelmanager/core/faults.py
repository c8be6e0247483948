"""Crash points: a seam that lets tests kill the process at a named durability boundary.

Set ``MODELMANAGER_CRASH_AT=event`` (first time the event is reached) or ``event:N`` (the N-th
time) and the process SIGKILLs itself there. Unset, a crash point costs one dict lookup.
"""

from __future__ import annotations

import os
import signal
import threading

ENV_CRASH_AT = "MODELMANAGER_CRASH_AT"

_lock = threading.Lock()
_hits: dict[str, int] = {}


def _target() -> tuple[str, int] | None:
    spec = os.environ.get(ENV_CRASH_AT)
    if not spec:
        return None
    name, _, count = spec.partition(":")
    return name, int(count) if count else 1


def crash_point(event: str) -> None:
    """Die here, abruptly, if the environment names this event (test seam; no-op otherwise)."""
    target = _target()
    if target is None or target[0] != event:
        return
    with _lock:
        _hits[event] = _hits.get(event, 0) + 1
        hit = _hits[event]
    if hit == target[1]:
        if hasattr(signal, "SIGKILL"):
            os.kill(os.getpid(), signal.SIGKILL)
        os._exit(137)
