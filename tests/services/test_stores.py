"""Models other tools keep here (issue 10): real store layouts, written the way each tool does."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from modelmanager.core.ids import content_id
from modelmanager.core.stores import Store, default_locations, discover, disk_size
from modelmanager.errors import UserError
from modelmanager.services import Workspace
from modelmanager.services.exporting import export_ref
from modelmanager.services.store_duplicates import find_duplicates
from modelmanager.services.stores import adopt, find_model, removal_preview, summarize
from tests.cli.test_cli import Cli
from tests.support.builders import random_weights, tree_bytes, write_safetensors

REV1, REV2 = "a" * 40, "b" * 40


def gguf_bytes(path: Path, seed: int) -> bytes:
    import gguf

    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_name(f"tiny-{seed}")
    rng = np.random.default_rng(seed)
    writer.add_tensor("blk.0.attn_q.weight", rng.random((8, 16), np.float32))
    writer.add_tensor("blk.0.ffn_up.weight", np.ones((4, 16), np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path.read_bytes()


def hf_cache(root: Path, tmp: Path, *, links: bool = True) -> dict[str, bytes]:
    """``models--acme--tiny`` with two revisions sharing config.json, as huggingface_hub
    writes it: blobs named by hash, snapshot files linking ``../../blobs/HASH`` (or, with
    ``links=False``, the Windows layout without links: copies in the snapshots)."""
    repo = root / ("models--acme--tiny" if links else "models--acme--copied")
    config = json.dumps({"architectures": ["TinyModel"], "model_type": "tiny"}).encode()
    weights = {}
    for n, rev in enumerate((REV1, REV2)):
        f = tmp / f"w{n}.safetensors"
        write_safetensors(f, {"w": random_weights(np.random.default_rng(n), (32, 32))})
        weights[rev] = f.read_bytes()
    for rev in (REV1, REV2):
        snap = repo / "snapshots" / rev
        snap.mkdir(parents=True)
        for name, data in (("config.json", config), ("model.safetensors", weights[rev])):
            if links:
                blob = repo / "blobs" / hashlib.sha256(data).hexdigest()
                blob.parent.mkdir(parents=True, exist_ok=True)
                blob.write_bytes(data)
                (snap / name).symlink_to(Path("../../blobs") / blob.name)
            else:
                (snap / name).write_bytes(data)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(REV2)
    (root / "datasets--acme--data" / "snapshots").mkdir(parents=True, exist_ok=True)  # not a model
    return {"config": config, "v1": weights[REV1], "v2": weights[REV2]}


def ollama_store(root: Path, tmp: Path) -> dict[str, bytes]:
    """``manifests/registry.ollama.ai/library/tiny/{latest,q8}`` naming ``blobs/sha256-HEX``;
    both tags share the template layer."""
    blobs = root / "blobs"
    blobs.mkdir(parents=True)

    def blob(data: bytes, media: str) -> dict[str, object]:
        digest = hashlib.sha256(data).hexdigest()
        (blobs / f"sha256-{digest}").write_bytes(data)
        return {"mediaType": media, "digest": f"sha256:{digest}", "size": len(data)}

    out = {"template": b"{{ .Prompt }}", "gguf": gguf_bytes(tmp / "o.gguf", 7),
           "gguf8": gguf_bytes(tmp / "o8.gguf", 8)}  # fmt: skip
    for tag, model in (("latest", out["gguf"]), ("q8", out["gguf8"])):
        doc = {
            "schemaVersion": 2,
            "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
            "config": blob(json.dumps({"model_format": "gguf", "tag": tag}).encode(),
                           "application/vnd.docker.container.image.v1+json"),
            "layers": [blob(model, "application/vnd.ollama.image.model"),
                       blob(out["template"], "application/vnd.ollama.image.template"),
                       blob(b'{"temperature": 0.2}', "application/vnd.ollama.image.params")],
        }  # fmt: skip
        path = root / "manifests" / "registry.ollama.ai" / "library" / "tiny" / tag
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(doc))
    return out


@pytest.fixture
def stores(tmp_path: Path) -> dict[str, object]:
    """An HF cache, an Ollama store, LM Studio's folder holding a copy of Ollama's GGUF,
    and a plain folder holding a copy of HF's weights."""
    tmp = tmp_path / "src"
    tmp.mkdir()
    hf = hf_cache(tmp_path / "hf", tmp)
    hf_cache(tmp_path / "hf", tmp, links=False)
    ol = ollama_store(tmp_path / "ollama", tmp)
    lm = tmp_path / "lmstudio" / "acme" / "tiny-GGUF"
    lm.mkdir(parents=True)
    (lm / "tiny.Q8_0.gguf").write_bytes(ol["gguf"])
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "tuned.safetensors").write_bytes(hf["v1"])
    (plain / "notes.txt").write_text("not a model")
    return {
        "hf": Store("huggingface", tmp_path / "hf"), "ollama": Store("ollama", tmp_path / "ollama"),
        "lm": Store("lmstudio", tmp_path / "lmstudio"), "plain": Store("folder", plain),
        "hf_bytes": hf, "ollama_bytes": ol,
    }  # fmt: skip


