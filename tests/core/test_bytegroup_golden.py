"""The bytegroup decoder, C or numpy, against payloads the first (numpy) codec wrote, and into
a caller's buffer: the stored format does not change with the decoder."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import struct
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import ml_dtypes
import numpy as np
import pytest

from modelmanager.core import codecs
from modelmanager.core.codecs import bytegroup
from modelmanager.errors import IntegrityError

DATA = Path(__file__).resolve().parent.parent / "data" / "bytegroup_v1"
CASES: dict[str, dict[str, object]] = json.loads((DATA / "cases.json").read_text())


ROOT = Path(__file__).resolve().parent.parent.parent


def _build(out: Path, cflags: str) -> ModuleType | None:
    """The extension compiled from the source into ``out`` (as an install does), or None."""
    env = {**os.environ, "CFLAGS": f"{os.environ.get('CFLAGS', '')} {cflags}"}
    build = subprocess.run(
        [sys.executable, "setup.py", "-q", "build_ext", "--build-lib", str(out / "lib"),
         "--build-temp", str(out / "tmp")],
        cwd=ROOT, capture_output=True, text=True, check=False, env=env,
    )  # fmt: skip
    built = sorted((out / "lib").rglob("_bytegroup*"))
    if not built:
        print(build.stderr[-2000:])
        return None
    spec = importlib.util.spec_from_file_location("modelmanager.core.codecs._bytegroup", built[0])
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def natives(tmp_path_factory: pytest.TempPathFactory) -> dict[str, ModuleType]:
    """The C loops: the installed build (else one built here), and the scalar-only build."""
    found: dict[str, ModuleType] = {}
    vector = bytegroup._native or _build(tmp_path_factory.mktemp("vector"), "")
    if vector is not None:
        found["C"] = vector
    scalar = _build(tmp_path_factory.mktemp("scalar"), "-DBG_NO_SIMD")
    if scalar is not None:
        found["C scalar"] = scalar
    return found


@pytest.fixture(params=["C", "C scalar", "numpy"])
def decoder(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch,
    natives: dict[str, ModuleType],
) -> str:  # fmt: skip
    """Each test runs with the C loops (vector and scalar builds) and with the numpy ones."""
    if request.param != "numpy" and request.param not in natives:
        pytest.skip("no C compiler here")
    monkeypatch.setattr(bytegroup, "_native", natives.get(request.param))
    return str(request.param)


@pytest.mark.parametrize("name", sorted(CASES))
def test_payloads_of_the_first_codec_decode_byte_for_byte(name: str, decoder: str) -> None:
    case = CASES[name]
    payload = (DATA / f"{name}.bg").read_bytes()
    length = int(str(case["length"]))
    plain = bytes(bytegroup.decode(payload, length))
    assert len(plain) == length
    assert hashlib.sha256(plain).hexdigest() == case["sha256"]
    out = bytearray(b"\xee" * (length + 5))
    view = bytegroup.decode(payload, length, memoryview(out))
    assert bytes(view) == plain
    assert out[length:] == b"\xee" * 5  # nothing written past the chunk


@pytest.mark.parametrize(
    ("dtype", "itemsize"),
    [(ml_dtypes.bfloat16, 2), (np.float16, 2), (np.float32, 4), (np.float64, 8), (np.int8, 1)],
)
@pytest.mark.parametrize("extra", [0, 1, 3])
def test_round_trips_of_weights_with_odd_tails_into_a_buffer(
    dtype: type, itemsize: int, extra: int, decoder: str
) -> None:
    rng = np.random.default_rng(itemsize + extra)
    values = rng.standard_normal(30_001) * (0.02 if itemsize > 1 else 40)
    data = values.astype(dtype).tobytes() + rng.bytes(extra)
    payload = bytegroup.encode(data, itemsize)
    assert bytes(bytegroup.decode(payload, len(data))) == data
    out = np.zeros(len(data), np.uint8)
    bytegroup.decode(payload, len(data), memoryview(out))
    assert out.tobytes() == data


@pytest.mark.parametrize("itemsize", [1, 2, 4, 8])
def test_random_bytes_empty_and_one_byte_round_trip(itemsize: int, decoder: str) -> None:
    for data in (b"", b"\x01", np.random.default_rng(itemsize).bytes(10_007)):
        payload = bytegroup.encode(data, itemsize)
        assert bytes(bytegroup.decode(payload, len(data))) == data


def test_escape_counts_that_disagree_with_the_codes_are_refused(decoder: str) -> None:
    rng = np.random.default_rng(7)
    top = rng.integers(100, 115, 4001).astype(np.uint16)  # 15 common exponents
    top[[5, 1234, 4000]] = [3, 200, 250]  # and three rare ones: escaped
    words = (top << np.uint16(7)) | rng.integers(0, 128, 4001, dtype=np.uint16)
    data = words.astype("<u2").tobytes()
    payload = bytegroup.encode(data, 2)
    at = 2 + 5 + struct.unpack_from("<BI", payload, 2)[1]  # past the header and plane 0
    method, size = struct.unpack_from("<BI", payload, at)
    assert method == bytegroup.PAIRS
    plane = payload[at + 5 : at + 5 + size]
    table, escapes = struct.unpack_from("<BI", plane)
    assert escapes >= 3
    # The same codes, with one escape fewer in the header and its byte dropped: the codes ask
    # for more escapes than there are.
    cut = 5 + table + escapes - 1
    short = struct.pack("<BI", table, escapes - 1) + plane[5:cut] + plane[cut + 1 :]
    damaged = payload[:at] + struct.pack("<BI", method, len(short)) + short
    with pytest.raises(IntegrityError, match="escapes"):
        bytegroup.decode(damaged, len(data))


def test_other_codecs_decode_into_a_buffer_too() -> None:
    data = b"weights " * 5000
    for name in ("raw", "zstd"):
        codec_id, payload = codecs.encode(data, codecs.CodecSettings(name))
        out = bytearray(len(data))
        assert bytes(codecs.decode(codec_id, payload, len(data), memoryview(out))) == data
        assert out == data
