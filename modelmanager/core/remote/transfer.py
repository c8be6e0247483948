"""Moving chunks between two places several at a time, with progress and cancellation."""

from __future__ import annotations

from collections.abc import Callable

from modelmanager.core.jobs import JobContext, threaded
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
    done = moved = 0  # plain bytes done (progress), bytes moved
    with threaded(lambda item: move(*item), reversed(ids), width, "mm-transfer",
                  ctx=ctx) as results:  # fmt: skip
        for (_cid, length), fut in results:
            done += length
            moved += fut.result()
            ctx.report(done, total, text)
    return moved
