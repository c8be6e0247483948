"""Remotes against a real S3 API server on loopback (moto) and a real HTTP server."""

from __future__ import annotations

import contextlib
import functools
import http.server
import json
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("moto")
pytest.importorskip("s3fs")

import boto3
from keyring.backend import KeyringBackend
from moto.server import ThreadedMotoServer

from modelmanager.core.chunks.store import chunk_key
from modelmanager.core.jobs import JobContext
from modelmanager.core.repo.records import seal, unseal
from modelmanager.core.repo.versions import manifest_key
from modelmanager.errors import Cancelled, IntegrityError, UserError
from modelmanager.services import Workspace, init_repository
from modelmanager.services.exporting import export_ref
from modelmanager.services.history import set_label
from modelmanager.services.importing import import_paths
from modelmanager.services.remotes import (
    RemoteSpec,
    add_remote,
    get_remote,
    list_remotes,
    open_remote,
    pull,
    push,
    remove_remote,
)
from tests.support.builders import random_weights, tree_bytes, write_safetensors

BUCKET = "models"


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server._server.server_address
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def s3_spec(
    s3_endpoint: str, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> RemoteSpec:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    s3 = boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1")
    with contextlib.suppress(s3.exceptions.BucketAlreadyOwnedByYou):
        s3.create_bucket(Bucket=BUCKET)
    prefix = request.node.name.replace("[", "-").replace("]", "")
    return RemoteSpec("team", f"s3://{BUCKET}/{prefix}", endpoint=s3_endpoint)


def _model(folder: Path, seed: int = 0, change: int | None = None) -> Path:
    rng = np.random.default_rng(seed)
    tensors = {f"layer.{i}.weight": random_weights(rng, (128, 256)) for i in range(6)}
    if change is not None:
        tensors[f"layer.{change}.weight"] = random_weights(np.random.default_rng(99), (128, 256))
    write_safetensors(folder / "model.safetensors", tensors)
    (folder / "config.json").write_text('{"architectures": ["Tiny"]}')
    return folder


@pytest.fixture
def local(tmp_path: Path) -> Iterator[Workspace]:
    ws = init_repository(tmp_path / "local", chunk_size=64 * 1024, group_size=4096)
    import_paths(ws, [_model(tmp_path / "v1")], "tiny", message="first")
    yield ws
    ws.close()


def test_push_sends_only_what_the_remote_lacks_and_pull_is_byte_exact(
    local: Workspace, s3_spec: RemoteSpec, tmp_path: Path
) -> None:
    remote = open_remote(s3_spec)
    first = push(local, "tiny@1", remote)
    assert first.chunks_sent > 0
    assert first.manifest_written
    again = push(local, "tiny@1", open_remote(s3_spec))
    assert (again.chunks_sent, again.bytes_sent, again.manifest_written) == (0, 0, False)
    # version 2 changes one tensor: only that tensor's chunks travel
    import_paths(local, [_model(tmp_path / "v2", change=3)], "tiny", message="one changed")
    m1, m2 = local.repo.resolve("tiny@1"), local.repo.resolve("tiny@2")
    new = {c.id for f in m2.files for c in f.chunks} - {c.id for f in m1.files for c in f.chunks}
    second = push(local, "tiny@2", remote)
    assert second.chunks_sent == len(new) == 2  # 128 KiB tensor, 64 KiB chunks
    assert sorted(remote.version_numbers("tiny")) == [1, 2]
    # pull into an empty repository: byte for byte
    other = init_repository(tmp_path / "other")
    try:
        got = pull(other, open_remote(s3_spec), "tiny@2")
        assert got.chunks_sent == len(m2.chunk_ids())
        export_ref(other, "tiny@2", tmp_path / "out")
        assert tree_bytes(tmp_path / "out") == tree_bytes(tmp_path / "v2")
        assert other.catalog.versions("tiny")[0].seq == 2
        assert pull(other, remote, "tiny@2").chunks_sent == 0  # already here
    finally:
        other.close()


def test_an_interrupted_push_is_invisible_and_running_it_again_finishes(
    local: Workspace, s3_spec: RemoteSpec
) -> None:
    remote = open_remote(s3_spec)
    set_label(local, "tiny@1", "prod")
    ctx = JobContext()
    ctx.on_progress = lambda done, _total, _text: ctx.cancel() if done > 0 else None
    with pytest.raises(Cancelled):
        push(local, "tiny@1", remote, ctx=ctx)
    assert remote.version_numbers("tiny") == []  # no manifest: readers see nothing
    assert remote.read_labels("tiny") == {}  # and no label naming a missing version
    partial = len(remote.chunk_ids())
    assert partial > 0
    done = push(local, "tiny@1", remote)
    assert done.chunks_skipped >= partial
    assert done.chunks_sent == len(local.repo.resolve("tiny@1").chunk_ids()) - done.chunks_skipped
    assert remote.version_numbers("tiny") == [1]
    assert remote.read_labels("tiny") == {"prod": 1}


def test_a_chunk_whose_bytes_do_not_match_its_hash_is_refused(
    local: Workspace, s3_spec: RemoteSpec, tmp_path: Path
) -> None:
    remote = open_remote(s3_spec)
    push(local, "tiny@1", remote)
    victim = next(iter(remote.chunk_ids()))
    good = remote.blobs.get(chunk_key(victim))
    remote.blobs.put(chunk_key(victim), good[:-1] + bytes([good[-1] ^ 1]))
    other = init_repository(tmp_path / "other")
    try:
        with pytest.raises(IntegrityError, match=r"does not match its hash|damaged|truncated"):
            pull(other, remote, "tiny@1")
        assert other.repo.version_numbers("tiny") == []  # nothing half-written
    finally:
        other.close()


def test_a_manifest_naming_a_path_outside_the_repository_is_refused(
    local: Workspace, s3_spec: RemoteSpec, tmp_path: Path
) -> None:
    remote = open_remote(s3_spec)
    push(local, "tiny@1", remote)
    key = manifest_key("tiny", 1)
    doc = unseal(remote.blobs.get(key), key)
    doc["files"][0]["path"] = "../../outside.safetensors"
    remote.blobs.put(key, seal(doc))  # a hostile remote seals what it forges: the rules still hold
    other = init_repository(tmp_path / "other")
    try:
        with pytest.raises(IntegrityError, match="unsafe file path"):
            pull(other, open_remote(s3_spec), "tiny@1")
    finally:
        other.close()


@pytest.fixture(params=["s3", "folder"])
def any_spec(request: pytest.FixtureRequest, tmp_path: Path) -> RemoteSpec:
    """The same test against the loopback S3 server and against a shared folder."""
    if request.param == "s3":
        spec: RemoteSpec = request.getfixturevalue("s3_spec")
        return spec
    return RemoteSpec("shared", f"file://{tmp_path / 'shared'}")


def test_push_sends_the_labels_of_its_version_and_pull_brings_them(
    local: Workspace, any_spec: RemoteSpec, tmp_path: Path
) -> None:
    set_label(local, "tiny@1", "prod")
    set_label(local, "tiny@1", "rc1")
    import_paths(local, [_model(tmp_path / "v2", change=3)], "tiny", labels=["candidate"])
    push(local, "tiny@1", open_remote(any_spec))
    remote = open_remote(any_spec)
    assert remote.read_labels("tiny") == {"prod": 1, "rc1": 1}  # only the pushed version's
    # a label set after the version was pushed travels with the next push of that version
    set_label(local, "tiny@1", "stable")
    again = push(local, "tiny@1", remote)
    assert (again.chunks_sent, again.manifest_written) == (0, False)
    assert again.labels == ("stable",)
    assert remote.read_labels("tiny") == {"prod": 1, "rc1": 1, "stable": 1}
    other = init_repository(tmp_path / "other")
    try:
        got = pull(other, open_remote(any_spec), "tiny@prod")
        assert got.labels == ("prod", "rc1", "stable")
        assert other.repo.read_labels("tiny") == {"prod": 1, "rc1": 1, "stable": 1}
        assert other.catalog.versions("tiny")[0].labels == ("prod", "rc1", "stable")
    finally:
        other.close()


def test_a_label_moved_on_one_side_follows_and_a_conflict_is_settled_as_asked(
    local: Workspace, tmp_path: Path
) -> None:
    remote = open_remote(RemoteSpec("shared", f"file://{tmp_path / 'shared'}"))
    set_label(local, "tiny@1", "prod")
    push(local, "tiny@1", remote)
    import_paths(local, [_model(tmp_path / "v2", change=3)], "tiny", labels=["prod"])
    moved = push(local, "tiny@2", remote)  # only this side moved it since: no conflict
    assert (moved.labels, moved.label_conflicts) == (("prod",), ())
    assert remote.read_labels("tiny") == {"prod": 2}

    other = init_repository(tmp_path / "other")
    try:
        pull(other, remote, "tiny@1")
        assert other.repo.read_labels("tiny") == {}  # the remote's prod waits for @2
        set_label(other, "tiny@1", "prod")  # the newer move, but the remote's is asked for
        got = pull(other, remote, "tiny@2", move_labels=True)
        assert [(c.here, c.remote, c.kept) for c in got.label_conflicts] == [(1, 2, "remote")]
        assert (got.labels, got.manifest_written) == (("prod",), True)
        assert other.repo.read_labels("tiny") == {"prod": 2}
        assert remote.read_labels("tiny") == {"prod": 2}
        assert {v.seq: v.labels for v in other.catalog.versions("tiny")} == {1: (), 2: ("prod",)}
        assert other.repo.metadata_problems() == []  # every label agrees with its journal
    finally:
        other.close()


@pytest.fixture
def http_remote(local: Workspace, tmp_path: Path) -> Iterator[RemoteSpec]:
    shared = tmp_path / "shared"
    set_label(local, "tiny@1", "prod")
    push(local, "tiny@1", open_remote(RemoteSpec("mount", f"file://{shared}")))
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(shared))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    host, port = server.server_address[:2]
    yield RemoteSpec("web", f"http://{host}:{port}")
    server.shutdown()
    server.server_close()


