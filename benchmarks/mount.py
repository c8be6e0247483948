"""Reading a file through the read-only mount against reading the original and the engine's load.

    nice -n 10 python benchmarks/mount.py [--size-mib 1024] [--repeat 3] [--dir DIR]

One generated bf16 checkpoint (N(0, 0.02) weights), imported with the default codec into a
repository on the same disk folder. In the same run (median of --repeat; "cold" empties the page
cache of what is read first, with posix_fadvise DONTNEED; "warm" has it in the page cache):
  read            a plain read of the original file into a fresh buffer
  mm.load         services.loading.load_version of the version (decode on the thread pool)
  mount           a plain read of the mounted file, by a fresh 'modelmanager mount' each run
                  (its chunk cache and the kernel's cache of the mounted file empty)
  mount 8 MiB     the same, read as cp and sha256sum read: 8 MiB at a time into one buffer
  mount again     the same file read again in the same mount (the kernel's page cache)
  fuse zeros      a plain read of a file of zeros from a bare mfusepy mount that does nothing
                  else: the ceiling of a Python FUSE read on this machine
Ratios are to the plain read and to mm.load in the same cache state. Needs FUSE (fuse3, mfusepy).
Both mounts raise the kernel's read-ahead on themselves where they may (root): the line
"read-ahead" says what it was.
"""

from __future__ import annotations

import argparse
import errno
import os
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.load import read_file
from benchmarks.synthetic import write_checkpoint
from benchmarks.timing import median_seconds
from modelmanager.core.storage import page_cache
from modelmanager.services import init_repository
from modelmanager.services.importing import import_paths
from modelmanager.services.loading import evict_version, load_version
from modelmanager.services.mount_fuse import fuse_problem, raise_read_ahead_at_init, read_ahead_kb

STREAM_BLOCK = 8 << 20


def stream_file(path: Path, block: int = STREAM_BLOCK) -> int:
    """Read ``path`` as cp and sha256sum do: ``block`` bytes at a time into one buffer."""
    buf, total = bytearray(block), 0
    with open(path, "rb", buffering=0) as f:
        while n := f.readinto(buf):
            total += n
    return total


def _mounted(where: Path) -> bool:
    return any(line.split()[1] == str(where) for line in Path("/proc/mounts").read_text()
               .splitlines())  # fmt: skip


def serve_zeros(where: str, size: int) -> None:
    """A bare mfusepy mount of one file of ``size`` zero bytes (the ``fuse zeros`` row)."""
    import mfusepy

    zeros = bytes(1 << 20)

    class Zeros:
        use_ns = True

        def getattr(self, path: str, fh: object = None) -> dict[str, int]:
            if path == "/":
                return {"st_mode": stat.S_IFDIR | 0o555, "st_nlink": 2}
            if path == "/zeros":
                return {"st_mode": stat.S_IFREG | 0o444, "st_nlink": 1, "st_size": size}
            raise OSError(errno.ENOENT, "")

        def readdir(self, path: str, fh: object) -> list[str]:
            return [".", "..", "zeros"]

        def open(self, path: str, fi: mfusepy.fuse_file_info) -> int:
            fi.keep_cache, fi.direct_io, fi.fh = 1, 0, 1
            return 0

        def read(self, path: str, n: int, offset: int, fi: object) -> bytes:
            return zeros[: max(0, min(n, size - offset))]

        def init_with_config(self, conn: object, config: object) -> None:
            raise_read_ahead_at_init(Path(where), conn)  # as the real mount does

    mfusepy.FUSE(Zeros(), where, raw_fi=True, foreground=True, ro=True, max_idle_threads=8)


