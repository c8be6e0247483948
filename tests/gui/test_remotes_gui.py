"""Remotes from the window: the Add remote dialog (S3 keys into a real keyring backend, a shared
folder, HTTP), browse, push and pull with progress, remove; against moto's loopback S3 server."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("moto")
pytest.importorskip("keyrings.alt")

import keyring
from keyring.backends.fail import Keyring as FailKeyring
from keyrings.alt.file import PlaintextKeyring
from PySide6.QtWidgets import QDialogButtonBox, QMenu

from modelmanager.core.remote.credentials import KEYRING_SERVICE, read_credentials
from modelmanager.gui.jobs_bridge import JobRecord
from modelmanager.gui.main_window import MainWindow
from modelmanager.gui.models import REMOTE_ROLE
from modelmanager.gui.remote_dialog import FOLDER, HTTP, S3, RemoteDialog, remote_actions
from modelmanager.services import Workspace, init_repository
from modelmanager.services.exporting import export_ref
from modelmanager.services.importing import import_paths
from modelmanager.services.remotes import list_remotes, list_versions, open_remote, push
from tests.gui.windows import shown_window
from tests.support.builders import random_weights, tree_bytes, write_safetensors
from tests.support.s3 import create_bucket, moto_server

SECRET = "gui-secret-7f3a"


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    with moto_server() as url:
        create_bucket(url)
        yield url


@pytest.fixture
def file_keyring(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[PlaintextKeyring]:
    """keyrings.alt's file backend, chosen explicitly as a user would (PYTHON_KEYRING_BACKEND),
    its file in the test's folder; no AWS keys in the environment or in ~/.aws."""
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyrings.alt.file.PlaintextKeyring")
    backend = PlaintextKeyring()
    backend.file_path = str(tmp_path / "keyring" / "keyring_pass.cfg")
    previous = keyring.get_keyring()
    keyring.set_keyring(backend)
    yield backend
    keyring.set_keyring(previous)


