"""Does ModelManager feel the same with 10 or 10,000 models? (issue 18)

    python benchmarks/scale.py [--sizes 10,100,1000] [--versions 5] [--repeat 3] [--work DIR]
                               [--keep DIR] [--probe 7]

Grows ONE repository through the real import path (``services.importing.import_paths``, a tiny
safetensors file per version, each version different) to every size in ``--sizes`` in turn,
and at each size prints:

- ``import``: median seconds of the last model's imports (one per version), in process;
- ``import probe``: median seconds of ``--probe`` single imports of a fresh probe model (the
  same tiny file each time, different values) made right after the repository reached this
  size, in process; the same probe made when the repository held 10 models (about 50
  versions) is printed once as ``import probe at #51``, and every size's probe as a ratio to
  it (the issue's "import #50,001 within 1.5x import #50"). Probe models are named
  ``probe/...`` and are not counted as models of the build. The two probes run minutes apart,
  so on a shared machine their ratio mostly says how the load changed:
  ``benchmarks/import_flat.py --work DIR`` on a kept build gives the ratio side by side;
- ``rebuild``: ``Catalog.rebuild`` in process (forget every row, read every manifest again);
- ``stats index`` / ``stats read``: in process, ``stats``'s figures from the catalog's index
  (``Catalog.measure_stored``: one listing of the pieces, no manifest read) against reading
  every manifest (``services.maintenance.stats`` given them);
- ``related index`` / ``related scan``: in process, ``show --related``'s lookup from the
  catalog's digest index (every version) against reading manifests (up to 500);
- ``cold X``: the command ``X`` as a subprocess right after the catalog file is deleted;
- ``warm X``: the median of ``--repeat`` runs of ``X`` as a subprocess; ``search`` is the broad
  query ``epoch 3`` (one version of every model: N rows printed), ``search one`` a selective
  one (``run<middle>``, the middle model's metadata: its 5 versions); ``typo`` is ``show`` of
  a misspelled name (``orgN/modl-...``), which fails naming the close ones;
- ``floor``: ``modelmanager --version`` as a subprocess (what any command costs at least);
- ``verify``, ``scrub``, ``gc``: the whole-repository jobs, once each, as subprocesses, and
  ``X peak MiB``: the largest resident memory each reaches, run once more in a child that
  reads its own ``VmHWM`` (``benchmarks/memory.py``'s measure; Linux);
- ``window shown`` / ``window full tree``: the desktop window on the warm catalog, in a
  subprocess (offscreen): seconds from making it to shown, and to every model listed
  (``benchmarks/window_start.py``'s measure; the median of ``--repeat``; skipped where PySide6
  is not installed).

The last column is the growth exponent k (time ~ N^k) from the previous size, computed on the
time above the floor for subprocess rows (none when that is under 30 ms, which is noise); a
last table repeats it between the two largest sizes for every row.
``--keep DIR`` builds in DIR and keeps it: a later run with the same DIR starts from the models
already there (so two checkouts can be measured on one repository without building it twice).
Run from another checkout's folder (with ``PYTHONPATH=.``) to measure that checkout's code:
the subprocesses run ``-m modelmanager`` from the current folder.
"""

from __future__ import annotations

import argparse
import functools
import importlib.util
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from statistics import median

import numpy as np
from safetensors.numpy import save_file

# Appended, not inserted: PYTHONPATH (another checkout being measured) comes first.
sys.path.append(str(Path(__file__).resolve().parent.parent))

from benchmarks.memory import JOBS as MEMORY_JOBS
from benchmarks.memory import peak_kib
from benchmarks.timing import median_seconds
from modelmanager import paths
from modelmanager.core.catalog import catalog_path
from modelmanager.services import Workspace, init_repository, open_workspace
from modelmanager.services.importing import import_paths
from modelmanager.services.lineage import related, scan_related
from modelmanager.services.maintenance import stats

