"""Peak memory of whole-repository jobs as chunks grow (issue 18): verify, scrub, gc, repair.

    python benchmarks/memory.py [--chunks 10000,100000,1000000] [--work DIR] [--jobs a,b]

For each count, builds a repository through the real import path (``import_paths``): versions
of one model of at most ``PER_VERSION`` chunks each (a generic file of random bytes cut into
1 KiB chunks), so the repository holds that many distinct small chunks in count/10,000
versions. A real repository grows by versions; one version of a million chunks would measure
that version's manifest, not the jobs. Then runs, each in a fresh child process, ``open``
(the floor: interpreter, imports, opening the workspace), ``verify``, ``verify --quick``,
``scrub``, ``gc`` (a real run: nothing is unused), ``repair`` (a real run: nothing is
damaged, so it is the survey repair streams) and ``rebalance`` (nothing to move), and prints
each child's peak RSS (``VmHWM`` in /proc/self/status: ``ru_maxrss`` would carry the parent's
peak across fork and exec), what it adds over the floor, that per chunk, and the ratio to the
same job's peak at the first count. Set ``PYTHONPATH`` to another checkout to measure its code.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# Appended, not inserted: PYTHONPATH (another checkout being measured) comes first.
sys.path.append(str(Path(__file__).resolve().parent.parent))

from modelmanager.services import init_repository
from modelmanager.services.importing import import_paths

CHUNK = 1024
PER_VERSION = 10_000

#: What each child runs on the repository ``repo``; it prints its own peak RSS in KiB.
JOBS = {
    "open": "",
    "verify": "maintenance.verify(ws)",
    "verify --quick": "maintenance.verify(ws, quick=True)",
    "scrub": "redundancy.scrub(ws)",
    "gc": "assert maintenance.collect_garbage(ws).deleted_chunks == 0",
    "repair": "assert redundancy.repair(ws).repaired_chunks == 0",
    "rebalance": "assert redundancy.rebalance(ws).moved_pieces == 0",
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
    """A repository of ``chunks`` distinct 1 KiB chunks, imported ``PER_VERSION`` at a time."""
    ws = init_repository(repo, chunk_size=CHUNK, group_size=CHUNK)
    scratch = repo.parent / "scratch"
    scratch.mkdir(exist_ok=True)
    path = scratch / "weights.bin"
    left, seq = chunks, 0
    while left > 0:
        n = min(left, PER_VERSION)
        path.write_bytes(os.urandom(n * CHUNK))
        seq += 1
        import_paths(ws, [path], "org/model", message=f"version {seq}")
        left -= n
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
    parser.add_argument("--jobs", default=",".join(JOBS), help="which jobs (comma-separated)")
    args = parser.parse_args()
    jobs = ["open", *(j for j in args.jobs.split(",") if j != "open")]
    work = Path(tempfile.mkdtemp(prefix="mm-memory-", dir=args.work))
    rows = []
    first: dict[str, int] = {}
    try:
        for n in (int(x) for x in args.chunks.split(",")):
            repo = work / f"repo-{n}"
            start = time.perf_counter()
            build(repo, n)
            print(f"{n:>9,} chunks  built in {time.perf_counter() - start:.0f} s", flush=True)
            floor = peak_kib(JOBS["open"], repo)
            for name in jobs:
                start = time.perf_counter()
                kib = floor if name == "open" else peak_kib(JOBS[name], repo)
                seconds = time.perf_counter() - start
                first.setdefault(name, kib)
                extra = (kib - floor) * 1024
                rows.append({"chunks": n, "job": name, "peak_mib": round(kib / 1024, 1),
                             "over_floor_mib": round(extra / 2**20, 1),
                             "bytes_per_chunk": round(extra / n),
                             "ratio": round(kib / first[name], 2),
                             "seconds": round(seconds, 1)})  # fmt: skip
                r = rows[-1]
                print(f"{n:>9,} chunks  {name:<15} peak {r['peak_mib']:>7.1f} MiB  "
                      f"+{r['over_floor_mib']:>6.1f} MiB over open  "
                      f"{r['bytes_per_chunk']:>5} B/chunk  x{r['ratio']:.2f} of the first "
                      f"size  ({seconds:.0f} s)", flush=True)  # fmt: skip
            shutil.rmtree(repo)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(rows))


if __name__ == "__main__":
    main()
