"""Peak memory of whole-repository jobs as chunks grow (issue 18): verify and scrub.

    python benchmarks/memory.py [--chunks 10000,100000] [--work DIR]

For each count, builds a repository through the real import path (``import_paths``): ten
versions of one model, each a generic file of random bytes cut into 4 KiB chunks, so the
repository holds that many distinct small chunks. Then runs, each in a fresh child process,
``open`` (the floor: interpreter, imports, opening the workspace), ``verify``, ``verify
--quick`` and ``scrub``, and prints each child's peak RSS (``VmHWM`` in /proc/self/status:
``ru_maxrss`` would carry the parent's peak across fork and exec), what it adds over the
floor, and that per chunk. Set ``PYTHONPATH`` to another checkout to measure its code.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

# Appended, not inserted: PYTHONPATH (another checkout being measured) comes first.
sys.path.append(str(Path(__file__).resolve().parent.parent))

from modelmanager.services import init_repository
from modelmanager.services.importing import import_paths

CHUNK = 4096
VERSIONS = 10

#: What each child runs on the repository ``repo``; it prints its own peak RSS in KiB.
JOBS = {
    "open": "",
    "verify": "maintenance.verify(ws)",
    "verify --quick": "maintenance.verify(ws, quick=True)",
    "scrub": "redundancy.scrub(ws)",
}

CHILD = """
import sys
from pathlib import Path
from modelmanager.services import open_workspace, maintenance, redundancy
ws = open_workspace(Path(sys.argv[1]))
{job}
print(next(line.split()[1] for line in open("/proc/self/status") if line.startswith("VmHWM")))
"""


def build(repo: Path, chunks: int) -> None:
    """A repository of ``chunks`` distinct 4 KiB chunks, imported as ``VERSIONS`` versions."""
    ws = init_repository(repo, chunk_size=CHUNK, group_size=CHUNK)
    scratch = repo.parent / "scratch"
    scratch.mkdir(exist_ok=True)
    per = chunks // VERSIONS
    for seq in range(VERSIONS):
        path = scratch / "weights.bin"
        path.write_bytes(os.urandom(per * CHUNK))
        import_paths(ws, [path], "org/model", message=f"version {seq + 1}")
    shutil.rmtree(scratch)


def peak_kib(job: str, repo: Path) -> int:
    """Peak RSS (KiB) of a child process that opens ``repo`` and runs ``job``."""
    out = subprocess.run(
        [sys.executable, "-c", CHILD.format(job=job), str(repo)],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    return int(out.stdout.split()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--chunks", default="10000,100000")
    parser.add_argument("--work", type=Path, default=None)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="mm-memory-", dir=args.work))
    rows = []
    try:
        for n in (int(x) for x in args.chunks.split(",")):
            repo = work / f"repo-{n}"
            build(repo, n)
            floor = peak_kib(JOBS["open"], repo)
            for name, job in JOBS.items():
                kib = floor if name == "open" else peak_kib(job, repo)
                extra = (kib - floor) * 1024
                rows.append({"chunks": n, "job": name, "peak_mib": round(kib / 1024, 1),
                             "over_floor_mib": round(extra / 2**20, 1),
                             "bytes_per_chunk": round(extra / n)})  # fmt: skip
                r = rows[-1]
                print(f"{n:>9,} chunks  {name:<15} peak {r['peak_mib']:>7.1f} MiB  "
                      f"+{r['over_floor_mib']:>6.1f} MiB over open  "
                      f"{r['bytes_per_chunk']:>5} B/chunk", flush=True)  # fmt: skip
            shutil.rmtree(repo)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(rows))


if __name__ == "__main__":
    main()
