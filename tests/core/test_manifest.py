"""Manifests round-trip exactly, and hostile ones (e.g. from a remote) are refused."""

from __future__ import annotations

import json
from typing import Any

import pytest

from modelmanager.core.ids import content_id
from modelmanager.core.repo.manifest import ChunkRef, FileRecord, Manifest, TensorRecord
from modelmanager.errors import IntegrityError, RepositoryError

CID = content_id(b"x")


def _manifest() -> Manifest:
    tensor = TensorRecord("w", "F32", (2, 2), 8, 24, "0" * 32)
    files = (
        FileRecord(
            "model.safetensors",
            24,
            "safetensors",
            (ChunkRef(CID, 24),),
            (tensor,),
            {"format": "pt"},
        ),
        FileRecord("sub/config.json", 3, "generic", (ChunkRef(CID, 3),)),
    )
    return Manifest("org/m", 2, 1, "2026-01-01T00:00:00.000000Z", "msg", {"parameters": 4}, files)


def test_manifest_round_trips() -> None:
    m = _manifest()
    again = Manifest.from_bytes(m.to_bytes(), "test")
    assert again == m
    assert again.parameters == 4
    assert again.dtype_bytes() == {"F32": 16}
    assert again.logical_bytes == 27


def _doc() -> dict[str, Any]:
    return _manifest().to_json()


def _mutations() -> list[tuple[str, Any]]:
    cases: list[tuple[str, Any]] = []

    def case(why: str, fn: Any) -> None:
        doc = _doc()
        fn(doc)
        cases.append((why, doc))

    case("path traversal", lambda d: d["files"][1].update(path="../../etc/passwd"))
    case("absolute path", lambda d: d["files"][1].update(path="/etc/passwd"))
    case("duplicate path", lambda d: d["files"][1].update(path="model.safetensors"))
    case("chunks do not add up", lambda d: d["files"][1].update(size=4))
    case("bad chunk id", lambda d: d["files"][1]["chunks"][0].__setitem__(0, "../../x"))
    case("zero-length chunk", lambda d: d["files"][1]["chunks"].append([CID, 0]))
    case("tensor past the file", lambda d: d["files"][0]["tensors"][0].__setitem__(4, 999))
    case("negative shape", lambda d: d["files"][0]["tensors"][0].__setitem__(2, [-1]))
    case("parent after version", lambda d: d.update(parent=5))
    case("bad model name", lambda d: d.update(model="../x"))
    case("not an object", lambda d: d.clear())
    return cases


@pytest.mark.parametrize(("why", "doc"), _mutations(), ids=[c[0] for c in _mutations()])
def test_hostile_manifests_are_refused(why: str, doc: dict[str, Any]) -> None:
    with pytest.raises((IntegrityError, RepositoryError)) as info:
        Manifest.from_bytes(json.dumps(doc).encode(), "remote/m.json")
    assert "remote/m.json" in str(info.value)


def test_newer_manifest_format_asks_for_an_upgrade() -> None:
    doc = _doc()
    doc["format"] = 99
    with pytest.raises(RepositoryError, match="upgrade"):
        Manifest.from_bytes(json.dumps(doc).encode(), "m.json")


def test_duplicate_keys_in_a_manifest_are_refused() -> None:
    data = _manifest().to_bytes().replace(b'"message":"msg"', b'"message":"msg","message":"x"')
    with pytest.raises(IntegrityError, match="duplicate key"):
        Manifest.from_bytes(data, "m.json")
