"""Cold loads across several slow devices: one queue per device against one reader per chunk.

    sudo python benchmarks/load_devices.py [--devices 3] [--mbps 40] [--size-mib 96] [--repeat 3]

Each device is a real block device: a loop device over an ext4 image, its reads throttled to
``--mbps`` MB/s by the kernel (cgroup v2 ``io.max`` rbps, or v1
``blkio.throttle.read_bps_device``, on a cgroup this process moves into), so the devices are
slower than the decoder and independent of each other, as separate disks are. The repository's
folder (records) is on the work folder, with main offline: every piece is on the loop devices.
Needs root, losetup and mkfs.ext4; says so and stops otherwise.

In the same run, for a generated bf16 checkpoint stored with the default codec:
  read 1 device     a plain read of the original file copied onto one throttled device
  ec lanes          load_version (cold) of the version stored as 2+1 fragments, each chunk's
                    data fragments read at once on their devices' queues (fetch.FRAGMENT_LANES)
  ec one reader     the same with one reader per chunk reading its fragments one after the
                    other (the fetcher before FRAGMENT_LANES)
  copies=1          load_version (cold) of the version kept as one copy of each chunk spread over
                    the devices by placement (each read on its device's queue)
Rows give logical MB/s (the file's bytes per second), stored MB/s read from the devices, and the
ratio to the plain read from one device.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.synthetic import write_checkpoint
from benchmarks.timing import median_seconds
from modelmanager.core.chunks import fetch
from modelmanager.core.storage import page_cache
from modelmanager.services import Workspace, init_repository
from modelmanager.services.bench_aggregate import stored_read_bytes
from modelmanager.services.devices import add_device, set_device
from modelmanager.services.importing import import_paths
from modelmanager.services.loading import evict_version, load_version
from modelmanager.services.policies import set_policy

CGROUP = Path("/sys/fs/cgroup")


def _run(*cmd: str) -> str:
    return subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.strip()


@contextlib.contextmanager
def loop_devices(work: Path, count: int, size_mib: int) -> Iterator[list[tuple[Path, str]]]:
    """``count`` ext4 loop devices of ``size_mib`` mounted under ``work``: (mount, maj:min)."""
    made: list[tuple[Path, str]] = []
    try:
        for i in range(count):
            image, mount = work / f"disk{i}.img", work / f"disk{i}"
            with open(image, "wb") as f:
                f.truncate(size_mib << 20)
            _run("mkfs.ext4", "-q", "-F", str(image))
            dev = _run("losetup", "-f", "--show", "--direct-io=on", str(image))
            mount.mkdir()
            _run("mount", dev, str(mount))
            made.append((mount, _run("cat", f"/sys/block/{Path(dev).name}/dev")))
        yield made
    finally:
        for mount, _ in made:
            dev = _run("findmnt", "-n", "-o", "SOURCE", str(mount))
            subprocess.run(["umount", str(mount)], check=False)
            subprocess.run(["losetup", "-d", dev], check=False)


@contextlib.contextmanager
def throttled(majmin: list[str], bps: int) -> Iterator[None]:
    """This process in a cgroup whose reads from each ``maj:min`` go at most ``bps``."""
    v2 = (CGROUP / "cgroup.controllers").exists()
    root = CGROUP if v2 else CGROUP / "blkio"
    group, home = root / f"mm-bench-{os.getpid()}", root / "cgroup.procs"
    group.mkdir()
    try:
        for mm in majmin:
            if v2:
                (group / "io.max").write_text(f"{mm} rbps={bps}\n")
            else:
                (group / "blkio.throttle.read_bps_device").write_text(f"{mm} {bps}\n")
        (group / "cgroup.procs").write_text(f"{os.getpid()}\n")
        yield
    finally:
        home.write_text(f"{os.getpid()}\n")
        group.rmdir()


def read_file(path: Path) -> int:
    """A plain read of the whole file (1 MiB at a time); bytes read."""
    n = 0
    with open(path, "rb", buffering=0) as f:
        while chunk := f.read(1 << 20):
            n += len(chunk)
    return n


def stored_bytes(ws: Workspace, ref: str) -> int:
    """Bytes of the pieces a load reads: a whole copy, or K of K+M fragments, of each chunk."""
    return stored_read_bytes(ws, ws.repo.resolve(ref))


def cold(fn: Callable[[], object], evict: Callable[[], object], repeat: int) -> float:
    """Median seconds of ``fn`` with the page cache of what it reads emptied before each run."""

    def before() -> None:
        os.sync()
        evict()

    return median_seconds(fn, repeat, before)[0]


def cold_load(ws: Workspace, ref: str, repeat: int) -> float:
    """Median seconds of a cold load_version of ``ref``."""
    manifest = ws.repo.resolve(ref)
    return cold(lambda: load_version(ws, ref), lambda: evict_version(ws, manifest), repeat)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=3)
    parser.add_argument("--mbps", type=float, default=40.0, help="read limit of each device")
    parser.add_argument("--size-mib", type=int, default=96)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--dir", type=Path, default=None, help="work folder (default: a temp)")
    args = parser.parse_args()
    missing = [t for t in ("losetup", "mkfs.ext4", "mount", "findmnt") if not shutil.which(t)]
    if os.geteuid() != 0 or missing or not page_cache.SUPPORTED:
        sys.exit("needs root, Linux (posix_fadvise) and " + ", ".join(missing or ["losetup"]))
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        work = Path(tmp)
        src = write_checkpoint(work / "synthetic.safetensors", args.size_mib, "BF16",
                               rows=(1024, 2048), cols=1024)  # fmt: skip
        size = src.stat().st_size
        disk_mib = 2 * args.size_mib + 64  # a copy of the file, plus its share of both versions
        with loop_devices(work, args.devices, disk_mib) as disks:
            ws = init_repository(work / "repo")
            set_device(ws, "main", state="offline")
            for i, (mount, _) in enumerate(disks):
                add_device(ws, mount / "mm", name=f"d{i}", tier="cold")
            set_policy(ws, "ec=2+1")
            import_paths(ws, [src], "ec")
            set_policy(ws, "copies=1")
            import_paths(ws, [src], "c1")
            plain = disks[0][0] / "original.safetensors"
            shutil.copyfile(src, plain)
            os.sync()
            bps = int(args.mbps * 1e6)
            rows: list[tuple[str, float, int]] = []
            with throttled([mm for _, mm in disks], bps):
                rows.append(("read 1 device", cold(lambda: read_file(plain),
                                                   lambda: page_cache.evict(plain), args.repeat),
                             size))  # fmt: skip
                for ref, label, lanes in (("ec", "ec lanes", True), ("ec", "ec one reader", False),
                                          ("c1", "copies=1", True)):  # fmt: skip
                    fetch.FRAGMENT_LANES = lanes
                    rows.append((label, cold_load(ws, ref, args.repeat), stored_bytes(ws, ref)))
                fetch.FRAGMENT_LANES = True
            ws.close()
    print(
        f"cores: {os.cpu_count()}; {args.devices} loop devices, reads throttled to "
        f"{args.mbps:g} MB/s each; {size / 1e6:.0f} MB bf16 checkpoint, default codec"
    )
    base = size / rows[0][1]
    for label, seconds, stored in rows:
        print(f"  {label:14} {size / seconds / 1e6:7.1f} MB/s logical  "
              f"{stored / seconds / 1e6:7.1f} MB/s stored  {size / seconds / base:5.2f}x "
              f"plain read of 1 device  ({seconds:.2f} s)")  # fmt: skip


if __name__ == "__main__":
    main()
