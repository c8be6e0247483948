"""The bytegroup codec's loops, C (vector and scalar builds) or numpy, against payloads the first
(numpy) codec wrote: every decoder gives their bytes, into a caller's buffer too, and every
encoder writes them again byte for byte. The stored format does not change with the loops."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import struct
import subprocess
import sys
import tracemalloc
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType

import ml_dtypes
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

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
    vector = getattr(bytegroup, "_native", None) or _build(tmp_path_factory.mktemp("vector"), "")
    if vector is not None:
        found["C"] = vector
    scalar = _build(tmp_path_factory.mktemp("scalar"), "-DBG_NO_SIMD")
    if scalar is not None:
        found["C scalar"] = scalar
    return found


@pytest.fixture(params=["C", "C scalar", "numpy"])
def loops(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch,
    natives: dict[str, ModuleType],
) -> str:  # fmt: skip
    """Each test runs with the C loops (vector and scalar builds) and with the numpy ones."""
    if request.param != "numpy" and request.param not in natives:
        pytest.skip("no C compiler here")
    monkeypatch.setattr(bytegroup, "_native", natives.get(request.param))
    return str(request.param)


@pytest.mark.parametrize("name", sorted(CASES))
def test_payloads_of_the_first_codec_decode_byte_for_byte(name: str, loops: str) -> None:
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
    dtype: type, itemsize: int, extra: int, loops: str
) -> None:
    rng = np.random.default_rng(itemsize + extra)
    values = rng.standard_normal(30_001) * (0.02 if itemsize > 1 else 40)
    data = values.astype(dtype).tobytes() + rng.bytes(extra)
    payload = bytegroup.encode(data, itemsize)
    assert bytes(bytegroup.decode(payload, len(data))) == data
    out = np.zeros(len(data), np.uint8)
    bytegroup.decode(payload, len(data), out.data)
    assert out.tobytes() == data


@pytest.mark.parametrize("itemsize", [1, 2, 4, 8])
def test_random_bytes_empty_and_one_byte_round_trip(itemsize: int, loops: str) -> None:
    for data in (b"", b"\x01", np.random.default_rng(itemsize).bytes(10_007)):
        payload = bytegroup.encode(data, itemsize)
        assert bytes(bytegroup.decode(payload, len(data))) == data


def test_escape_counts_that_disagree_with_the_codes_are_refused(loops: str) -> None:
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


@pytest.mark.parametrize("name", sorted(CASES))
def test_payloads_of_the_first_codec_are_encoded_again_byte_for_byte(name: str, loops: str) -> None:
    """The golden payloads come from zstd's Huffman coder too: a zstandard release that codes
    literals differently would fail this for every loop alike (then only C == numpy holds)."""
    payload = (DATA / f"{name}.bg").read_bytes()
    plain = bytes(bytegroup.decode(payload, int(str(CASES[name]["length"]))))
    assert bytegroup.encode(plain, int(str(CASES[name]["itemsize"]))) == payload


@contextmanager
def _using(native: ModuleType | None) -> Iterator[None]:
    """The codec with these loops (None: numpy) inside the block."""
    saved = getattr(bytegroup, "_native", None)
    setattr(bytegroup, "_native", native)  # noqa: B010 (not exported: mypy refuses the attribute)
    try:
        yield
    finally:
        setattr(bytegroup, "_native", saved)  # noqa: B010


def _encode_with_every_loop(natives: dict[str, ModuleType], data: bytes, itemsize: int) -> bytes:
    """The numpy payload, after checking every C build writes the same bytes and it decodes."""
    with _using(None):
        expected = bytegroup.encode(data, itemsize)
    for label, native in natives.items():
        with _using(native):
            assert bytegroup.encode(data, itemsize) == expected, f"{label} encodes differently"
    assert bytes(bytegroup.decode(expected, len(data))) == data
    return expected


_KINDS = ("weights", "bytes", "exponents with late rare values", "fp16 weights", "spread values")
_FLOAT = {1: ml_dtypes.float8_e4m3fn, 2: ml_dtypes.bfloat16, 4: np.float32, 8: np.float64}


@settings(max_examples=60, deadline=None)
@given(
    itemsize=st.sampled_from([1, 2, 4, 8]),
    n=st.one_of(st.integers(0, 40), st.integers(0, 5000), st.integers(60_000, 90_000)),
    extra=st.integers(0, 7),
    kind=st.sampled_from(_KINDS),
    seed=st.integers(0, 2**32 - 1),
)
def test_c_encodes_give_the_numpy_payload_for_every_dtype_and_length(
    natives: dict[str, ModuleType], itemsize: int, n: int, extra: int, kind: str, seed: int
) -> None:
    if not natives:
        pytest.skip("no C compiler here")
    rng = np.random.default_rng(seed)
    if kind == "weights":
        data = (rng.standard_normal(n) * 0.02).astype(_FLOAT[itemsize]).tobytes()
    elif kind == "fp16 weights":
        data = (rng.standard_normal(n * itemsize // 2) * 0.02).astype(np.float16).tobytes()
    elif kind == "bytes":
        data = rng.bytes(n * itemsize)
    elif kind == "spread values":  # 8 values, their planes over more high nibbles than C shuffles
        data = rng.choice(np.arange(3, 128, 17, dtype=np.uint8), n * itemsize).tobytes()
    else:  # 15 common exponents, then values the sample of 65,536 elements never saw: escapes
        top = rng.integers(100, 115, n).astype(np.uint16)
        late = np.flatnonzero(rng.random(n) < 0.01)
        top[late[late >= bytegroup.SAMPLE]] = rng.integers(0, 256, (late >= bytegroup.SAMPLE).sum())
        words = (top << np.uint16(7)) | rng.integers(0, 128, n, dtype=np.uint16)
        data = words.astype("<u2").tobytes()
        itemsize = 2
    _encode_with_every_loop(natives, data + rng.bytes(extra), itemsize)


def _plane_methods(payload: bytes) -> list[int]:
    methods, pos = [], 2
    for _ in range(payload[1]):
        method, size = struct.unpack_from("<BI", payload, pos)
        methods.append(method)
        pos += 5 + size
    return methods


@pytest.mark.parametrize("over", [-1, 0, 1])
def test_pair_coding_stops_at_the_same_escape_count_in_c_and_numpy(
    natives: dict[str, ModuleType], over: int
) -> None:
    """A plane may escape at most n // 32 values; the C loop stops early, at the same count."""
    if not natives:
        pytest.skip("no C compiler here")
    n = 100_000
    rng = np.random.default_rng(over + 5)
    top = rng.integers(100, 115, n).astype(np.uint16)
    late = rng.choice(np.arange(bytegroup.SAMPLE, n), n // 32 + over, replace=False)
    top[late] = rng.integers(200, 256, len(late))  # unseen by the sample: escaped
    data = ((top << np.uint16(7)) | rng.integers(0, 128, n, dtype=np.uint16)).astype("<u2")
    payload = _encode_with_every_loop(natives, data.tobytes(), 2)
    assert (_plane_methods(payload)[1] == bytegroup.PAIRS) == (over <= 0)


def test_a_c_encode_allocates_nothing_per_chunk_but_its_payload(
    natives: dict[str, ModuleType],
) -> None:
    """Scratch buffers are per thread: after one chunk, the next allocates its payload and
    the Huffman output (3.8 MB at peak for this 2.8 MB payload; numpy's loops: 23 MB)."""
    if "C" not in natives:
        pytest.skip("no C compiler here")
    rng = np.random.default_rng(3)
    data = (rng.standard_normal(2 << 20) * 0.02).astype(ml_dtypes.bfloat16).tobytes()  # 4 MiB
    with _using(natives["C"]):
        bytegroup.encode(data, 2)  # the scratch buffers come to size
        tracemalloc.start()
        try:
            payload = bytegroup.encode(data, 2)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    assert peak < len(payload) + len(data) // 2, (peak, len(payload))


def test_c_loops_refuse_buffers_of_the_wrong_size(natives: dict[str, ModuleType]) -> None:
    if "C" not in natives:
        pytest.skip("no C compiler here")
    native = natives["C"]
    with pytest.raises(ValueError, match="split"):
        native.split(bytearray(7), 4, 2, bytes(8))  # out holds 3 elements of 2 bytes
    with pytest.raises(ValueError, match="split"):
        native.split(bytearray(8), 4, 2, bytes(7))
    with pytest.raises(ValueError, match="pair"):
        native.pair(bytearray(2), bytearray(1), bytes(4), 4, bytes(255))  # rank: 256 bytes
    with pytest.raises(ValueError, match="pair"):
        native.pair(bytearray(1), bytearray(1), bytes(4), 4, bytes(256))  # packed: 2 bytes
    assert native.pair(bytearray(2), bytearray(0), bytes(4), 4, bytes(256)) == 0
    assert native.pair(bytearray(2), bytearray(0), bytes(4), 4, b"\x0f" * 256) == -1
