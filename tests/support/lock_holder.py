"""Another process holding a repository's writer lock until the test lets it go."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

HOLD = """
import sys
from pathlib import Path
from modelmanager.core.repo.repository import Repository
repo = Repository.open(Path(sys.argv[1]))
with repo.writer():
    print("held", flush=True)
    sys.stdin.readline()
print("released", flush=True)
"""


class Holder:
    """A child process inside ``repo.writer()``; :meth:`release` makes it leave the block."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.proc = proc

    def release(self) -> None:
        """Let the lock go and wait until the child says it did."""
        assert self.proc.stdin is not None
        assert self.proc.stdout is not None
        self.proc.stdin.write("\n")
        self.proc.stdin.close()
        assert self.proc.stdout.readline().strip() == "released"
        self.proc.wait(30)


@contextmanager
def writer_lock_held(repo: Path, env: dict[str, str]) -> Iterator[Holder]:
    """A real subprocess holding ``repo``'s writer lock (killed on exit if still holding)."""
    with subprocess.Popen(
        [sys.executable, "-c", HOLD, str(repo)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env,
    ) as proc:  # fmt: skip
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "held"
        try:
            yield Holder(proc)
        finally:
            proc.kill()
