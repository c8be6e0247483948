"""What a lineage query (``show REF --related``) costs per manifest it reads, and so at scale.

    nice -n 10 python benchmarks/lineage.py [--models 40] [--tensors 300] [--repeat 3]

Imports ``--models`` models through the real import path, each one safetensors file of
``--tensors`` 8 KiB tensors cut into 2 KiB chunks (so a manifest has about as many tensors and
chunks as a 7B model's: ~300 tensors, ~1,200 chunks); every other model is a "fine-tune" of
the first (two tensors changed). Prints the least seconds of ``--repeat`` queries reading every
manifest, the seconds per manifest, and what that means for a 10,000-version repository read
in full versus the bounded scan (``services.lineage.MAX_SCAN`` manifests).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.append(str(Path(__file__).resolve().parent.parent))

import numpy as np
from safetensors.numpy import save_file

from modelmanager.services import init_repository
from modelmanager.services.importing import import_paths
from modelmanager.services.lineage import MAX_SCAN, related


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", type=int, default=40)
    ap.add_argument("--tensors", type=int, default=300)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="mm-lineage-"))
    try:
        ws = init_repository(tmp / "repo", chunk_size=2048, group_size=512)
        rng = np.random.default_rng(0)
        base = {f"layers.{i}.w": rng.standard_normal(2048).astype(np.float32)
                for i in range(args.tensors)}  # fmt: skip
        for n in range(args.models):
            tensors = dict(base)
            if n % 2:  # a fine-tune of model 0
                for name in ("layers.0.w", "layers.1.w"):
                    tensors[name] = rng.standard_normal(2048).astype(np.float32)
            else:  # an unrelated model
                tensors = {k: rng.standard_normal(2048).astype(np.float32) for k in base}
            path = tmp / f"src{n}" / "model.safetensors"
            path.parent.mkdir()
            save_file(tensors, str(path))
            import_paths(ws, [path], f"model-{n:03d}")
            shutil.rmtree(path.parent)
        best = float("inf")
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            lin = related(ws, "model-000", limit=10**9)
            best = min(best, time.perf_counter() - t0)
        m = ws.repo.resolve("model-000")
        chunks = sum(len(f.chunks) for f in m.files)
        per = best / max(lin.scanned, 1)
        print(f"manifest: {len(m.tensors)} tensors, {chunks} chunks")
        print(f"query over {lin.scanned} manifests: {best:.3f} s, {1000 * per:.2f} ms each; "
              f"{len(lin.related)} related found")  # fmt: skip
        print(f"10,000 versions read in full: ~{10_000 * per:.1f} s; bounded scan of {MAX_SCAN}: "
              f"~{MAX_SCAN * per:.2f} s")  # fmt: skip
        ws.close()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
