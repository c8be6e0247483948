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
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import subprocess_env
from tests.core.test_npy import _npy, npz_bomb
from tests.core.test_pytorch import _calls, _legacy, _torch_zip
from tests.core.test_sandboxed_formats import _gguf_header
from tests.support.builders import raw_safetensors, tree_state

LIMIT = 1 << 30
Builder = Callable[[Path], None]


def _st(header: object, data: bytes = b"", length: int | None = None) -> Builder:
    return lambda p: raw_safetensors(p, header, data, length=length) and None


def _bytes(blob: bytes) -> Builder:
    return lambda p: p.write_bytes(blob) and None


def _zip(members: dict[str, bytes], deflate: bool = False) -> Builder:
    def build(p: Path) -> None:
        mode = zipfile.ZIP_DEFLATED if deflate else zipfile.ZIP_STORED
        with zipfile.ZipFile(p, "w", compression=mode) as z:
            for name, data in members.items():
                z.writestr(name, data)

    return build


F32 = {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}
NPY_OK = _npy(b"{'descr': '<f4', 'fortran_order': False, 'shape': (1,)}", b"\0" * 4)
#: Lists nested 3,000 deep (MARK ... LIST, repeated): refused by depth, not by a crash.
DEEP = b"\x80\x02" + b"(" * 3000 + b"l" * 3000 + b"."

CASES: list[tuple[str, str, Builder, str]] = [
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
]  # fmt: skip


def _limit() -> None:
    import resource

    resource.setrlimit(resource.RLIMIT_AS, (LIMIT, LIMIT))


def _import(repo: Path, target: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "modelmanager", "--repo", str(repo), "import", str(target),
         "--model", "victim"],
        env=env, capture_output=True, text=True, check=False, preexec_fn=_limit, timeout=300,
    )  # fmt: skip


def test_the_catalogue_has_at_least_25_cases() -> None:
    assert len(CASES) >= 25


@pytest.fixture(scope="module")
def seeded_repo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """A repository that already holds a version: bad input must leave it exactly as it is."""
    base = tmp_path_factory.mktemp("catalogue")
    env = subprocess_env(base)
    repo = base / "repo"
    good = base / "good.safetensors"
    raw_safetensors(good, {"w": F32}, b"\x01" * 16)
    subprocess.run([sys.executable, "-m", "modelmanager", "--repo", str(repo), "init"],
                   env=env, check=True, capture_output=True)  # fmt: skip
    assert _import(repo, good, env).returncode == 0
    return repo, env


@pytest.mark.skipif(os.name != "posix", reason="address-space limits are POSIX")
@pytest.mark.parametrize(("why", "name", "build", "cause"), CASES, ids=[c[0] for c in CASES])
def test_hostile_file_is_refused_cleanly(
    seeded_repo: tuple[Path, dict[str, str]], tmp_path: Path, why: str, name: str,
    build: Builder, cause: str,
) -> None:  # fmt: skip
    repo, env = seeded_repo
    target = tmp_path / name
    build(target)
    before = tree_state(repo)
    proc = _import(repo, target, env)
    assert proc.returncode == 2, (proc.returncode, proc.stderr[-2000:])
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert str(target) in lines[0]
    assert cause in lines[0], lines[0]
    assert tree_state(repo) == before
    assert not (tmp_path / "x").exists()


@pytest.mark.skipif(os.name != "posix", reason="address-space limits are POSIX")
def test_a_deflate_bomb_imports_within_the_memory_limit(
    seeded_repo: tuple[Path, dict[str, str]], tmp_path: Path
) -> None:
    """A valid .npz whose member inflates to 1 GiB: imported as stored, never inflated."""
    repo, env = seeded_repo
    proc = _import(repo, npz_bomb(tmp_path / "bomb.npz"), env)
    assert proc.returncode == 0, proc.stderr
    shown = subprocess.run(
        [sys.executable, "-m", "modelmanager", "--repo", str(repo), "show", "victim", "--json"],
        env=env, capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert json.loads(shown.stdout)["parameters"] == 1 << 30
