"""Erasure coding throughput against zfec alone, and degraded reads against plain reads.

    python benchmarks/erasure.py [--size-mib 256] [--repeat 5]

Printed side by side from one run:
  zfec encode            zfec.Encoder(4, 6) producing 2 parity blocks from 4 MiB objects
  fragments encode       ours: zfec + BLAKE3 of each fragment + headers (what import does)
  fragments decode       ours from the 4 data fragments (no parity math)
  fragments decode (2 lost)  ours from 2 data + 2 parity fragments (Reed-Solomon decode)
  export plain           a 4+2 repository on 6 device folders, all present
  export degraded        the same repository with 2 of the 6 device folders deleted
  export copies=1        the same data stored as single copies (the plain-read baseline)
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import zfec

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.timing import median_seconds
from modelmanager.core.codecs import CodecSettings
from modelmanager.core.redundancy import decode_fragments, encode_fragments, parse_fragment
from modelmanager.services import Workspace, init_repository
from modelmanager.services.devices import add_device, set_device
from modelmanager.services.exporting import export_ref
from modelmanager.services.importing import import_paths
from modelmanager.services.policies import set_policy

OBJ = 4 << 20


def median_rate(fn: Callable[[], object], nbytes: int, repeat: int) -> float:
    """MB/s of ``fn`` over ``nbytes``, from the median of ``repeat`` runs."""
    return nbytes / median_seconds(fn, repeat)[0] / 1e6


def codec_rows(size: int, repeat: int) -> list[tuple[str, float]]:
    rng = np.random.default_rng(0)
    objects = [rng.bytes(OBJ) for _ in range(size // OBJ)]
    enc = zfec.Encoder(4, 6)

    def zfec_only() -> None:
        for obj in objects:
            blocks = tuple(obj[i * (OBJ // 4) : (i + 1) * (OBJ // 4)] for i in range(4))
            enc.encode(blocks, (4, 5))

    frags = [
        [
            parse_fragment(b"".join(bytes(p) for p in parts), "b")
            for parts in encode_fragments(o, 4, 2)
        ]
        for o in objects
    ]
    return [
        ("zfec encode (library alone)", median_rate(zfec_only, size, repeat)),
        ("fragments encode", median_rate(
            lambda: [encode_fragments(o, 4, 2) for o in objects], size, repeat)),
        ("fragments decode", median_rate(
            lambda: [decode_fragments({i: f[i] for i in range(4)}, 4, 2) for f in frags],
            size, repeat)),
        ("fragments decode (2 lost)", median_rate(
            lambda: [decode_fragments({i: f[i] for i in (1, 2, 4, 5)}, 4, 2) for f in frags],
            size, repeat)),
    ]  # fmt: skip


def cluster(base: Path, policy: str, src: Path) -> tuple[Workspace, list[Path]]:
    ws = init_repository(base / "repo", codec=CodecSettings("raw"))
    set_device(ws, "main", state="offline")
    roots = []
    for i in range(6):
        add_device(ws, base / f"dev{i}", name=f"d{i}")
        roots.append(base / f"dev{i}")
    set_policy(ws, policy)
    import_paths(ws, [src], "bench")
    return ws, roots


def export_rows(base: Path, size: int, repeat: int) -> list[tuple[str, float]]:
    src = base / "src" / "weights.bin"
    src.parent.mkdir(parents=True)
    src.write_bytes(np.random.default_rng(1).bytes(size))
    out = base / "out"

    def export(ws: Workspace) -> Callable[[], object]:
        def run() -> None:
            shutil.rmtree(out, ignore_errors=True)
            os.sync()
            export_ref(ws, "bench", out)

        return run

    plain_ws, _ = cluster(base / "copies", "copies=1", src)
    ec_ws, roots = cluster(base / "ec", "ec=4+2", src)
    rows = [
        ("export copies=1 (plain read)", median_rate(export(plain_ws), size, repeat)),
        ("export ec=4+2, all devices", median_rate(export(ec_ws), size, repeat)),
    ]
    for root in roots[:2]:
        shutil.rmtree(root)
    ec_ws.repo.reload_layout()
    rows.append(("export ec=4+2, 2 devices lost", median_rate(export(ec_ws), size, repeat)))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size-mib", type=int, default=256)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    size = args.size_mib << 20
    base = Path(tempfile.mkdtemp(prefix="mm-ec-bench-"))
    os.environ.setdefault("MODELMANAGER_CACHE", str(base / "cache"))
    try:
        rows = codec_rows(size, args.repeat)
        zfec_rate = rows[0][1]
        print(f"cores: {os.cpu_count()}, {args.size_mib} MiB of random data, 4 MiB objects, "
              f"median of {args.repeat}")  # fmt: skip
        print(f"  {'step':32} {'MB/s':>8} {'vs zfec':>8}")
        for name, rate in rows:
            print(f"  {name:32} {rate:8.0f} {rate / zfec_rate:8.2f}")
        rows = export_rows(base, size, args.repeat)
        plain = rows[0][1]
        print(f"\n  {'export (raw codec, 6 devices)':32} {'MB/s':>8} {'vs plain':>8}")
        for name, rate in rows:
            print(f"  {name:32} {rate:8.0f} {rate / plain:8.2f}")
    finally:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
