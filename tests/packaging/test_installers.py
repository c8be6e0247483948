"""Installers (issue 9): what can be checked on Linux is checked here, and the Linux bundle and
.deb are built and run for real."""

from __future__ import annotations

import os
import plistlib
import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

from modelmanager import __version__
from modelmanager.core.formats import FILE_TYPES, sandbox
from tests.support.hostile_folder import canaries_fired, hostile_folder

ROOT = Path(__file__).resolve().parents[2]
PACKAGING = ROOT / "packaging"
APP_ID = "org.modelmanager.ModelManager"
MIME_NS = "{http://www.freedesktop.org/standards/shared-mime-info}"


def tool(name: str) -> str:
    """A command the test needs; scripts/setup.sh installs them on Debian/Ubuntu."""
    found = shutil.which(name)
    if found is None:
        pytest.skip(f"{name} is not installed (scripts/setup.sh test installs it)")
    return found


def run(*cmd: str | Path, **kw: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(c) for c in cmd],
        capture_output=True,
        text=True,
        check=False,
        **kw,  # type: ignore[call-overload]
    )


@pytest.fixture(scope="module")
def assets(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("assets")
    for script in ("desktop_files.py", "icons.py"):
        done = run(sys.executable, PACKAGING / script, out,
                   env={**os.environ, "QT_QPA_PLATFORM": "offscreen"})  # fmt: skip
        assert done.returncode == 0, done.stderr
    return out


def all_suffixes() -> set[str]:
    return {s for t in FILE_TYPES for s in t.suffixes}


def test_every_format_the_app_imports_is_associated_except_generic_names() -> None:
    assert {".safetensors", ".gguf", ".pt", ".ckpt", ".npz", ".onnx", ".h5"} <= all_suffixes()
    assert ".bin" not in all_suffixes()  # too generic to claim


def test_linux_desktop_files_validate_and_name_every_type(assets: Path) -> None:
    linux = assets / "linux"
    desktop = linux / f"{APP_ID}.desktop"
    done = run(tool("desktop-file-validate"), desktop)
    assert done.returncode == 0, done.stdout
    assert "error" not in done.stdout, done.stdout
    text = desktop.read_text()
    assert "Exec=modelmanager gui %F" in text
    mimes = next(line for line in text.splitlines() if line.startswith("MimeType="))
    assert set(mimes[len("MimeType=") :].strip(";").split(";")) == {t.mime for t in FILE_TYPES}

    done = run(tool("appstreamcli"), "validate", "--no-net", linux / f"{APP_ID}.metainfo.xml")
    assert done.returncode == 0, done.stdout + done.stderr

    package = ET.parse(linux / f"{APP_ID}.xml").getroot()
    globs = {g.get("pattern") for g in package.iter(f"{MIME_NS}glob")}
    ours = {f"*{s}" for t in FILE_TYPES if not t.known for s in t.suffixes}
    assert globs == ours  # the types the desktop already knows (HDF5) are not redefined


def test_icons_are_rendered_for_every_platform(assets: Path) -> None:
    for size in (16, 48, 256, 512):
        png = assets / "hicolor" / f"{size}x{size}" / "apps" / f"{APP_ID}.png"
        blob = png.read_bytes()
        assert blob[:8] == b"\x89PNG\r\n\x1a\n"
        assert int.from_bytes(blob[16:20], "big") == size
    assert (assets / "modelmanager.ico").read_bytes()[:4] == b"\x00\x00\x01\x00"
    assert (assets / "modelmanager.icns").read_bytes()[:4] == b"icns"


def test_macos_info_plist_declares_every_document_type(assets: Path) -> None:
    plist = plistlib.loads((assets / "macos" / "Info.plist").read_bytes())
    assert plist["CFBundleIdentifier"] == APP_ID
    assert plist["CFBundleShortVersionString"].count(".") == 2
    declared = {
        d["UTTypeIdentifier"]: set(d["UTTypeTagSpecification"]["public.filename-extension"])
        for d in plist["UTImportedTypeDeclarations"]
    }
    opened = {uti for d in plist["CFBundleDocumentTypes"] for uti in d["LSItemContentTypes"]}
    assert opened == set(declared)
    assert {f".{e}" for exts in declared.values() for e in exts} == all_suffixes()


def test_windows_installer_script_compiles_with_nsis(assets: Path, tmp_path: Path) -> None:
    """The real script, on a stand-in bundle: makensis checks every instruction and macro."""
    dist = tmp_path / "modelmanager"
    (dist / "_internal").mkdir(parents=True)
    spec = (PACKAGING / "modelmanager.spec").read_text()
    exes = [f"{n}.exe" for n in re.findall(r'name="(\w+)",\s*console=', spec)]  # the EXE()s
    # Windows file names ignore case: the console and windowed programs share a folder.
    assert len({e.lower() for e in exes}) == len(exes) == 2, exes
    for exe in exes:
        (dist / exe).write_bytes(b"MZ stand-in")
    setup = tmp_path / "ModelManager-setup.exe"
    done = run(tool("makensis"), "-V2", "-WX", f"-DDIST={dist}", f"-DASSETS={assets}",
               f"-DOUT={setup}", PACKAGING / "windows" / "modelmanager.nsi")  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert setup.read_bytes()[:2] == b"MZ"


def test_build_scripts_pass_shellcheck() -> None:
    scripts = [*PACKAGING.glob("*.sh"), *PACKAGING.glob("*/*.sh"), *ROOT.glob("scripts/*.sh"),
               ROOT / ".ci" / "run"]  # fmt: skip
    assert len(scripts) >= 7
    done = run(tool("shellcheck"), *scripts)
    assert done.returncode == 0, done.stdout


def test_release_workflow_is_valid_for_github_actions() -> None:
    workflow = ROOT / ".github" / "workflows" / "installers.yml"
    done = run(sys.executable, "-m", "check_jsonschema", "--builtin-schema",
               "vendor.github-workflows", workflow)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    text = workflow.read_text()
    for script in ("packaging/linux/build.sh", "packaging/windows/build.sh",
                   "packaging/macos/build.sh"):  # fmt: skip
        assert script in text
        assert (ROOT / script).is_file()


@pytest.fixture(scope="module")
def dist() -> Path:
    """The real bundle and .deb, built once into dist/ (.ci/run then installs the .deb with apt)."""
    tool("dpkg-deb")
    out = ROOT / "dist"
    done = run("bash", PACKAGING / "linux" / "build.sh", out, timeout=900)
    assert done.returncode == 0, done.stdout + done.stderr
    return out


@pytest.mark.slow  # PyInstaller and dpkg-deb: about a minute
def test_linux_bundle_and_deb_build_and_run(tmp_path: Path, dist: Path) -> None:
    """Use the bundled program: version, import (the GGUF goes through the sandbox child,
    which a frozen app starts differently), benchmark, and a screenshot with charts."""
    prog = dist / "modelmanager" / "modelmanager"
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "HOME": str(tmp_path)}

    def app(*args: str | Path) -> subprocess.CompletedProcess[str]:
        done = run(prog, "--repo", tmp_path / "repo", *args, env=env, timeout=300)
        assert done.returncode == 0, done.stdout + done.stderr
        assert "Traceback" not in done.stderr, done.stderr
        return done

    assert run(prog, "--version").stdout.strip() == f"modelmanager {__version__}"
    import gguf
    from safetensors.numpy import save_file

    save_file({"w": np.arange(64, dtype=np.float32).reshape(8, 8)}, tmp_path / "t.safetensors")
    writer = gguf.GGUFWriter(str(tmp_path / "t.gguf"), "llama")
    writer.add_tensor("blk.0.w", np.ones((4, 4), dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    app("init")
    app("import", tmp_path / "t.safetensors", tmp_path / "t.gguf", "--model", "tiny")
    shown = app("show", "tiny").stdout
    assert "framework: gguf" in shown
    assert "t.gguf" in shown
    app("bench")
    for tab in ("overview", "performance"):
        png = tmp_path / f"{tab}.png"
        app("gui", "--screenshot", png, "--tab", tab)  # charts: no Traceback from matplotlib
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    # The stores of other tools at their default places, as the release workflow checks on
    # Windows and macOS too.
    for links in ([], ["--no-links"]):  # snapshots linking to blobs, and Windows' copies
        checked = run(sys.executable, PACKAGING / "check_stores.py", *links, prog, timeout=300)
        assert checked.returncode == 0, checked.stdout + checked.stderr
        assert "every store found" in checked.stdout

    debs = list(dist.glob("modelmanager_*.deb"))
    assert len(debs) == 1
    info = run("dpkg-deb", "--info", debs[0]).stdout
    assert f"Version: {__version__}" in info
    assert "Depends:" in info
    contents = run("dpkg-deb", "--contents", debs[0]).stdout
    for path in ("./usr/bin/modelmanager -> ../../opt/modelmanager/modelmanager",
                 f"./usr/share/applications/{APP_ID}.desktop",
                 f"./usr/share/metainfo/{APP_ID}.metainfo.xml",
                 f"./usr/share/mime/packages/{APP_ID}.xml",
                 f"./usr/share/icons/hicolor/scalable/apps/{APP_ID}.svg",
                 f"./usr/share/icons/hicolor/256x256/apps/{APP_ID}.png",
                 "./opt/modelmanager/_internal/"):  # fmt: skip
        assert path in contents, path


@pytest.mark.slow  # reuses the bundle built above
def test_frozen_program_runs_no_code_from_a_hostile_model_folder(
    tmp_path: Path, dist: Path
) -> None:
    """Issue 15, frozen: from inside a folder holding gguf.py, onnx.py, numpy.py,
    modelmanager/__init__.py, sitecustomize.py ... (each writes a canary when imported), with
    PYTHONPATH pointing at it, the program imports the GGUF, ONNX and HDF5 files beside them
    through its sandbox child, and so does the child started by hand there: no canary."""
    prog = dist / "modelmanager" / "modelmanager"
    canaries = tmp_path / "canaries"
    folder = hostile_folder(tmp_path / "hostile-model", canaries)
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "HOME": str(tmp_path / "home"),
           "PYTHONPATH": str(folder), "PYTHONSTARTUP": str(folder / "gguf.py")}  # fmt: skip

    def app(*args: str | Path) -> str:
        done = run(prog, "--repo", tmp_path / "repo", *args, cwd=folder, env=env, timeout=300)
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout

    app("init")
    app("import", "tiny.gguf", "graph.onnx", "keras.h5", "--model", "hostile")
    app("import", ".", "--model", "whole-folder")
    shown = app("show", "hostile", "--tensors")
    for name in ("token_embd.weight", "W", "model_weights/dense/kernel"):
        assert name in shown
    for kind, name in (("gguf", "tiny.gguf"), ("onnx", "graph.onnx"), ("hdf5", "keras.h5")):
        child = run(prog, sandbox.CHILD_FLAG, kind, name, cwd=folder, env=env, timeout=120)
        assert child.returncode == 0, child.stderr
        assert '"tensors"' in child.stdout, child.stdout
    assert canaries_fired(canaries) == []