COMMANDS = ("ls", "log", "search", "search one", "show", "related", "stats", "typo")
#: Whole-repository jobs, timed once each (they read every chunk or list every piece).
JOBS = ("verify", "scrub", "gc")


def model_name(i: int) -> str:
    """The i-th model's name: 37 organisations, so names sort and search like real ones."""
    return f"org{i % 37}/model-{i:05d}"


#: A misspelled model name (``show`` of it fails with close names): the not-found path.
TYPO = "/modl-"

#: Probe models (timed single imports) are named under this, and not counted as built models.
PROBE = "probe/"
#: The start probe is made when the build holds this many models (about 50 versions).
PROBE_AT = 10


def built_models(ws: Workspace) -> int:
    """Models of the build in the repository (probe models left out)."""
    return sum(1 for row in ws.catalog.models() if not row.name.startswith(PROBE))


def probe_imports(ws: Workspace, scratch: Path, tag: int, count: int) -> float:
    """Median seconds of ``count`` single imports of a fresh probe model (same size as every
    build import, different values): one import's cost at the repository's current size."""
    seconds = []
    for seq in range(1, count + 1):
        path = scratch / "probe.safetensors"
        weights = np.full((4, 4), -(tag * 100 + seq), dtype=np.float32)
        save_file({"weight": weights, "bias": np.arange(4, dtype=np.float32)}, str(path))
        start = time.perf_counter()
        import_paths(ws, [path], f"{PROBE}at-{tag:06d}", message=f"probe {seq}",
                     metadata={"run": "probe"})  # fmt: skip
        seconds.append(time.perf_counter() - start)
    return sorted(seconds)[len(seconds) // 2]


def import_model(ws: Workspace, scratch: Path, i: int, versions: int) -> list[float]:
    """Import ``versions`` versions of model ``i``; seconds of each import."""
    seconds = []
    for seq in range(1, versions + 1):
        path = scratch / "model.safetensors"
        weights = np.full((4, 4), i * 100 + seq, dtype=np.float32)
        save_file({"weight": weights, "bias": np.arange(4, dtype=np.float32)}, str(path))
        start = time.perf_counter()
        labels = ("prod",) if seq == versions else ()
        import_paths(ws, [path], model_name(i), message=f"epoch {seq} checkpoint",
                     metadata={"run": f"run{i}"}, labels=labels)  # fmt: skip
        seconds.append(time.perf_counter() - start)
    return seconds


def run(args: list[str], repo: Path, typo: bool = False) -> float:
    """Seconds of one ``modelmanager`` subprocess, which must succeed (``typo``: fail with the
    usage exit code, naming close names)."""
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "modelmanager", "--repo", str(repo), *args],
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)  # fmt: skip
    seconds = time.perf_counter() - start
    if done.returncode != (2 if typo else 0) or (typo and "did you mean" not in done.stderr):
        raise SystemExit(f"{' '.join(args)}: exit {done.returncode}: {done.stderr.strip()}")
    return seconds


#: Run in a child by :func:`window_start`: the window on repository argv[1], until argv[2]
#: models are listed; prints (shown, full tree, at rest) seconds as JSON.
_WINDOW = """
import json, sys
from pathlib import Path
from PySide6.QtWidgets import QApplication
from benchmarks.window_start import start
from modelmanager.gui.gc_guard import MainThreadGarbageCollector
app = QApplication([])
collector = MainThreadGarbageCollector()  # as the app runs: collections on the UI thread
print(json.dumps(start(app, Path(sys.argv[1]), int(sys.argv[2]))))
"""