def _model(folder: Path, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    tensors = {f"layer.{i}.weight": random_weights(rng, (64, 256)) for i in range(6)}
    write_safetensors(folder / "model.safetensors", tensors)
    (folder / "config.json").write_text('{"architectures": ["Tiny"]}')
    return folder


def _click_ok(qtbot, dialog: RemoteDialog) -> None:  # type: ignore[no-untyped-def]
    # click(), not a mouse event: a synthetic hover sends an empty status tip that clears the
    # status line this test then reads (Qt's QStatusTipEvent).
    dialog.buttons.button(QDialogButtonBox.StandardButton.Ok).click()


def _fill_s3(qtbot, d: RemoteDialog, endpoint: str, prefix: str, keys: bool = True) -> None:  # type: ignore[no-untyped-def]
    qtbot.keyClicks(d.name, "team")
    d.kind.setCurrentIndex(S3)
    qtbot.keyClicks(d.endpoint, endpoint)
    qtbot.keyClicks(d.bucket, "models")
    qtbot.keyClicks(d.prefix, prefix)
    if keys:
        qtbot.keyClicks(d.access_key, "AKIAGUI")
        qtbot.keyClicks(d.secret_key, SECRET)


def _remote_rows(win: MainWindow) -> dict[str, list[str]]:
    """Each remote's line in the tree: its versions' references."""
    place = win.tree_model.item(win.tree_model.rowCount() - 1, 0)
    out: dict[str, list[str]] = {}
    for r in range(place.rowCount()):
        top = place.child(r, 0)
        name = top.data(REMOTE_ROLE)[0]
        models = [top.child(m, 0) for m in range(top.rowCount())]
        out[name] = [
            m.child(v, 0).data(REMOTE_ROLE)[1] for m in models for v in range(m.rowCount())
        ]
    return out


def _progress(win: MainWindow, job: JobRecord) -> list[tuple[int, int]]:
    """Every (done, total) the Jobs tab was told for ``job`` (recorded from the signal)."""
    seen: list[tuple[int, int]] = []
    win.runner.changed.connect(
        lambda job_id: seen.append((job.done, job.total)) if job_id == job.id else None
    )
    return seen


def _files_text(root: Path) -> str:
    files = [p for p in root.rglob("*") if p.is_file() and "keyring" not in p.parts]
    return "".join(p.read_text(errors="replace") for p in files if p.suffix in (".json", ""))


def test_an_s3_remote_added_in_the_dialog_keeps_its_keys_in_the_keyring_and_a_push_shows_progress(
    qtbot, ws: Workspace, tmp_path: Path, endpoint: str, file_keyring: PlaintextKeyring
) -> None:  # type: ignore[no-untyped-def]
    import_paths(ws, [_model(tmp_path / "src")], "tiny")
    with shown_window(qtbot, ws) as win:
        dialog = win.remotes.ask_add()
        assert "OS keyring, never into a file" in dialog.keyring_note.text()
        _fill_s3(qtbot, dialog, endpoint, "gui/push/")
        _click_ok(qtbot, dialog)
        assert not dialog.isVisible(), dialog.error.text()
        spec = list_remotes()[0]
        assert (spec.name, spec.url, spec.endpoint) == ("team", "s3://models/gui/push", endpoint)
        assert "keys kept in the OS keyring" in win.statusBar().currentMessage()
        # The secret is in the keyring chosen, never in a file of ours.
        assert read_credentials("team") is not None
        assert SECRET in file_keyring.get_password(KEYRING_SERVICE, "remote:team")  # type: ignore[operator]
        assert SECRET not in _files_text(tmp_path)
        qtbot.waitUntil(lambda: "team" in _remote_rows(win) and not win.runner.running())

        job = win.remotes.push("tiny@1", "team")
        seen = _progress(win, job)
        qtbot.waitUntil(lambda: job.state == "done", timeout=60_000)
        qtbot.waitUntil(lambda: _remote_rows(win).get("team") == ["tiny@1"])
    chunks = sum(c.length for f in ws.repo.resolve("tiny@1").files for c in f.chunks)
    dones = [d for d, _t in seen if d]
    assert len(dones) >= 2  # more than one report: the bar moves as chunks go
    assert dones == sorted(dones)  # never backwards
    assert seen[-1] == (chunks, chunks)  # ends at 100 %, of the version's plain bytes
    # No AWS keys anywhere but the keyring: the push used them.
    assert [v.model for v in list_versions(open_remote("team"))] == ["tiny"]


def test_a_remote_is_browsed_and_pulled_with_progress_then_exports_the_same_bytes(
    qtbot, ws: Workspace, tmp_path: Path, endpoint: str, file_keyring: PlaintextKeyring
) -> None:  # type: ignore[no-untyped-def]
    from modelmanager.services.remotes import add_remote

    add_remote("team", "s3://models/gui/pull", endpoint=endpoint, access_key="AKIAGUI",
               secret_key=SECRET)  # fmt: skip
    source = init_repository(tmp_path / "source", chunk_size=16 * 1024, group_size=4096)
    src = _model(tmp_path / "src", seed=3)
    import_paths(source, [src], "tiny")
    push(source, "tiny@1", open_remote("team"))
    source.close()
    with shown_window(qtbot, ws, ready=lambda w: "team" in _remote_rows(w)) as win:
        assert _remote_rows(win) == {"team": ["tiny@1"]}  # the remote's models and versions
        menu = QMenu()
        remote_actions(menu, win.remotes, ("team", "tiny@1"))
        pull_action = next(a for a in menu.actions() if a.text().startswith("Pull tiny@1"))
        pull_action.trigger()
        job = next(j for j in win.runner.jobs.values() if j.title.startswith("Pull tiny@1"))
        seen = _progress(win, job)
        qtbot.waitUntil(lambda: job.state == "done", timeout=60_000)
        qtbot.waitUntil(lambda: "tiny" in win.imports.existing_models())
    dones = [d for d, _t in seen if d]
    assert dones == sorted(dones)
    assert seen[-1][0] == seen[-1][1] > 0
    export_ref(ws, "tiny@1", tmp_path / "out")
    assert tree_bytes(tmp_path / "out") == tree_bytes(src)


def test_without_an_os_keyring_the_dialog_says_so_in_one_line_and_offers_the_profile(
    qtbot, ws: Workspace, tmp_path: Path, endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    previous = keyring.get_keyring()
    keyring.set_keyring(FailKeyring())
    monkeypatch.delenv("PYTHON_KEYRING_BACKEND", raising=False)
    try:
        with shown_window(qtbot, ws) as win:
            dialog = win.remotes.ask_add()
            note = dialog.keyring_note.text()
            assert note.startswith("No OS keyring on this machine: keys cannot be kept here")
            assert "AWS profile" in note
            assert "AWS_ACCESS_KEY_ID" in note
            assert "\n" not in note
            assert not dialog.access_key.isEnabled()
            assert not dialog.secret_key.isEnabled()
            _fill_s3(qtbot, dialog, endpoint, "nokeys", keys=False)
            qtbot.keyClicks(dialog.profile, "lab")
            _click_ok(qtbot, dialog)
            assert not dialog.isVisible(), dialog.error.text()
    finally:
        keyring.set_keyring(previous)
    assert list_remotes()[0].profile == "lab"


def test_a_plain_file_keyring_picked_by_itself_is_no_keyring(
    qtbot, ws: Workspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    """keyring falls back to keyrings.alt's plain file where no OS keyring exists: the secret
    would land in a file silently. Unless chosen by name, it is refused, and the dialog says so."""
    monkeypatch.delenv("PYTHON_KEYRING_BACKEND", raising=False)
    backend = PlaintextKeyring()
    backend.file_path = str(tmp_path / "keyring" / "keyring_pass.cfg")
    previous = keyring.get_keyring()
    keyring.set_keyring(backend)
    try:
        with shown_window(qtbot, ws) as win:
            dialog = win.remotes.ask_add()
            assert "keyrings.alt.file.PlaintextKeyring" in dialog.keyring_note.text()
            dialog.access_key.setEnabled(True)  # even forced, the service refuses
            dialog.secret_key.setEnabled(True)
            _fill_s3(qtbot, dialog, "http://127.0.0.1:9", "x")
            _click_ok(qtbot, dialog)
            assert dialog.isVisible()
            assert "no OS keyring" in dialog.error.text()
            dialog.reject()
    finally:
        keyring.set_keyring(previous)
    assert not (tmp_path / "keyring").exists()
    assert list_remotes() == []


def test_a_shared_folder_and_an_http_remote_from_the_dialog_then_remove_from_the_menu(
    qtbot, ws: Workspace, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    import_paths(ws, [_model(tmp_path / "src")], "tiny")
    with shown_window(qtbot, ws) as win:
        dialog = win.remotes.ask_add()
        qtbot.keyClicks(dialog.name, "web")
        dialog.kind.setCurrentIndex(HTTP)
        assert dialog.pages.currentIndex() == HTTP
        qtbot.keyClicks(dialog.url, "ftp://example.org/repo")
        _click_ok(qtbot, dialog)
        assert dialog.isVisible()  # refused in one line, the form kept
        assert dialog.error.text() == "the address must start with http:// or https://"
        dialog.url.clear()
        qtbot.keyClicks(dialog.url, "https://models.example.org/repo")
        _click_ok(qtbot, dialog)
        assert not dialog.isVisible()

        dialog = win.remotes.ask_add()
        qtbot.keyClicks(dialog.name, "nas")
        dialog.kind.setCurrentIndex(FOLDER)
        qtbot.keyClicks(dialog.folder, str(tmp_path / "shared"))
        _click_ok(qtbot, dialog)
        assert not dialog.isVisible(), dialog.error.text()
        assert [(r.name, r.read_only) for r in list_remotes()] == [("nas", False), ("web", True)]
        qtbot.waitUntil(lambda: win.remotes.listed == ["nas", "web"])
        assert win.remotes.names == ["nas"]  # the Push menu offers no read-only remote
        job = win.remotes.push("tiny@1", "nas")
        qtbot.waitUntil(lambda: job.state == "done", timeout=60_000)
        qtbot.waitUntil(lambda: _remote_rows(win).get("nas") == ["tiny@1"])
        assert (tmp_path / "shared" / "models").is_dir()

        menu = QMenu()
        remote_actions(menu, win.remotes, ("nas", None))
        texts = [a.text() for a in menu.actions() if a.text()]
        assert texts == ["Pull everything from nas into repo", "Add remote…",
                         "Remove remote nas…", "Refresh remotes"]  # fmt: skip
        said: list[str] = []
        win.statusBar().messageChanged.connect(said.append)
        next(a for a in menu.actions() if a.text().startswith("Pull everything")).trigger()
        job = next(j for j in win.runner.jobs.values() if j.title.startswith("Pull everything"))
        qtbot.waitUntil(lambda: job.state == "done", timeout=60_000)
        assert "Pulled everything from nas: 0 new versions, 1 already here" in said
        next(a for a in menu.actions() if a.text() == "Remove remote nas…").trigger()
        box = win.remotes.remove_box
        assert box is not None
        assert "Nothing on it is deleted" in box.text()
        remove = next(b for b in box.buttons() if b.text() == "Remove")
        remove.click()
        assert "nas" not in _remote_rows(win)
        assert [r.name for r in list_remotes()] == ["web"]
        assert "Forgot remote nas" in win.statusBar().currentMessage()
    assert (tmp_path / "shared" / "models").is_dir()  # nothing on the remote was touched
    saved = json.loads((tmp_path / "data" / "remotes.json").read_text())
    assert [r["name"] for r in saved["remotes"]] == ["web"]