def test_read_only_http_remote_browses_and_pulls(http_remote: RemoteSpec, tmp_path: Path) -> None:
    remote = open_remote(http_remote)
    assert remote.model_names() == ["tiny"]
    assert remote.resolve("tiny").message == "first"
    other = init_repository(tmp_path / "other")
    try:
        assert pull(other, remote, "tiny@1").labels == ("prod",)  # listed over plain HTTP
        assert other.repo.read_labels("tiny") == {"prod": 1}
        export_ref(other, "tiny", tmp_path / "out")
        assert tree_bytes(tmp_path / "out") == tree_bytes(tmp_path / "v1")
        with pytest.raises(UserError, match="read-only"):
            push(other, "tiny@1", remote)
    finally:
        other.close()


class MemoryKeyring(KeyringBackend):
    """A keyring backend that keeps passwords in a dict (a stand-in for the OS keychain)."""

    priority = 1  # type: ignore[assignment]

    def __init__(self) -> None:
        super().__init__()
        self.store: dict[tuple[str, str], str] = {}

    def set_password(self, service: str, username: str, password: str) -> None:
        self.store[service, username] = password

    def get_password(self, service: str, username: str) -> str | None:
        return self.store.get((service, username))

    def delete_password(self, service: str, username: str) -> None:
        self.store.pop((service, username), None)


