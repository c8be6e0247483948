"""Text from files is shown as text: names and metadata that hold bidi overrides, NEL, U+2028 or
ESC are escaped in every listing, kept exact in --json, and exported byte for byte (issue 15)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.conftest import subprocess_env
from tests.support.hostile_text import (
    ARCH,
    ESC,
    ESCAPED_ARCH,
    ESCAPED_FILE,
    ESCAPED_MESSAGE,
    ESCAPED_TENSORS,
    FILE,
    MESSAGE,
    NEL,
    RLO,
    TENSORS,
    hostile_folder,
    raw_hidden,
)


def run(tmp_path: Path, *args: str, code: int = 0) -> tuple[str, str]:
    """``modelmanager --repo REPO ARGS`` in a child process; stdout and stderr, strictly UTF-8."""
    done = subprocess.run(
        [sys.executable, "-m", "modelmanager", "--repo", str(tmp_path / "repo"), *args],
        capture_output=True, env=subprocess_env(tmp_path, PYTHONIOENCODING="utf-8"), timeout=120,
    )  # fmt: skip
    assert done.returncode == code, done.stderr.decode(errors="replace")
    return done.stdout.decode("utf-8"), done.stderr.decode("utf-8")


def out(tmp_path: Path, *args: str) -> str:
    text = run(tmp_path, *args)[0]
    assert raw_hidden(text) == [], (args, text)
    return text


def test_names_and_metadata_are_escaped_in_every_listing(tmp_path: Path) -> None:
    out(tmp_path, "init", "--chunk-size", "64K", "--group-size", "4K")
    one = hostile_folder(tmp_path / "one", 1.0)
    two = hostile_folder(tmp_path / "two", 2.0)
    out(tmp_path, "import", str(one), "--model", "evil", "--message", MESSAGE,
        "--meta", f"origin=web{ESC}]0;title{NEL}")  # fmt: skip
    out(tmp_path, "import", str(two), "--model", "evil", "--message", "two")

    tensors = out(tmp_path, "show", "evil@1", "--tensors")
    for visible in [*ESCAPED_TENSORS, ESCAPED_FILE]:
        assert visible in tensors
    # Each table row stays one line: three tensor rows, whatever the names hold.
    assert len([line for line in tensors.splitlines() if line.startswith("layer.")]) == 3
    show = out(tmp_path, "show", "evil@1")
    assert f"architecture: {ESCAPED_ARCH}" in show
    assert "origin: web\\x1b]0;title\\x85" in show
    assert ESCAPED_MESSAGE in show
    assert ESCAPED_MESSAGE in out(tmp_path, "search", "searchable")
    assert ESCAPED_MESSAGE in out(tmp_path, "log", "evil")
    out(tmp_path, "ls")
    diff = out(tmp_path, "diff", "evil@1", "evil@2")
    assert f"changed  {ESCAPED_TENSORS[0]}" in diff
    assert ESCAPED_FILE in diff


def test_json_and_export_keep_the_exact_text(tmp_path: Path) -> None:
    out(tmp_path, "init", "--chunk-size", "64K", "--group-size", "4K")
    src = hostile_folder(tmp_path / "src", 1.0)
    out(tmp_path, "import", str(src), "--model", "evil", "--message", MESSAGE)

    # No raw hidden character: each is a \uXXXX escape inside a JSON string, parsed back exact.
    doc: dict[str, Any] = json.loads(out(tmp_path, "show", "evil", "--tensors", "--json"))
    assert {t["name"] for t in doc["tensor_list"]} == set(TENSORS)
    assert doc["metadata"]["architecture"] == ARCH
    assert doc["message"] == MESSAGE
    assert FILE in {f["path"] for f in doc["file_list"]}
    found = json.loads(out(tmp_path, "search", "searchable", "--json"))
    assert [v["message"] for v in found] == [MESSAGE]

    out(tmp_path, "export", "evil", str(tmp_path / "out"))
    for name in (FILE, "config.json"):
        assert (tmp_path / "out" / name).read_bytes() == (src / name).read_bytes()


def test_an_error_naming_a_file_is_one_escaped_line(tmp_path: Path) -> None:
    out(tmp_path, "init")
    bad = tmp_path / f"broken{RLO}{NEL}.safetensors"
    bad.write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{}")  # a header that ends too soon
    _out, err = run(tmp_path, "import", str(bad), "--model", "bad", code=2)
    assert raw_hidden(err) == []
    assert err.count("\n") == 1
    assert "broken\\u202e\\x85.safetensors" in err
