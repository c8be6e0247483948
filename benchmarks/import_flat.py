"""Is one import as fast in a big repository as in a small one? (issue 18), side by side.

    python benchmarks/import_flat.py --work DIR [--rounds 15] [--small 10] [--profile FILE]

``DIR`` is a folder that ``benchmarks/scale.py --keep DIR`` built (its ``repo``, ``cache`` and
``data``). A small repository of ``--small`` models x 5 versions (about 50 versions, the issue's
"import #50") is built beside it in a temporary folder the same way, then ``--rounds`` single
imports go to each in turn (big, small, small, big, ...: load on a shared machine falls on
both alike) through the real import path, in process, each one new version of one probe model
(the same tiny file each time, different values). Prints each repository's median and the
ratio big / small: the issue asks for import #50,001 within 1.5x import #50. The same for
CPU seconds (``time.process_time``: the work, without the waits on disk syncs and on other
processes, which dominate on a shared machine).
``--profile FILE`` also profiles each repository's imports with cProfile (stats in FILE.big
and FILE.small, the top of each printed by cumulative time), to see where the difference goes.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from safetensors.numpy import save_file

# Appended, not inserted: PYTHONPATH (another checkout being measured) comes first.
sys.path.append(str(Path(__file__).resolve().parent.parent))

from benchmarks.scale import PROBE, built_models, import_model
from modelmanager import paths
from modelmanager.services import Workspace, init_repository, open_workspace
from modelmanager.services.importing import import_paths


def one_import(
    ws: Workspace, scratch: Path, model: str, value: int, profile: cProfile.Profile | None
) -> tuple[float, float]:
    """(seconds, CPU seconds) of one import of a tiny safetensors file (filled with ``value``)
    as ``model``."""
    path = scratch / "flat.safetensors"
    weights = np.full((4, 4), value, dtype=np.float32)
    save_file({"weight": weights, "bias": np.arange(4, dtype=np.float32)}, str(path))
    start, cpu = time.perf_counter(), time.process_time()
    if profile is not None:
        profile.enable()
    import_paths(ws, [path], model, message=f"flat probe {value}", metadata={"run": "probe"})
    if profile is not None:
        profile.disable()
    return time.perf_counter() - start, time.process_time() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--work", type=Path, required=True, help="a scale.py --keep folder")
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--small", type=int, default=10, help="models in the small repository")
    parser.add_argument("--profile", type=Path, help="cProfile the big repository's imports")
    args = parser.parse_args()
    work = args.work.absolute()
    if not (work / "repo" / "config.json").exists():
        parser.error(f"{work} holds no repository: build one with scale.py --keep {work}")
    # the big repository's catalog stays warm; the small one's is keyed by its own folder
    os.environ[paths.ENV_CACHE] = str(work / "cache")
    os.environ[paths.ENV_DATA] = str(work / "data")
    small_dir = Path(tempfile.mkdtemp(prefix="mm-flat-"))
    profiles = {k: cProfile.Profile() for k in ("big", "small")} if args.profile else {}
    try:
        scratch = small_dir / "scratch"
        scratch.mkdir()
        small = init_repository(small_dir / "repo")
        for i in range(args.small):
            import_model(small, scratch, i, 5)
        big = open_workspace(work / "repo")
        sizes = {"big": built_models(big), "small": args.small}
        versions = {k: sum(map(len, ws.catalog.all_versions().values()))
                    for k, ws in (("big", big), ("small", small))}  # fmt: skip
        model = f"{PROBE}flat-{os.getpid()}-{int(time.time())}"
        seconds: dict[str, list[float]] = {"big": [], "small": []}
        cpu: dict[str, list[float]] = {"big": [], "small": []}
        for r in range(args.rounds):
            order = ("big", "small") if r % 2 == 0 else ("small", "big")
            for which in order:
                ws = big if which == "big" else small
                prof = profiles.get(which)
                wall, work = one_import(ws, scratch, model, -(10**6 + r), prof)
                seconds[which].append(wall)
                cpu[which].append(work)
        big.close()
        small.close()
    finally:
        shutil.rmtree(small_dir, ignore_errors=True)
    medians = {k: statistics.median(v) for k, v in seconds.items()}
    cpus = {k: statistics.median(v) for k, v in cpu.items()}
    for which in ("small", "big"):
        print(f"{which:5} {sizes[which]:6} models, {versions[which]:6} versions: one import "
              f"{medians[which]:.4f} s (median of {args.rounds}; "
              f"min {min(seconds[which]):.4f}, max {max(seconds[which]):.4f}), "
              f"CPU {cpus[which]:.4f} s")  # fmt: skip
    print(f"ratio big / small: {medians['big'] / medians['small']:.2f} (the issue: within 1.5); "
          f"CPU {cpus['big'] / cpus['small']:.2f}")  # fmt: skip
    for which, profile in profiles.items():
        out = f"{args.profile}.{which}"
        profile.dump_stats(out)
        print(f"\n{which} repository, {args.rounds} imports:")
        pstats.Stats(out).sort_stats("cumulative").print_stats(25)


if __name__ == "__main__":
    main()