class Mounted:
    """A ``modelmanager mount`` child (or with ``zeros``, a bare one) serving ``where``."""

    def __init__(self, repo: Path, where: Path, env: dict[str, str], zeros: int = 0) -> None:
        self.where = where
        command = ["-m", "modelmanager", "--repo", str(repo), "mount", str(where)]
        if zeros:
            command = [__file__, "--zeros", str(where), str(zeros)]
        self.proc = subprocess.Popen([sys.executable, *command], env=env,
                                     stdout=subprocess.DEVNULL)  # fmt: skip
        deadline = time.monotonic() + 60
        while not _mounted(where):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("the mount did not start")
            time.sleep(0.02)

    def close(self) -> None:
        subprocess.run(["fusermount3", "-u", str(self.where)], check=True)
        self.proc.wait(timeout=60)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--dir", type=Path, default=None, help="work folder (default: a temp)")
    parser.add_argument("--zeros", nargs=2, help=argparse.SUPPRESS)  # the bare mount's child
    args = parser.parse_args()
    if args.zeros:
        serve_zeros(args.zeros[0], int(args.zeros[1]))
        return
    if (problem := fuse_problem()) is not None:
        raise SystemExit(f"cannot mount here: {problem}")
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        work = Path(tmp)
        env = {**os.environ, "MODELMANAGER_DATA": str(work / "data"),
               "MODELMANAGER_CACHE": str(work / "cache")}  # fmt: skip
        os.environ.update(env)
        src = write_checkpoint(work / "synthetic.safetensors", args.size_mib, "BF16",
                               rows=(1024, 2048, 4096), cols=1024)  # fmt: skip
        size = src.stat().st_size
        ws = init_repository(work / "repo")
        import_paths(ws, [src], "m")
        manifest = ws.repo.resolve("m")
        os.sync()
        where = work / "mnt"
        where.mkdir()
        mounted_file = where / "m" / "@1" / src.name

        def evict_all() -> None:
            os.sync()
            page_cache.evict(src)
            evict_version(ws, manifest)

        seen_read_ahead: set[str] = set()

        def fresh_mount_read(reader: Callable[[Path], object]) -> float:
            m = Mounted(work / "repo", where, env)
            try:
                seen_read_ahead.add(str(read_ahead_kb(where) or "unknown"))
                start = time.perf_counter()
                reader(mounted_file)
                return time.perf_counter() - start
            finally:
                m.close()

        def timed_fresh(
            before: Callable[[], None] | None, reader: Callable[[Path], object]
        ) -> float:
            times = []
            for _ in range(args.repeat):
                if before is not None:
                    before()
                times.append(fresh_mount_read(reader))
            return sorted(times)[len(times) // 2]

        rows: dict[str, float] = {}
        for cache, before in (("cold", evict_all), ("warm", None)):
            read_file(src), load_version(ws, "m")  # warm-up: pools, allocator, page cache
            rows[f"read {cache}"] = median_seconds(lambda: read_file(src), args.repeat, before)[0]
            rows[f"mm.load {cache}"] = median_seconds(lambda: load_version(ws, "m"), args.repeat,
                                                      before)[0]  # fmt: skip
            rows[f"mount {cache}"] = timed_fresh(before, read_file)
            rows[f"mount 8 MiB {cache}"] = timed_fresh(before, stream_file)
        m = Mounted(work / "repo", where, env)
        try:
            read_file(mounted_file)
            rows["mount again warm"] = median_seconds(lambda: read_file(mounted_file),
                                                      args.repeat)[0]  # fmt: skip
        finally:
            m.close()
        m = Mounted(work / "repo", where, env, zeros=size)
        try:
            read_file(where / "zeros")  # after the first read, the kernel's cache holds it
            m.close()
            m = Mounted(work / "repo", where, env, zeros=size)
            rows["fuse zeros warm"] = median_seconds(lambda: read_file(where / "zeros"), 1)[0]
        finally:
            m.close()
        ws.close()
        print(f"cores: {os.cpu_count()}, {src.name}: {size / 1e6:.0f} MB (bf16, codec auto); "
              f"read-ahead on the mount: {', '.join(sorted(seen_read_ahead))} KiB")  # fmt: skip
        for label, seconds in rows.items():
            cache = label.rsplit(" ", 1)[1]
            speed = size / seconds
            print(
                f"  {label:18} {speed / 1e6:8.0f} MB/s   {rows[f'read {cache}'] / seconds:5.2f}x "
                f"plain read   {rows[f'mm.load {cache}'] / seconds:5.2f}x mm.load ({cache})"
            )


if __name__ == "__main__":
    main()