def test_each_layout_is_listed_with_revisions_refs_tags_and_size_on_disk(stores) -> None:  # type: ignore[no-untyped-def]
    hf = stores["hf"].models()
    assert [(m.name, m.revision, m.refs) for m in hf] == [
        ("acme/copied", REV1, ()), ("acme/copied", REV2, ("main",)),
        ("acme/tiny", REV1, ()), ("acme/tiny", REV2, ("main",)),
    ]  # fmt: skip
    tiny2 = hf[3]
    assert [f.name for f in tiny2.files] == ["config.json", "model.safetensors"]
    assert tiny2.files[1].path.is_symlink()
    assert tiny2.size == len(stores["hf_bytes"]["config"]) + len(stores["hf_bytes"]["v2"])
    assert find_model(stores["hf"], "acme/tiny").revision == REV2  # main is the default
    tiny = [m for m in hf if m.name == "acme/tiny"]
    shared = len(stores["hf_bytes"]["config"])  # both revisions link to one config blob
    assert disk_size(tiny) == sum(m.size for m in tiny) - shared
    assert find_model(stores["hf"], "acme/tiny@aaaa").revision == REV1

    ol = stores["ollama"].models()
    assert [m.name for m in ol] == ["tiny:latest", "tiny:q8"]
    names = [f.name for f in ol[0].files]
    assert names == ["manifest.json", "model.gguf", "template", "params.json", "config.json"]
    assert [f.weights for f in ol[0].files] == [False, True, False, False, False]

    assert [m.name for m in stores["lm"].models()] == ["acme/tiny-GGUF"]
    assert [m.name for m in stores["plain"].models()] == ["tuned.safetensors"]


def test_tensor_index_comes_from_headers_even_for_nameless_ollama_blobs(stores) -> None:  # type: ignore[no-untyped-def]
    hf_weights = find_model(stores["hf"], "acme/tiny").files[1]
    s = summarize(hf_weights)
    assert (s.format, s.tensors, s.parameters, s.dtypes) == ("safetensors", 1, 1024, ("F32",))
    gguf_layer = stores["ollama"].models()[0].files[1]  # blobs/sha256-...: no suffix
    s = summarize(gguf_layer)
    assert (s.format, s.tensors, s.parameters) == ("gguf", 2, 8 * 16 + 4 * 16)


def test_duplicates_across_stores_are_found_and_links_to_one_blob_are_not(
    stores, ws: Workspace
) -> None:  # type: ignore[no-untyped-def]
    groups = find_duplicates([stores[k] for k in ("hf", "ollama", "lm", "plain")], [ws])
    by_content = {g.digest: g for g in groups}
    gguf = by_content[content_id(stores["ollama_bytes"]["gguf"])]
    assert gguf.physical == 2  # Ollama's blob and LM Studio's copy
    assert any(c.startswith("LM Studio: acme/tiny-GGUF") for c in gguf.copies)
    v1 = by_content[content_id(stores["hf_bytes"]["v1"])]
    # HF's blob, the Windows-style copy, and the plain folder's copy: three on disk.
    assert v1.physical == 3
    assert v1.freeable == 2 * v1.size
    config = by_content[content_id(stores["hf_bytes"]["config"])]
    # Two revisions link to one blob (one file), plus the copied layout's two copies.
    assert config.physical == 3
    assert sum(g.freeable for g in groups) == sum((g.physical - 1) * g.size for g in groups)

    adopt(ws, stores["lm"], stores["lm"].models()[0], "tiny-gguf")
    again = {g.digest: g for g in find_duplicates([stores["ollama"], stores["lm"]], [ws])}
    stored = again[content_id(stores["ollama_bytes"]["gguf"])]
    assert stored.physical == 3  # the repository now holds a third copy
    assert any(c.startswith("repo ") and "tiny-gguf@1" in c for c in stored.copies)


