"""Is one import as fast in a big repository as in a small one? (issue 18), side by side.

    python benchmarks/import_flat.py --work DIR [--rounds 15] [--small 10] [--profile FILE]

``DIR`` is a folder that ``benchmarks/scale.py --keep DIR`` built (its ``repo``, ``cache`` and
``data``). A small repository of ``--small`` models x 5 versions (about 50 versions, the issue's
"import #50") is built beside it in a temporary folder the same way, then ``--rounds`` single
imports go to each in turn (big, small, small, big, ...: load on a shared machine falls on
both alike) through the real import path, in process, each one new version of one probe model
(the same tiny file each time, different values). Prints each repository's median and the
ratio big / small: the issue asks for import #50,001 within 1.5x import #50.
``--profile FILE`` also profiles the big repository's imports with cProfile (stats in FILE,
the top of them printed by cumulative time).
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
) -> float:
    """Seconds of one import of a tiny safetensors file (filled with ``value``) as ``model``."""
    path = scratch / "flat.safetensors"
    weights = np.full((4, 4), value, dtype=np.float32)
    save_file({"weight": weights, "bias": np.arange(4, dtype=np.float32)}, str(path))
    start = time.perf_counter()
    if profile is not None:
        profile.enable()
    import_paths(ws, [path], model, message=f"flat probe {value}", metadata={"run": "probe"})
    if profile is not None:
        profile.disable()
    return time.perf_counter() - start


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
    profile = cProfile.Profile() if args.profile else None
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
        for r in range(args.rounds):
            order = ("big", "small") if r % 2 == 0 else ("small", "big")
            for which in order:
                ws = big if which == "big" else small
                prof = profile if which == "big" else None
                seconds[which].append(one_import(ws, scratch, model, -(10**6 + r), prof))
        big.close()
        small.close()
    finally:
        shutil.rmtree(small_dir, ignore_errors=True)
    medians = {k: statistics.median(v) for k, v in seconds.items()}
    for which in ("small", "big"):
        print(f"{which:5} {sizes[which]:6} models, {versions[which]:6} versions: one import "
              f"{medians[which]:.4f} s (median of {args.rounds}; "
              f"min {min(seconds[which]):.4f}, max {max(seconds[which]):.4f})")  # fmt: skip
    print(f"ratio big / small: {medians['big'] / medians['small']:.2f} (the issue: within 1.5)")
    if profile is not None and args.profile is not None:
        profile.dump_stats(str(args.profile))
        pstats.Stats(str(args.profile)).sort_stats("cumulative").print_stats(30)


if __name__ == "__main__":
    main()