def test_remote_list_keeps_names_and_urls_never_keys(tmp_path: Path) -> None:
    import keyring

    previous, memory = keyring.get_keyring(), MemoryKeyring()
    keyring.set_keyring(memory)
    try:
        add_remote("team", "s3://bucket/prefix", endpoint="http://127.0.0.1:9000",
                   profile="lab", access_key="AKIATEAM", secret_key="the-secret")  # fmt: skip
    finally:
        keyring.set_keyring(previous)
    assert "the-secret" in next(iter(memory.store.values()))  # the keys went to the keyring
    add_remote("web", "https://models.example.org/repo/")
    assert [r.name for r in list_remotes()] == ["team", "web"]
    assert get_remote("web").url == "https://models.example.org/repo"
    with pytest.raises(UserError, match="exists"):
        add_remote("team", "s3://bucket/other")
    with pytest.raises(UserError, match="must start with"):
        add_remote("ftp", "ftp://example.org/repo")
    with pytest.raises(UserError, match="for s3:// remotes only"):
        add_remote("web2", "https://x.org", access_key="a", secret_key="b")
    remove_remote("team")
    assert [r.name for r in list_remotes()] == ["web"]
    saved = (tmp_path / "data" / "remotes.json").read_text()
    assert "secret" not in saved.lower()
    assert "AKIATEAM" not in saved


def test_a_remote_keeps_its_retries_and_refuses_a_number_out_of_range(tmp_path: Path) -> None:
    add_remote("flaky", "s3://bucket/a", retries=2)
    add_remote("plain", "s3://bucket/b")
    assert [(r.name, r.retries) for r in list_remotes()] == [("flaky", 2), ("plain", 5)]
    saved = json.loads((tmp_path / "data" / "remotes.json").read_text())["remotes"]
    assert [("retries" in r) for r in saved] == [True, False]  # the default is not written
    assert open_remote("flaky").blobs.fs.retries == 2  # type: ignore[attr-defined]
    for bad in (0, 21, "3"):
        with pytest.raises(UserError, match="retries must be a whole number from 1 to 20"):
            add_remote("bad", "s3://bucket/c", retries=bad)  # type: ignore[arg-type]
    saved[0]["retries"] = "many"  # a hand-edited list
    (tmp_path / "data" / "remotes.json").write_text(json.dumps({"remotes": saved}))
    with pytest.raises(UserError, match="list of remotes is damaged"):
        list_remotes()