def test_adopt_imports_byte_for_byte_and_leaves_the_originals_alone(
    stores, ws: Workspace, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    store = stores["ollama"]
    before = {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in (store.root).rglob("*")
              if p.is_file()}  # fmt: skip
    model = find_model(store, "tiny:latest")
    done = adopt(ws, store, model, "tiny")
    assert done.imported.manifest.ref == "tiny@1"
    assert done.verified == 5
    assert done.removed == ()
    export_ref(ws, "tiny@1", tmp_path / "out")
    got = tree_bytes(tmp_path / "out")
    assert got["model.gguf"] == stores["ollama_bytes"]["gguf"]
    assert got["template"] == stores["ollama_bytes"]["template"]
    assert json.loads(got["manifest.json"])["schemaVersion"] == 2
    after = {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in store.root.rglob("*")
             if p.is_file()}  # fmt: skip
    assert after == before
    assert ws.repo.resolve("tiny@1").metadata["framework"] == "gguf"


def test_remove_original_deletes_only_what_no_other_model_uses(
    stores, ws: Workspace, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    hf = stores["hf"]
    model = find_model(hf, "acme/tiny@" + REV2)
    plan = removal_preview(hf, model)
    config_blob = model.files[0].path.resolve()
    weights_blob = model.files[1].path.resolve()
    assert config_blob in plan.shared  # revision 1 links to it too
    assert config_blob not in plan.paths
    assert weights_blob in plan.paths
    assert plan.bytes == len(stores["hf_bytes"]["v2"])
    assert weights_blob.exists()  # a preview changes nothing

    done = adopt(ws, hf, model, "acme/tiny", remove_original=True)
    assert done.freed == len(stores["hf_bytes"]["v2"])
    assert not weights_blob.exists()
    assert not (hf.root / "models--acme--tiny" / "snapshots" / REV2).exists()
    assert config_blob.read_bytes() == stores["hf_bytes"]["config"]
    rev1 = find_model(hf, "acme/tiny@" + REV1)
    assert rev1.errors == []  # the other revision still reads whole
    export_ref(ws, "acme/tiny", tmp_path / "out")
    assert tree_bytes(tmp_path / "out")["model.safetensors"] == stores["hf_bytes"]["v2"]


def test_the_read_back_check_catches_a_single_changed_byte(ws: Workspace, tmp_path: Path) -> None:
    from modelmanager.core.jobs import JobContext
    from modelmanager.services.importing import import_paths
    from modelmanager.services.stores import verify_against

    src = tmp_path / "w.safetensors"
    write_safetensors(src, {"w": random_weights(np.random.default_rng(3), (64, 64))})
    result = import_paths(ws, [src], "m")
    assert verify_against(ws, result.manifest, {"w.safetensors": src}, JobContext()) == 1
    data = bytearray(src.read_bytes())
    data[-7] ^= 1
    src.write_bytes(bytes(data))
    with pytest.raises(UserError, match="differs from the repository's copy"):
        verify_against(ws, result.manifest, {"w.safetensors": src}, JobContext())


def test_a_file_changed_since_the_listing_is_neither_adopted_nor_removed(
    stores, ws: Workspace
) -> None:  # type: ignore[no-untyped-def]
    store = stores["ollama"]
    model = find_model(store, "tiny:q8")
    gguf = model.files[1].path
    with open(gguf, "ab") as f:
        f.write(b"more")  # a download still writing it, after it was listed
    with pytest.raises(UserError, match="changed since it was listed") as caught:
        adopt(ws, store, model, "tiny", remove_original=True)
    assert str(gguf) in str(caught.value)
    assert gguf.exists()
    assert all(f.path.exists() for f in model.files)
    assert ws.repo.version_numbers("tiny") == []


def test_a_store_changing_under_the_listing_gives_per_item_errors(stores, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    hf = stores["hf"]
    snap = hf.root / "models--acme--tiny" / "snapshots" / REV1
    (snap / "extra.bin").symlink_to("../../blobs/" + "0" * 64)  # dangling
    ol = stores["ollama"]
    (ol.root / "manifests" / "registry.ollama.ai" / "library" / "tiny" / "q8").write_text("{trunc")
    models = {m.ref: m for m in hf.models()}
    broken = models[f"acme/tiny@{REV1}"]
    assert any("dangling link" in e and "extra.bin" in e for e in broken.errors)
    assert models[f"acme/tiny@{REV2}"].errors == []
    assert len(models) == 4
    listed = {m.name: m for m in ol.models()}
    assert "not a readable manifest" in listed["tiny:q8"].errors[0]
    assert listed["tiny:latest"].errors == []
    with pytest.raises(UserError, match="unreadable"):
        adopt(None, hf, broken, "x")  # type: ignore[arg-type]  # refused before any import

    latest = listed["tiny:latest"]
    latest.files[1].path.unlink()  # deleted between the listing and the reading
    assert "no such file" in summarize(latest.files[1]).error.lower()
    truncated = stores["lm"].models()[0].files[0]
    truncated.path.write_bytes(truncated.path.read_bytes()[:100])
    assert summarize(truncated).error  # a clear error, not a crash


def test_an_unreadable_folder_is_an_error_of_its_model_and_the_rest_still_lists(
    stores,
) -> None:  # type: ignore[no-untyped-def]
    """A real permission error. Root reads everything, so as root the listing runs in a child
    without the capabilities that bypass file permissions (util-linux setpriv)."""
    lm = stores["lm"]
    other = lm.root / "other" / "ok-model"
    other.mkdir(parents=True)
    (other / "m.gguf").write_bytes(stores["ollama_bytes"]["gguf8"])
    script = ("import json, sys; from pathlib import Path; from modelmanager.core.stores import "
              "Store; print(json.dumps([[m.name, m.errors, len(m.files)] for m in "
              "Store('lmstudio', Path(sys.argv[1])).models()]))")  # fmt: skip
    cmd = [sys.executable, "-c", script, str(lm.root)]
    if os.geteuid() == 0:
        setpriv = shutil.which("setpriv")
        if setpriv is None:
            pytest.skip("running as root without util-linux setpriv: no permission error to see")
        cmd = [setpriv, "--bounding-set", "-dac_override,-dac_read_search", *cmd]
    locked = lm.root / "acme" / "tiny-GGUF"
    locked.chmod(0)
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, check=True, timeout=60,
                              cwd=Path(__file__).resolve().parents[2])  # fmt: skip
    finally:
        locked.chmod(0o755)
    listed = {name: (errors, files) for name, errors, files in json.loads(done.stdout)}
    errors, files = listed["acme/tiny-GGUF"]
    assert files == 0
    assert any("Permission denied" in e and "tiny-GGUF" in e for e in errors)
    assert listed["other/ok-model"] == ([], 1)


def test_default_locations_follow_each_tools_settings(tmp_path: Path) -> None:
    home = tmp_path / "home"
    got = default_locations({}, home, "linux")
    assert [(s.kind, s.root) for s in got] == [
        ("huggingface", home / ".cache" / "huggingface" / "hub"),
        ("ollama", home / ".ollama" / "models"),
        ("ollama", Path("/usr/share/ollama/.ollama/models")),
        ("lmstudio", home / ".lmstudio" / "models"),
        ("lmstudio", home / ".cache" / "lm-studio" / "models"),
    ]
    env = {"HF_HOME": str(tmp_path / "hfhome"), "OLLAMA_MODELS": str(tmp_path / "om")}
    got = default_locations(env, home, "win32")
    assert got[0].root == tmp_path / "hfhome" / "hub"
    assert got[1].root == tmp_path / "om"
    env = {"HF_HUB_CACHE": str(tmp_path / "hub"), "HF_HOME": "ignored"}
    assert default_locations(env, home, "darwin")[0].root == tmp_path / "hub"
    # LM Studio's own setting for where it downloads comes first.
    (home / ".lmstudio").mkdir(parents=True)
    (home / ".lmstudio" / "settings.json").write_text(
        json.dumps({"downloadsFolder": str(tmp_path / "big-disk" / "models")})
    )
    lm = [s.root for s in default_locations({}, home, "darwin") if s.kind == "lmstudio"]
    assert lm[0] == tmp_path / "big-disk" / "models"
    (tmp_path / "big-disk" / "models").mkdir(parents=True)
    (home / ".ollama" / "models").mkdir(parents=True)
    found = discover({}, home, "darwin", [Store("folder", tmp_path / "big-disk")])
    assert [s.kind for s in found] == ["ollama", "lmstudio", "folder"]


def test_stores_commands(stores, tmp_path: Path, capsys, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("HF_HUB_CACHE", str(stores["hf"].root))
    monkeypatch.setenv("OLLAMA_MODELS", str(stores["ollama"].root))
    monkeypatch.delenv("HF_HOME", raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    cli = Cli(tmp_path / "repo", capsys)
    cli("init")
    cli("stores", "add", str(stores["lm"].root), "--kind", "lmstudio")
    listed = cli.json("stores", "ls", "--tensors")
    assert [s["kind"] for s in listed] == ["huggingface", "ollama", "lmstudio"]
    gguf = next(f for f in listed[1]["models"][0]["file_list"] if f["name"] == "model.gguf")
    assert (gguf["format"], gguf["tensors"]) == ("gguf", 2)
    out, _ = cli("stores", "show", "ollama", "tiny:latest")
    assert "gguf, 2 tensors, F32" in out
    dups = cli.json("stores", "dups")
    assert dups["freeable"] == sum(g["freeable"] for g in dups["groups"]) > 0

    blob = find_model(stores["hf"], "acme/tiny@" + REV2).files[1].path.resolve()
    out, _ = cli("stores", "adopt", "Hugging Face cache", "acme/tiny@" + REV2,
                 "--remove-original", "--dry-run")  # fmt: skip
    assert str(blob) in out
    assert "Would remove" in out
    assert blob.exists()
    plan = cli.json("stores", "adopt", "Hugging Face cache", "acme/tiny@" + REV2,
                    "--remove-original", "--dry-run")  # fmt: skip
    assert plan["files"] == len(plan["file_paths"]) > 0  # a count, and the list by name
    assert str(blob) in plan["remove"]
    assert cli.json("ls") == []  # a dry run imports nothing either
    done = cli.json("stores", "adopt", "Hugging Face cache", "acme/tiny@" + REV2, "--into",
                    "acme/tiny", "--remove-original")  # fmt: skip
    assert done["ref"] == "acme/tiny@1"
    assert not blob.exists()
    _out, err = cli("stores", "adopt", "nowhere", "x", code=2)
    assert "no store 'nowhere'" in err
    cli("stores", "rm", str(stores["lm"].root))
    assert [s["kind"] for s in cli.json("stores", "ls")] == ["huggingface", "ollama"]
    shutil.rmtree(stores["lm"].root)  # forgotten: its files were never the app's to touch


def test_a_damaged_list_of_added_stores_is_a_clear_error_naming_the_file(tmp_path: Path) -> None:
    from modelmanager.services.settings import settings_path
    from modelmanager.services.stores import add_store, user_stores

    add_store(tmp_path)
    assert [s.root for s in user_stores()] == [tmp_path.absolute()]
    path = settings_path("stores.json")
    for junk in (b"{not json", b'{"stores": 3}', b'{"stores": [{"name": "x"}]}'):
        path.write_bytes(junk)
        with pytest.raises(UserError) as caught:
            user_stores()
        assert str(path) in str(caught.value)
