"""Run by test_main_window: the real window, a 256 MiB import, and a 10 ms UI-thread timer.

Usage: responsiveness_probe.py FOLDER (an empty folder the caller owns and removes).

It runs in its own process, as the app does, so the measurement sees one window and nothing a
previous test left behind. (It moved here while a crash was being hunted; the crash was garbage
collection on worker threads, fixed by gc_guard.) Prints one JSON line: the job's end state,
the timer's ticks, its longest wait and its 95th-percentile wait in milliseconds.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import numpy as np
from PySide6.QtCore import QEventLoop, QTimer
from PySide6.QtWidgets import QApplication

from modelmanager.gui.main_window import MainWindow
from modelmanager.services import init_repository
from modelmanager.services.importing import import_paths
from tests.support.builders import random_weights, write_safetensors


def main() -> None:
    app = QApplication([])
    # The test passes its own tmp_path: a folder of our own under /tmp outlived every run
    # (470 MiB each, 56 of them filled a CI disk).
    base = Path(sys.argv[1])
    os.environ["MODELMANAGER_CACHE"] = str(base / "cache")
    rng = np.random.default_rng(3)
    src = base / "big"
    write_safetensors(src / "model.safetensors",
                      {f"w{i}": random_weights(rng, (4096, 1024)) for i in range(16)})  # fmt: skip
    ws = init_repository(base / "repo")
    window = MainWindow(ws, remember=False)
    window.show()
    gaps: list[float] = []
    last = [time.monotonic()]

    def tick() -> None:
        now = time.monotonic()
        gaps.append(now - last[0])
        last[0] = now

    timer = QTimer()
    timer.timeout.connect(tick)
    timer.start(10)
    job = window.runner.submit(
        "Import big", lambda ctx: import_paths(ws, [src], "big", ctx=ctx, lock_timeout=60)
    )
    last[0] = time.monotonic()
    deadline = time.monotonic() + 120
    while job.active and time.monotonic() < deadline:  # queued, then running
        app.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 20)
    timer.stop()
    ordered = sorted(gaps) or [0.0]
    p95 = ordered[int(0.95 * (len(ordered) - 1))]
    print(json.dumps({"state": job.state, "error": job.error, "ticks": len(gaps),
                      "longest_ms": round(1000 * ordered[-1]),
                      "p95_ms": round(1000 * p95)}))  # fmt: skip
    window.runner.cancel_all_and_wait()


if __name__ == "__main__":
    main()