def test_no_keyring_backend_is_a_clear_error_not_a_plain_text_file(tmp_path: Path) -> None:
    import keyring
    from keyring.backends.fail import Keyring as FailKeyring

    previous = keyring.get_keyring()
    keyring.set_keyring(FailKeyring())
    try:
        with pytest.raises(UserError, match=r"no OS keyring.*AWS_ACCESS_KEY_ID"):
            add_remote("team", "s3://bucket/prefix", access_key="AKIA", secret_key="s3cr3t")
        assert list_remotes() == []
        assert "s3cr3t" not in "".join(p.read_text() for p in tmp_path.rglob("*.json"))
    finally:
        keyring.set_keyring(previous)


def test_remote_commands_push_show_and_pull(  # the command line end to end
    local: Workspace, s3_spec: RemoteSpec, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.cli.test_cli import Cli

    cli = Cli(local.repo.root, capsys)
    added = cli.json("remote", "add", "team", s3_spec.url, "--endpoint", str(s3_spec.endpoint))
    assert added["read_only"] is False
    assert [r["name"] for r in cli.json("remote", "ls")] == ["team"]
    first = cli.json("push", "tiny@1", "team")
    assert first["chunks_moved"] > 0
    assert first["manifest_written"] is True
    assert cli.json("push", "tiny", "team")["chunks_moved"] == 0
    listing = cli.json("remote", "show", "team")
    assert [(r["model"], r["version"]) for r in listing] == [("tiny", 1)]
    out, _err = cli("remote", "show", "team", "tiny@1", "--tensors")
    assert "model.safetensors" in out
    assert "layer.5.weight" in out  # the tensor index, from the manifest alone
    other = Cli(tmp_path / "other", capsys)
    other("init")
    pulled = other.json("pull", "team", "tiny@1")
    assert pulled["chunks_moved"] == first["chunks_moved"]
    other("export", "tiny", str(tmp_path / "out"))
    assert tree_bytes(tmp_path / "out") == tree_bytes(tmp_path / "v1")
    _out, err = cli("push", "tiny", "nowhere", code=2)
    assert "no remote named 'nowhere'" in err
    cli("remote", "rm", "team")
    assert cli.json("remote", "ls") == []


def test_a_connection_cut_mid_push_fails_clearly_and_a_rerun_completes(
    local: Workspace, s3_spec: RemoteSpec, tmp_path: Path
) -> None:
    from urllib.parse import urlparse

    from modelmanager.core.storage.remote import RemoteError
    from tests.support.cutting_proxy import CuttingProxy

    target = urlparse(str(s3_spec.endpoint))
    proxy = CuttingProxy((str(target.hostname), int(target.port or 80)), budget=300_000)
    try:
        # Two attempts per request: a retry still happens, and the failure comes in seconds
        # (with the default five, botocore's and s3fs's backoffs took 25 to 40 s here).
        cut = RemoteSpec("cut", s3_spec.url, endpoint=proxy.url, retries=2)
        with pytest.raises(RemoteError, match="remote request failed"):
            push(local, "tiny@1", open_remote(cut))
        assert proxy.broken
        direct = open_remote(s3_spec)
        assert direct.version_numbers("tiny") == []  # nothing visible after the failure
        proxy.heal()
        done = push(local, "tiny@1", open_remote(cut))
        assert done.manifest_written
        other = init_repository(tmp_path / "other")
        try:
            pull(other, direct, "tiny@1")
            export_ref(other, "tiny", tmp_path / "out")
            assert tree_bytes(tmp_path / "out") == tree_bytes(tmp_path / "v1")
        finally:
            other.close()
    finally:
        proxy.close()


def test_a_stalled_connection_fails_by_its_deadline_instead_of_hanging(
    local: Workspace, s3_spec: RemoteSpec
) -> None:
    """A link that goes silent mid-upload: the client's timeouts do not cover sending a body."""
    from urllib.parse import urlparse

    from modelmanager.core.storage.remote import FsspecBlobStore, RemoteError
    from tests.support.cutting_proxy import CuttingProxy

    target = urlparse(str(s3_spec.endpoint))
    proxy = CuttingProxy((str(target.hostname), int(target.port or 80)), 300_000, stall=True)
    try:
        remote = open_remote(RemoteSpec("stalled", s3_spec.url, endpoint=proxy.url))
        assert isinstance(remote.blobs, FsspecBlobStore)
        remote.blobs.base_deadline = 2.0
        with pytest.raises(RemoteError, match="no answer in time"):
            push(local, "tiny@1", remote)
        assert proxy.broken
        assert open_remote(s3_spec).version_numbers("tiny") == []
    finally:
        proxy.close()
