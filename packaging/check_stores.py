"""Check a built program finds other tools' model stores on the platform it runs on.

Writes a Hugging Face cache, an Ollama store and an LM Studio folder (named by LM Studio's own
settings file) into a fresh home folder, the way each tool lays them out on this platform (the
cache's snapshots link to its blobs where the OS allows links, and are copies where it does
not, as huggingface_hub does on Windows), then runs ``PROGRAM stores ls --json`` with that home
and checks every model is listed at its default location with the right size. Standard library
only: the release workflow runs it on Windows, macOS and Linux against each bundle.

    python packaging/check_stores.py [--no-links] PROGRAM [ARG...]

``--no-links`` writes the Windows layout (copies) on any OS.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

REVISIONS = ("a" * 40, "b" * 40)


def safetensors_bytes(values: list[float]) -> bytes:
    """A one-tensor safetensors file, written by hand (no numpy needed here)."""
    data = struct.pack(f"<{len(values)}f", *values)
    header = json.dumps({"w": {"dtype": "F32", "shape": [len(values)],
                               "data_offsets": [0, len(data)]}}).encode()  # fmt: skip
    header += b" " * (-len(header) % 8)
    return struct.pack("<Q", len(header)) + header + data


def link_or_copy(target: Path, link: Path, data: bytes, links: bool) -> bool:
    """A relative symlink to ``target`` where this OS allows one (and ``links``), else a copy;
    True if linked."""
    if not links:
        link.write_bytes(data)
        return False
    try:
        link.symlink_to(os.path.relpath(target, link.parent))
    except OSError:  # Windows without developer mode
        link.write_bytes(data)
        return False
    return True


def hf_cache(hub: Path, links: bool) -> dict[str, int]:
    """``models--acme--tiny`` with two revisions, ``refs/main`` on the second."""
    repo = hub / "models--acme--tiny"
    sizes = {}
    for n, rev in enumerate(REVISIONS):
        snap = repo / "snapshots" / rev
        snap.mkdir(parents=True)
        files = {"config.json": b'{"model_type": "tiny"}',
                 "model.safetensors": safetensors_bytes([n + 0.5] * 64)}  # fmt: skip
        for name, data in files.items():
            blob = repo / "blobs" / hashlib.sha256(data).hexdigest()
            blob.parent.mkdir(parents=True, exist_ok=True)
            blob.write_bytes(data)
            if not link_or_copy(blob, snap / name, data, links):
                blob.unlink()  # huggingface_hub moves a new blob into the snapshot there
        sizes[f"acme/tiny@{rev}"] = sum(len(d) for d in files.values())
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(REVISIONS[1])
    return sizes


def ollama(models: Path) -> dict[str, int]:
    """``manifests/registry.ollama.ai/library/tiny/latest`` naming ``blobs/sha256-HEX``."""
    (models / "blobs").mkdir(parents=True)

    def layer(data: bytes, media: str) -> dict[str, Any]:
        digest = hashlib.sha256(data).hexdigest()
        (models / "blobs" / f"sha256-{digest}").write_bytes(data)
        return {"mediaType": media, "digest": f"sha256:{digest}", "size": len(data)}

    weights = b"GGUF" + bytes(60)  # listed by size; no header is read by a listing
    config = layer(b'{"model_format": "gguf"}', "application/vnd.docker.container.image.v1+json")
    layers = [layer(weights, "application/vnd.ollama.image.model"),
              layer(b"{{ .Prompt }}", "application/vnd.ollama.image.template")]  # fmt: skip
    doc = {"schemaVersion": 2, "config": config, "layers": layers}
    manifest = models / "manifests" / "registry.ollama.ai" / "library" / "tiny" / "latest"
    manifest.parent.mkdir(parents=True)
    body = json.dumps(doc).encode()
    manifest.write_bytes(body)
    return {"tiny:latest": len(body) + 24 + len(weights) + 13}


def lmstudio(home: Path, folder: Path) -> dict[str, int]:
    """A models folder moved by the user: LM Studio's settings.json names it."""
    (home / ".lmstudio").mkdir(parents=True)
    (home / ".lmstudio" / "settings.json").write_text(json.dumps({"downloadsFolder": str(folder)}))
    model = folder / "acme" / "tiny-GGUF"
    model.mkdir(parents=True)
    (model / "tiny-Q8_0.gguf").write_bytes(b"GGUF" + bytes(100))
    return {"acme/tiny-GGUF": 104}


def main(argv: list[str]) -> int:
    links = argv[:1] != ["--no-links"]
    argv = argv if links else argv[1:]
    if not argv:
        print(__doc__, file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "home"
        expected = {
            "huggingface": hf_cache(home / ".cache" / "huggingface" / "hub", links),
            "ollama": ollama(home / ".ollama" / "models"),
            "lmstudio": lmstudio(home, Path(tmp) / "elsewhere" / "lm-models"),
        }
        unset = ("HF_HOME", "HF_HUB_CACHE", "XDG_CACHE_HOME", "OLLAMA_MODELS")
        env = {k: v for k, v in os.environ.items() if k not in unset}
        env.update(HOME=str(home), USERPROFILE=str(home), MODELMANAGER_DATA=str(Path(tmp) / "d"),
                   MODELMANAGER_CACHE=str(Path(tmp) / "c"))  # fmt: skip
        out = subprocess.run([*argv, "stores", "ls", "--json"], env=env, capture_output=True,
                             check=True, timeout=300).stdout  # fmt: skip
        listed = {s["kind"]: s for s in json.loads(out)}
        problems = []
        for kind, models in expected.items():
            store = listed.get(kind)
            if store is None:
                problems.append(f"{kind}: not found (listed: {sorted(listed)})")
                continue
            got = {m["ref"]: m for m in store["models"]}
            for ref, size in models.items():
                if ref not in got:
                    problems.append(f"{kind}: {ref} missing (listed: {sorted(got)})")
                elif got[ref]["size"] != size or got[ref]["errors"]:
                    problems.append(f"{kind}: {ref}: size {got[ref]['size']} (want {size}), "
                                    f"errors {got[ref]['errors']}")  # fmt: skip
        main_rev = listed.get("huggingface", {}).get("models", [])
        if not any(m.get("refs") == ["main"] for m in main_rev):
            problems.append("huggingface: refs/main is not on any revision")
    for p in problems:
        print(f"check_stores: {p}", file=sys.stderr)
    print(f"check_stores: {sys.platform}: " + ("FAILED" if problems else "every store found"))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
