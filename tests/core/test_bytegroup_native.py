"""The bytegroup codec's C loops checked without Python (tests/native/bytegroup_kernels.c, issue
20): natively (SSE2 and SSSE3 on x86-64, and the scalar build), and cross-compiled for arm64 and
run under qemu-aarch64, so the NEON loops Apple silicon and arm64 Linux run are checked on every
CI run here, not only where an arm64 machine builds the wheel."""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
from pathlib import Path

import pytest

HARNESS = Path(__file__).resolve().parents[1] / "native" / "bytegroup_kernels.c"
ARM64 = platform.machine().lower() in ("aarch64", "arm64")


def _tool(*names: str) -> str:
    """The first of ``names`` on PATH; a skip where none is (a failure in CI, which installs
    them: scripts/setup.sh), so a missing tool there cannot pass silently."""
    for name in names:
        found = shutil.which(name)
        if found:
            return found
    if os.environ.get("CI"):
        pytest.fail(f"CI has none of {names}: scripts/setup.sh test installs them")
    pytest.skip(f"none of {names} here")


def _compile(command: list[str]) -> None:
    done = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stdout + done.stderr  # the compiler's own words


def _check(command: list[str]) -> str:
    done = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    word, paths, cases = done.stdout.split()
    assert word == "ok"
    assert int(cases) > 10_000  # every length to 300 and the long ones, each kind
    return paths


@pytest.mark.parametrize("flags", [[], ["-DBG_NO_SIMD"]], ids=["vector", "scalar"])
def test_the_c_loops_match_their_definition_natively(tmp_path: Path, flags: list[str]) -> None:
    cc = _tool("cc", "gcc", "clang")
    exe = tmp_path / "kernels"
    _compile([cc, "-O2", "-Wall", "-Werror", *flags, "-o", str(exe), str(HARNESS)])
    paths = _check([str(exe)])
    if flags:
        assert paths == "scalar"
    elif platform.machine().lower() in ("x86_64", "amd64"):
        assert paths.startswith("sse2")
    elif ARM64:
        assert paths == "neon"


def test_the_neon_loops_match_their_definition_under_qemu(tmp_path: Path) -> None:
    if ARM64:
        pytest.skip("an arm64 machine runs the NEON loops natively (the test above)")
    cc = _tool("aarch64-linux-gnu-gcc")
    qemu = _tool("qemu-aarch64", "qemu-aarch64-static")
    exe = tmp_path / "kernels-arm64"
    _compile([cc, "-O2", "-Wall", "-Werror", "-static", "-o", str(exe), str(HARNESS)])
    assert _check([qemu, str(exe)]) == "neon"
