"""The bad-input catalogue: every hostile file is refused by a real import, cheaply and cleanly.

Each case runs ``modelmanager import`` in a child process limited to 1 GiB of address space
(a file that made us allocate a terabyte would die there, not pass). It must exit with 2 and
one line naming the file and the cause, and leave the repository byte for byte as it was.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import subprocess_env
from tests.core.test_npy import _npy, npz_bomb
from tests.core.test_pytorch import _calls, _legacy, _torch_zip
from tests.core.test_sandboxed_formats import _gguf_header
from tests.support import hostile_headers, hostile_pickle
from tests.support.builders import raw_safetensors, tree_state
from tests.support.hostile import Case, Legal, blob, st, zipped

LIMIT = 1 << 30
#: What one hostile input may cost above a clean import of a small file (issue 15).
RSS_ABOVE_BASELINE = 256 << 20
CPU_SECONDS = 10.0
_st, _bytes, _zip = st, blob, zipped


F32 = {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}
NPY_OK = _npy(b"{'descr': '<f4', 'fortran_order': False, 'shape': (1,)}", b"\0" * 4)
#: Lists nested 3,000 deep (MARK ... LIST, repeated): refused by depth, not by a crash.
DEEP = b"\x80\x02" + b"(" * 3000 + b"l" * 3000 + b"."

CASES: list[Case] = [Case(*c) for c in [
    # safetensors
    ("st truncated", "m.safetensors", _st({"w": F32}, b"\0" * 8), "run past the end"),
    ("st header past the end", "m.safetensors", _st(b"{}", length=1 << 40), "exceeds"),
    ("st non-JSON header", "m.safetensors", _st(b"{nope"), "not valid JSON"),
    ("st terabyte tensor", "m.safetensors",
     _st({"w": {"dtype": "F32", "shape": [1 << 38], "data_offsets": [0, 1 << 40]}}),
     "past the end"),
    ("st negative shape", "m.safetensors",
     _st({"w": {"dtype": "F32", "shape": [-4], "data_offsets": [0, 16]}}, b"\0" * 16), "negative"),
    ("st overflowing shape", "m.safetensors",
     _st({"w": {"dtype": "F64", "shape": [2**62, 2**62], "data_offsets": [0, 8]}}, b"\0" * 8),
     "needs"),
    ("st overlapping", "m.safetensors",
     _st({"a": F32, "b": {"dtype": "F32", "shape": [4], "data_offsets": [8, 24]}}, b"\0" * 24),
     "overlaps"),
    ("st duplicate names", "m.safetensors",
     _st(b'{"w": {"dtype": "U8", "shape": [1], "data_offsets": [0, 1]}, '
         b'"w": {"dtype": "U8", "shape": [1], "data_offsets": [0, 1]}}', b"\0"), "duplicate"),
    ("st path traversal in a tensor name", "m.safetensors",
     _st({"../../etc/passwd": F32}, b"\0" * 16), "unsafe"),
    ("st control character in a name", "m.safetensors", _st({"w\x1b[2J": F32}, b"\0" * 16),
     "unsafe"),
    # PyTorch
    ("pt os.system", "m.pt", lambda p: _torch_zip(p, _calls("os", "system", "touch x")) and None,
     "os.system"),
    ("pt builtins.eval (legacy)", "m.pt",
     lambda p: _legacy(p, _calls("builtins", "eval", "1")) and None, "builtins.eval"),
    ("pt subprocess.Popen", "m.bin",
     lambda p: _torch_zip(p, _calls("subprocess", "Popen", "x")) and None, "subprocess.Popen"),
    ("pt unknown class REDUCE", "m.ckpt",
     lambda p: _torch_zip(p, _calls("mymodule", "Evil", "x")) and None, "mymodule.Evil"),
    ("pt recursive nesting", "m.pt", lambda p: _torch_zip(p, DEEP) and None, "nested more than"),
    ("pt zip-slip member", "m.pt",
     _zip({"archive/data.pkl": b"\x80\x02}.", "archive/../../evil": b"x"}), "outside"),
    ("pt truncated pickle", "m.pt", lambda p: _torch_zip(p, b"\x80\x02}q\x00(X") and None,
     "damaged pickle"),
    ("pt compressed storage", "m.pt",
     _zip({"archive/data.pkl": b"\x80\x02}.", "archive/data/0": b"\0" * 64}, deflate=True),
     "compressed"),
    # NumPy
    ("npy object dtype", "a.npy",
     _bytes(_npy(b"{'descr': '|O', 'fortran_order': False, 'shape': (2,)}")), "pickles"),
    ("npy code in header", "a.npy", _bytes(_npy(b"__import__('os').system('x')")),
     "not a literal dict"),
    ("npy huge header", "a.npy", _bytes(b"\x93NUMPY\x02\x00\xff\xff\xff\x7f"), "over the limit"),
    ("npy terabyte array", "a.npy",
     _bytes(_npy(b"{'descr': '<f4', 'fortran_order': False, 'shape': (274877906944,)}")),
     "truncated"),
    ("npz zip-slip", "a.npz", _zip({"../../evil.npy": NPY_OK}), "outside the archive"),
    ("npz path in a member name", "a.npz", _zip({"/etc/passwd.npy": NPY_OK}), "outside"),
    ("npz truncated", "a.npz", _bytes(b"PK\x03\x04" + b"\0" * 40), "not a readable zip"),
    # GGUF, HDF5, ONNX (in the sandbox)
    ("gguf absurd tensor count", "m.gguf", _bytes(_gguf_header(1 << 60, 0)), "gguf"),
    ("gguf absurd string length", "m.gguf",
     _bytes(_gguf_header(0, 1, (1 << 60).to_bytes(8, "little") + b"key")), "gguf"),
    ("gguf truncated", "m.gguf", _bytes(_gguf_header(3, 3)[:-2]), "gguf"),
    ("hdf5 garbage after the magic", "m.h5", _bytes(b"\x89HDF\r\n\x1a\n" + b"\xee" * 2048),
     "hdf5"),
    ("onnx length past the end", "m.onnx", _bytes(b"\x3a\xff\xff\xff\xff\x0f"), "onnx"),
]]  # fmt: skip
#: The whole catalogue: this module's cases and every slice's (tests/support/hostile_*.py).
ALL: list[Case] = [*CASES, *hostile_pickle.CASES, *hostile_headers.CASES]
LEGAL: list[Legal] = [*hostile_pickle.LEGAL, *hostile_headers.LEGAL]


def _limit() -> None:
    import resource

    resource.setrlimit(resource.RLIMIT_AS, (LIMIT, LIMIT))


@dataclass(frozen=True)
class Run:
    """One CLI run: exit code, output, and what it cost (its children included)."""

    returncode: int
    stdout: str
    stderr: str
    peak_rss: int
    cpu_seconds: float
    wall_seconds: float


def _run(args: list[str], env: dict[str, str], out: Path) -> Run:
    """``modelmanager ARGS`` in a child limited to LIMIT bytes of address space, measured with
    wait4 (peak RSS and CPU time of the child and the parser children it waited for)."""
    out.mkdir(parents=True, exist_ok=True)
    began = time.monotonic()
    with open(out / "stdout", "w+") as so, open(out / "stderr", "w+") as se:
        proc = subprocess.Popen(
            [sys.executable, "-I", "-m", "modelmanager", *args], env=env, stdout=so, stderr=se,
            stdin=subprocess.DEVNULL, preexec_fn=_limit, cwd=out,
        )  # fmt: skip
        deadline = began + 300
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.monotonic() > deadline:
                proc.kill()
                pid, status, usage = os.wait4(proc.pid, 0)
                break
            time.sleep(0.02)
        proc.returncode = os.waitstatus_to_exitcode(status)  # Popen must not wait again
        so.seek(0)
        se.seek(0)
        return Run(proc.returncode, so.read(), se.read(), usage.ru_maxrss * 1024,
                   usage.ru_utime + usage.ru_stime, time.monotonic() - began)  # fmt: skip


def _import(repo: Path, target: Path, env: dict[str, str]) -> Run:
    return _run(["--repo", str(repo), "import", str(target), "--model", "victim"], env,
                target.parent / f"run-{target.name}")  # fmt: skip


def test_the_catalogue_has_at_least_25_cases() -> None:
    assert len(CASES) >= 25
    assert len({c.why for c in ALL}) == len(ALL), "two cases share a test id"


@dataclass(frozen=True)
class Seeded:
    """A repository that already holds a version, and what a clean import of it cost."""

    repo: Path
    env: dict[str, str]
    baseline_rss: int


@pytest.fixture(scope="module")
def seeded_repo(tmp_path_factory: pytest.TempPathFactory) -> Seeded:
    """Bad input must leave this repository exactly as it is."""
    base = tmp_path_factory.mktemp("catalogue")
    env = subprocess_env(base)
    repo = base / "repo"
    good = base / "good.safetensors"
    raw_safetensors(good, {"w": F32}, b"\x01" * 16)
    assert _run(["--repo", str(repo), "init"], env, base / "run-init").returncode == 0
    first = _import(repo, good, env)
    assert first.returncode == 0, first.stderr
    return Seeded(repo, env, first.peak_rss)


def _within_bounds(run: Run, seeded: Seeded) -> None:
    above = run.peak_rss - seeded.baseline_rss
    assert above < RSS_ABOVE_BASELINE, f"peak RSS {above / 2**20:.0f} MiB above a clean import"
    assert run.cpu_seconds < CPU_SECONDS, f"{run.cpu_seconds:.1f} s of CPU"


@pytest.mark.skipif(os.name != "posix", reason="address-space limits are POSIX")
@pytest.mark.parametrize("case", ALL, ids=[c.why for c in ALL])
def test_hostile_file_is_refused_cleanly(seeded_repo: Seeded, tmp_path: Path, case: Case) -> None:
    """Exit 2 (never 70), one line naming the file and the cause, the repository untouched, and
    memory and time bounded."""
    target = tmp_path / case.name
    case.build(target)
    before = tree_state(seeded_repo.repo)
    run = _import(seeded_repo.repo, target, seeded_repo.env)
    assert run.returncode == 2, (run.returncode, run.stderr[-2000:])
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1, run.stderr
    assert str(target) in lines[0]
    assert case.cause in lines[0], lines[0]
    assert tree_state(seeded_repo.repo) == before
    assert not (tmp_path / "x").exists()
    _within_bounds(run, seeded_repo)


@pytest.mark.skipif(os.name != "posix", reason="address-space limits are POSIX")
@pytest.mark.parametrize("case", LEGAL, ids=[c.why for c in LEGAL])
def test_odd_but_legal_file_imports_and_exports_exactly(
    seeded_repo: Seeded, tmp_path: Path, case: Legal
) -> None:
    """Valid inputs at the edges of a format import, pass verify and come back byte for byte."""
    target = tmp_path / "in" / case.name
    target.parent.mkdir()
    case.build(target)
    model = "legal-" + str(abs(hash(case.why)))
    run = _run(["--repo", str(seeded_repo.repo), "import", str(target), "--model", model],
               seeded_repo.env, tmp_path / "run-import")  # fmt: skip
    assert run.returncode == 0, run.stderr[-2000:]
    _within_bounds(run, seeded_repo)
    out = tmp_path / "out"
    for args in (["verify", f"{model}@1"], ["export", f"{model}@1", str(out)]):
        done = _run(["--repo", str(seeded_repo.repo), *args], seeded_repo.env, tmp_path / "run")
        assert done.returncode == 0, done.stderr[-2000:]
    assert (out / case.name).read_bytes() == target.read_bytes()


@pytest.mark.skipif(os.name != "posix", reason="address-space limits are POSIX")
def test_a_deflate_bomb_imports_within_the_memory_limit(
    seeded_repo: Seeded, tmp_path: Path
) -> None:
    """A valid .npz whose member inflates to 1 GiB: imported as stored, never inflated."""
    run = _import(seeded_repo.repo, npz_bomb(tmp_path / "bomb.npz"), seeded_repo.env)
    assert run.returncode == 0, run.stderr
    _within_bounds(run, seeded_repo)
    shown = _run(["--repo", str(seeded_repo.repo), "show", "victim", "--json"], seeded_repo.env,
                 tmp_path / "run-show")  # fmt: skip
    assert json.loads(shown.stdout)["parameters"] == 1 << 30
