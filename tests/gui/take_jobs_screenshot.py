"""The Jobs tab screenshot for docs/gui.md: an item job, a byte job, a waiting write, a failed
job and a finished one, as the tab shows them.

Run: ``QT_QPA_PLATFORM=offscreen .venv/bin/python -m tests.gui.take_jobs_screenshot [OUT_DIR]``.
The running jobs are held at a known point so the picture shows them mid-way: each
reports what the real job reports (verify counts chunks, import counts bytes); the failed
one is a real import of a broken file.
"""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np

from modelmanager.core.jobs import JobContext
from modelmanager.gui import TABS
from modelmanager.services import init_repository
from modelmanager.services.importing import import_paths
from tests.gui import shots
from tests.support.builders import hf_folder, raw_safetensors


def main(out: Path) -> None:
    """Build a small repository, hold a few jobs mid-way, save the Jobs tab."""
    with shots.throwaway("mm-jobs-shot-") as tmp:
        app = shots.application()
        ws = init_repository(tmp / "repo")
        import_paths(ws, [hf_folder(tmp / "src", np.random.default_rng(1))], "acme/tiny-llama")
        win = shots.open_window(app, ws, (1280, 560))
        go = threading.Event()

        def held(steps: list[tuple[int, int]]):  # type: ignore[no-untyped-def]
            def work(ctx: JobContext) -> None:
                for done, total in steps:
                    ctx.report(done, total, "")
                    go.wait(0.6)  # a rate to show: the jobs have run a little while
                go.wait(60)

            return work

        def free(ctx: JobContext) -> None:
            ctx.report(200, 412, "")
            go.wait(0.5)
            ctx.report(412, 412, "")

        freeing = win.runner.submit("Free unused space", free, unit="chunk", writes=ws.repo.root)
        shots.wait(app, lambda: freeing.state == "done")
        bad = raw_safetensors(tmp / "broken.safetensors", b"{not json")
        dialog = win.imports.open_dialog([bad])
        dialog.accept()
        shots.wait(app, lambda: win.failure_notice.isVisible() and not win.runner.running())
        win.runner.submit("Verify the repository", held([(3100, 12800), (5200, 12_800)]),
                          unit="chunk")  # fmt: skip
        gib = 1 << 30
        steps = [(gib, 15 * gib // 2), (3 * gib // 2, 15 * gib // 2)]
        importing = win.runner.submit("Import acme/llama-3-8b", held(steps), writes=ws.repo.root)
        win.runner.submit("Repair", lambda _ctx: None, writes=ws.repo.root)
        shots.wait(app, lambda: importing.done == 3 * gib // 2)
        win.tabs.setCurrentIndex(TABS.index("jobs"))
        shots.settle(app, 20)
        shots.save(win, out, "jobs.png")
        go.set()
        shots.close(win, ws)


if __name__ == "__main__":
    main(shots.out_dir())
