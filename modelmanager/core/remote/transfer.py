"""Moving chunks between two places several at a time, with progress and cancellation."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait

from modelmanager.core.jobs import JobContext
from modelmanager.core.repo.manifest import Manifest

#: Transfers in flight at once (objects are up to one chunk, 4 MiB by default).
TRANSFERS = 8


def needed_chunks(manifest: Manifest) -> dict[str, int]:
    """Every chunk a version needs and its plain length."""
    return {c.id: c.length for f in manifest.files for c in f.chunks}


def transfer(ids: list[tuple[str, int]], move: Callable[[str, int], int], ctx: JobContext,
             total: int, text: str, *, width: int = TRANSFERS) -> int:  # fmt: skip
    """Run ``move(chunk_id, length)`` for each chunk, ``width`` at a time; bytes moved.

    Progress counts plain bytes (``total``); the first failure or a cancel stops the rest.
    """
    done = [0, 0]  # plain bytes done (progress), bytes moved (only this thread adds)
    queue = list(ids)
    with ThreadPoolExecutor(width, "mm-transfer") as pool:
        inflight: dict[Future[int], int] = {}
        try:
            while queue or inflight:
                ctx.check()
                while queue and len(inflight) < 2 * width:
                    cid, length = queue.pop()
                    inflight[pool.submit(move, cid, length)] = length
                finished, _ = wait(inflight, return_when=FIRST_COMPLETED)
                for fut in finished:
                    length = inflight.pop(fut)
                    done[0] += length
                    done[1] += fut.result()
                    ctx.report(done[0], total, text)
        finally:
            for fut in inflight:
                fut.cancel()
    return done[1]