def window_start(repo: Path, models: int) -> tuple[float, float]:
    """Seconds from making the window to shown, and to ``models`` models listed (a child,
    offscreen, on the catalog as it is)."""
    checkout = str(Path(__file__).resolve().parent.parent)  # where ``benchmarks`` is
    path = os.pathsep.join(p for p in (os.environ.get("PYTHONPATH"), checkout) if p)
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", PYTHONPATH=path)
    done = subprocess.run([sys.executable, "-c", _WINDOW, str(repo), str(models)], env=env,
                          capture_output=True, text=True)  # fmt: skip
    if done.returncode != 0:
        raise SystemExit(f"window start: exit {done.returncode}: {done.stderr.strip()}")
    shown, full, _rest = json.loads(done.stdout.strip().splitlines()[-1])
    return shown, full


def command(name: str, n: int) -> list[str]:
    """The arguments of command ``name`` on a repository of ``n`` models."""
    middle = model_name(n // 2)
    return {"ls": ["ls"], "log": ["log", middle], "search": ["search", "epoch 3"],
            "search one": ["search", f"run{n // 2}"], "show": ["show", f"{middle}@3"],
            "related": ["show", f"{middle}@3", "--related"],
            "stats": ["stats"], "typo": ["show", middle.replace("/model-", TYPO)],
            "verify": ["verify"],
            "scrub": ["scrub"], "gc": ["gc"]}[name]  # fmt: skip


def measure(
    repo: Path, ws: Workspace, n: int, repeat: int, imports: list[float], probe: float
) -> dict[str, float]:
    """Every row's seconds at size ``n`` (``probe``: the probe imports' median, made first)."""
    # none imported here when the repository was already this size (--keep)
    rows: dict[str, float] = {"import": sorted(imports)[len(imports) // 2] if imports else math.nan}
    rows["import probe"] = probe
    rows["rebuild"] = median_seconds(ws.catalog.rebuild, 1)[0]
    rows["stats index"] = median_seconds(ws.catalog.measure_stored, repeat)[0]
    rows["stats read"] = median_seconds(lambda: stats(ws, list(ws.repo.iter_manifests())),
                                        repeat)[0]  # fmt: skip
    ref = f"{model_name(n // 2)}@3"
    rows["related index"] = median_seconds(lambda: related(ws, ref), repeat)[0]
    rows["related scan"] = median_seconds(lambda: scan_related(ws, ref), repeat)[0]
    catalog = catalog_path(paths.cache_dir(), ws.repo)

    def drop_catalog() -> None:
        for suffix in ("", "-wal", "-shm"):
            Path(f"{catalog}{suffix}").unlink(missing_ok=True)

    listed = len(ws.catalog.models())  # probe models too: the window lists them
    ws.close()
    rows["floor"] = median_seconds(lambda: run(["--version"], repo), repeat)[0]
    for name in COMMANDS:
        once = functools.partial(run, command(name, n), repo, typo=name == "typo")
        rows[f"cold {name}"] = median_seconds(once, 1, drop_catalog)[0]
        rows[f"warm {name}"] = median_seconds(once, repeat)[0]
    for name in JOBS:
        rows[name] = run(command(name, n), repo)
        if sys.platform == "linux":  # the child reads its own VmHWM
            rows[f"{name} peak MiB"] = peak_kib(MEMORY_JOBS[name], repo) / 1024
    if importlib.util.find_spec("PySide6") is not None:
        shown, full = zip(*(window_start(repo, listed) for _ in range(repeat)), strict=True)
        rows["window shown"], rows["window full tree"] = median(shown), median(full)
    return rows


#: Rows measured in this process, or inside a child (no floor to take off), or in MiB.
INSIDE = ("import", "import probe", "rebuild", "floor", "stats index", "stats read",
          "related index", "related scan", "window shown", "window full tree",
          *(f"{job} peak MiB" for job in JOBS))  # fmt: skip
#: Below this (seconds above the floor), a subprocess row is noise, and has no exponent.
NOISE = 0.03


def exponent(n0: int, t0: float, n1: int, t1: float, noise: float = 0.0) -> float:
    """k in t ~ n^k between two sizes (nan when a time is within ``noise``)."""
    if t0 <= noise or t1 <= noise:
        return math.nan
    return math.log(t1 / t0) / math.log(n1 / n0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="10,100,1000", help="model counts, ascending")
    parser.add_argument("--versions", type=int, default=5)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--work", type=Path, help="folder to build in (default: a temp folder)")
    parser.add_argument("--keep", type=Path, help="build in this folder, reuse it, keep it")
    parser.add_argument("--probe", type=int, default=7, help="single imports per import probe")
    args = parser.parse_args()
    sizes = sorted(int(s) for s in args.sizes.split(","))
    if args.keep:
        work = args.keep.absolute()
        work.mkdir(parents=True, exist_ok=True)
    else:
        work = Path(tempfile.mkdtemp(prefix="mm-scale-", dir=args.work))
    os.environ[paths.ENV_CACHE] = str(work / "cache")
    os.environ[paths.ENV_DATA] = str(work / "data")
    repo, scratch = work / "repo", work / "scratch"
    scratch.mkdir(exist_ok=True)
    ws = open_workspace(repo) if (repo / "config.json").exists() else init_repository(repo)
    built = built_models(ws)
    # the start probe is kept beside the repository, so a --keep run that resumes still has it
    probe_file = work / "import-probe.json"
    start_probe = json.loads(probe_file.read_text())["seconds"] if probe_file.exists() else None
    if built > sizes[0]:
        parser.error(f"{work} already holds {built} models, more than {sizes[0]}")
    previous: tuple[int, dict[str, float]] | None = None
    exponents: dict[str, float] = {}
    print(f"{args.versions} versions per model; seconds; k = growth exponent from the previous "
          "size (on the time above the floor for subprocesses)", flush=True)  # fmt: skip
    try:
        for n in sizes:
            start = time.perf_counter()
            imports: list[float] = []
            while built < n:
                if built == PROBE_AT and start_probe is None:
                    start_probe = probe_imports(ws, scratch, built * args.versions, args.probe)
                    probe_file.write_text(json.dumps({"versions": built * args.versions,
                                                      "seconds": start_probe}))  # fmt: skip
                    print(f"import probe at #{built * args.versions + 1}: "
                          f"{start_probe:.4f} s (median of {args.probe})", flush=True)  # fmt: skip
                imports = import_model(ws, scratch, built, args.versions)
                built += 1
            build = time.perf_counter() - start
            probe = probe_imports(ws, scratch, n * args.versions, args.probe)
            rows = measure(repo, ws, n, args.repeat, imports, probe)
            ws = open_workspace(repo)
            print(f"\nN = {n} models ({n * args.versions} versions; built in {build:.1f} s)")
            if start_probe is not None:
                print(f"  import probe at #{n * args.versions + 1}: {probe:.4f} s = "
                      f"{probe / start_probe:.2f}x the probe at #{PROBE_AT * args.versions + 1} "
                      f"({start_probe:.4f} s; the issue: within 1.5x)", flush=True)  # fmt: skip
            for name, seconds in rows.items():
                line = f"  {name:16} {seconds:8.3f}"
                if name not in INSIDE:
                    line += f"  (+{seconds - rows['floor']:.3f} over the floor)"
                if previous is not None:
                    n0, before = previous
                    inside = name in INSIDE  # no process started
                    floor0 = 0.0 if inside else before["floor"]
                    floor1 = 0.0 if inside else rows["floor"]
                    noise = 0.0 if inside else NOISE
                    k = exponent(n0, before[name] - floor0, n, seconds - floor1, noise)
                    exponents[name] = k
                    line += "  k=-, at the floor" if math.isnan(k) else f"  k={k:.2f}"
                print(line, flush=True)
            previous = (n, rows)
        if len(sizes) > 1:
            print(f"\ngrowth exponent k between N = {sizes[-2]} and N = {sizes[-1]}:")
            for name, k in exponents.items():
                print(f"  {name:16} " + ("-, at the floor" if math.isnan(k) else f"{k:.2f}"))
    finally:
        ws.close()
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
