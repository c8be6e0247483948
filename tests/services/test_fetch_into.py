"""Loading decodes compressed chunks straight into the file's buffer, not through the sink."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from modelmanager.core.chunks.store import HEADER, chunk_key
from modelmanager.core.codecs import bytegroup
from modelmanager.core.ids import BytesLike
from modelmanager.core.jobs import JobContext
from modelmanager.services import Workspace
from modelmanager.services.loading import Fetcher, load_version
from tests.support.builders import random_weights
from tests.support.device_folders import devices_holding
from tests.support.faulty import FaultyFolders

CHUNK = 64 * 1024


def _workspace(tmp_path: Path, faults: FaultyFolders) -> tuple[Workspace, bytes]:
    """Two devices holding two copies of a bf16/fp32 model stored with bytegroup."""
    rng = np.random.default_rng(3)
    tensors = {f"w{i}": random_weights(rng, (96, 256)) for i in range(4)}
    tensors["half"] = random_weights(rng, (301,), "float16")  # an odd length: a tail
    return devices_holding(tmp_path, faults, tensors, devices=2, policy="copies=2",
                           codec="bytegroup", chunk_size=CHUNK)  # fmt: skip


def _fetch(ws: Workspace) -> tuple[bytes, list[int]]:
    """The file's bytes fetched into a buffer, and the offsets the sink was handed."""
    manifest = ws.repo.resolve("m")
    (f,) = [f for f in manifest.files if f.path == "model.safetensors"]
    buffer = np.full(f.size, 0xEE, np.uint8)
    sunk: list[int] = []

    def sink(at: int, plain: BytesLike) -> None:
        sunk.append(at)
        buffer[at : at + len(plain)] = np.frombuffer(plain, np.uint8)

    with Fetcher(ws, manifest, JobContext(), strategy="ranked") as fetcher:  # placement order
        fetcher.fetch(f, sink, memoryview(buffer.data))
    return buffer.tobytes(), sorted(sunk)


def _codec_ids(ws: Workspace, faults: FaultyFolders) -> set[int]:
    manifest = ws.repo.resolve("m")
    (f,) = [f for f in manifest.files if f.path == "model.safetensors"]
    ids = set()
    for ref in f.chunks:
        device = ws.repo.chunks.preferred_device(ref.id)
        assert device is not None
        blob = faults[device.root(ws.repo.root)].path(chunk_key(ref.id)).read_bytes()
        ids.add(HEADER.unpack_from(blob)[1])
    return ids


def test_compressed_chunks_are_decoded_into_place_and_never_handed_to_the_sink(
    tmp_path: Path,
) -> None:
    faults = FaultyFolders()
    ws, original = _workspace(tmp_path, faults)
    assert bytegroup.ID in _codec_ids(ws, faults)
    plain, sunk = _fetch(ws)
    assert plain == original
    assert sunk == []  # every chunk landed in the buffer itself


@pytest.mark.parametrize("damage", ["bit flip in a plane", "truncated"])
def test_a_damaged_compressed_copy_decoded_in_place_is_overwritten_by_a_good_one(
    tmp_path: Path, damage: str
) -> None:
    faults = FaultyFolders()
    ws, original = _workspace(tmp_path, faults)
    manifest = ws.repo.resolve("m")
    (f,) = [f for f in manifest.files if f.path == "model.safetensors"]
    offsets = np.cumsum([0] + [ref.length for ref in f.chunks])
    victims = {1: f.chunks[1].id, 2: f.chunks[2].id}
    for cid in victims.values():
        device = ws.repo.chunks.preferred_device(cid)
        assert device is not None
        path = faults[device.root(ws.repo.root)].path(chunk_key(cid))
        blob = bytearray(path.read_bytes())
        assert HEADER.unpack_from(blob)[1] == bytegroup.ID
        if damage == "truncated":
            blob = blob[: len(blob) * 2 // 3]
        else:
            blob[len(blob) // 2] ^= 0x40  # decodes to wrong bytes in the buffer: hash refuses
        path.write_bytes(bytes(blob))
    plain, sunk = _fetch(ws)
    assert plain == original
    assert sunk == sorted(int(offsets[i]) for i in victims)  # only the rebuilt chunks
    assert load_version(ws, "m", strategy="ranked").files["model.safetensors"].bytes() == original
