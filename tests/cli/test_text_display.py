"""Text from files is shown as text: names and metadata that hold bidi overrides, NEL, U+2028 or
ESC are escaped in every listing, kept exact in --json, and exported byte for byte (issue 15)."""

from __future__ import annotations

import json
import subprocess
import sys
import unicodedata
from pathlib import Path
from typing import Any

import numpy as np
from safetensors.numpy import save_file

from tests.conftest import subprocess_env

RLO, NEL, LSEP, ESC = "\u202e", "\x85", "\u2028", "\x1b"
# Tensor names may not hold C0 controls (refused at import); bidi, NEL and U+2028 are allowed.
TENSORS = {
    f"layer.0.{RLO}thgiew": np.arange(64, dtype=np.float32),
    f"layer.1.next{NEL}line": np.ones(32, dtype=np.float32),
    f"layer.2.line{LSEP}sep": np.zeros(16, dtype=np.float32),
}
ARCH = f"Evil{RLO}MLTxetnoCroF{ESC}[2J"  # config.json's architecture: a version's metadata
FILE = f"model{RLO}gpj.safetensors"  # a file name inside the version
MESSAGE = f"searchable first{LSEP}second{NEL}third{ESC}[31m"
RAW = (RLO, NEL, LSEP, ESC)


def run(tmp_path: Path, *args: str) -> str:
    """``modelmanager --repo REPO ARGS`` in a child process; its stdout, decoded strictly."""
    done = subprocess.run(
        [sys.executable, "-m", "modelmanager", "--repo", str(tmp_path / "repo"), *args],
        capture_output=True, env=subprocess_env(tmp_path, PYTHONIOENCODING="utf-8"), timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr.decode(errors="replace")
    return done.stdout.decode("utf-8")


def hostile_folder(root: Path, scale: float) -> Path:
    root.mkdir()
    save_file({k: v * scale for k, v in TENSORS.items()}, str(root / FILE),
              metadata={"format": "pt", f"note{RLO}": f"value{ESC}{LSEP}"})  # fmt: skip
    (root / "config.json").write_text(json.dumps({"architectures": [ARCH]}), encoding="utf-8")
    return root


def assert_no_raw(out: str) -> None:
    hidden = {"Cc", "Cf", "Zl", "Zp", "Cs"}
    raw = [hex(ord(ch)) for ch in out if ch != "\n" and unicodedata.category(ch) in hidden]
    assert raw == [], out


def test_names_and_metadata_are_escaped_in_every_listing(tmp_path: Path) -> None:
    run(tmp_path, "init", "--chunk-size", "64K", "--group-size", "4K")
    one = hostile_folder(tmp_path / "one", 1.0)
    two = hostile_folder(tmp_path / "two", 2.0)
    run(tmp_path, "import", str(one), "--model", "evil", "--message", MESSAGE,
        "--meta", f"origin=web{ESC}]0;title{NEL}")  # fmt: skip
    run(tmp_path, "import", str(two), "--model", "evil", "--message", "two")

    tensors = run(tmp_path, "show", "evil@1", "--tensors")
    assert_no_raw(tensors)
    for visible in ("layer.0.\\u202ethgiew", "layer.1.next\\x85line", "layer.2.line\\u2028sep",
                    "model\\u202egpj.safetensors"):  # fmt: skip
        assert visible in tensors
    show = run(tmp_path, "show", "evil@1")
    assert_no_raw(show)
    assert "architecture: Evil\\u202eMLTxetnoCroF\\x1b[2J" in show
    assert "origin: web\\x1b]0;title\\x85" in show
    assert "searchable first\\u2028second\\x85third\\x1b[31m" in show
    # Each table row stays one line: the tensor table has a header and three rows.
    assert len([line for line in tensors.splitlines() if line.startswith("layer.")]) == 3

    for out in (run(tmp_path, "search", "searchable"), run(tmp_path, "log", "evil"),
                run(tmp_path, "diff", "evil@1", "evil@2"), run(tmp_path, "ls")):  # fmt: skip
        assert_no_raw(out)
    assert "first\\u2028second" in run(tmp_path, "search", "searchable")
    diff = run(tmp_path, "diff", "evil@1", "evil@2")
    assert "changed  layer.0.\\u202ethgiew" in diff
    assert "model\\u202egpj.safetensors" in diff


def test_json_and_export_keep_the_exact_text(tmp_path: Path) -> None:
    run(tmp_path, "init", "--chunk-size", "64K", "--group-size", "4K")
    src = hostile_folder(tmp_path / "src", 1.0)
    run(tmp_path, "import", str(src), "--model", "evil", "--message", MESSAGE)

    text = run(tmp_path, "show", "evil", "--tensors", "--json")
    assert_no_raw(text)  # every hidden character is a \uXXXX escape inside a JSON string
    doc: dict[str, Any] = json.loads(text)
    assert {t["name"] for t in doc["tensors"]} == set(TENSORS)
    assert doc["metadata"]["architecture"] == ARCH
    assert doc["message"] == MESSAGE
    assert doc["files"][1]["path"] == FILE or doc["files"][0]["path"] == FILE

    run(tmp_path, "export", "evil", str(tmp_path / "out"))
    for name in (FILE, "config.json"):
        assert (tmp_path / "out" / name).read_bytes() == (src / name).read_bytes()


def test_an_error_naming_a_file_is_one_escaped_line(tmp_path: Path) -> None:
    run(tmp_path, "init")
    bad = tmp_path / f"broken{RLO}{NEL}.safetensors"
    bad.write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{}")  # a header that ends too soon
    done = subprocess.run(
        [sys.executable, "-m", "modelmanager", "--repo", str(tmp_path / "repo"), "import",
         str(bad), "--model", "bad"],
        capture_output=True, env=subprocess_env(tmp_path, PYTHONIOENCODING="utf-8"), timeout=120,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    err = done.stderr.decode("utf-8")
    assert_no_raw(err)
    assert err.count("\n") == 1
    assert "broken\\u202e\\x85.safetensors" in err
