"""No code from a model folder ever runs (issue 15): not in the parser children, not in the app.

Every test works from inside a folder that holds real model files beside ``gguf.py``,
``numpy.py``, ``modelmanager/__init__.py``, ``sitecustomize.py`` and the like, each of which
writes a canary file when imported. The safe ways to start the app are the console script
(``.venv/bin/modelmanager``: its ``sys.path[0]`` is its own folder) and ``python -I -m
modelmanager``; the sandbox's children always run ``-I`` in a neutral folder.
"""

from __future__ import annotations

import argparse
import json
import marshal
import os
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from importlib.util import find_spec
from pathlib import Path

import pytest

from modelmanager.cli.main import build_parser
from modelmanager.core import children
from modelmanager.core.catalog import reader
from modelmanager.core.formats import index_file, sandbox
from modelmanager.errors import EXIT_BUG
from modelmanager.services import init_repository
from modelmanager.services.importing import import_paths
from tests.conftest import subprocess_env
from tests.support.hostile_folder import MODEL_FILES, canaries_fired, hostile_folder

ROOT = Path(__file__).resolve().parents[2]
CONSOLE_SCRIPT = Path(sys.executable).parent / "modelmanager"


@pytest.fixture
def hostile(tmp_path: Path) -> tuple[Path, Path]:
    """(the hostile model folder, where its canaries would land)."""
    canaries = tmp_path / "canaries"
    return hostile_folder(tmp_path / "models" / "hostile-model", canaries), canaries


@pytest.mark.parametrize(("name", "kind"), [("tiny.gguf", "gguf"), ("keras.h5", "hdf5"),
                                            ("graph.onnx", "onnx")])  # fmt: skip
def test_sandboxed_parsers_run_no_code_from_the_folder_or_pythonpath(
    hostile: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch, name: str, kind: str
) -> None:
    folder, canaries = hostile
    monkeypatch.chdir(folder)
    monkeypatch.setenv("PYTHONPATH", str(folder))
    monkeypatch.setenv("PYTHONSTARTUP", str(folder / "gguf.py"))
    index = index_file(Path(name), (folder / name).stat().st_size)  # relative: cwd matters
    assert index.format == kind
    assert index.tensors
    assert canaries_fired(canaries) == []


@pytest.mark.parametrize("entry", ["entry.py", "entry_gui.py"])
def test_both_frozen_entry_points_answer_the_sandbox_child_flag(
    tmp_path: Path, hostile: tuple[Path, Path], entry: str
) -> None:
    """A frozen app's sandbox child is ``sys.executable`` with CHILD_FLAG: the command-line
    program and the windowed one (Windows' ModelManagerApp.exe, whose imports start itself) must
    both run the parser, not the window, and nothing of the working folder."""
    folder, canaries = hostile
    script = ROOT / "packaging" / entry
    done = subprocess.run([sys.executable, "-I", script, sandbox.CHILD_FLAG, "gguf", "tiny.gguf"],
                          cwd=folder, env=subprocess_env(tmp_path), capture_output=True,
                          text=True, timeout=120, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert [t[0] for t in json.loads(done.stdout)["tensors"]] == [
        "token_embd.weight",
        "blk.0.attn_q.weight",
    ]
    assert canaries_fired(canaries) == []


@pytest.mark.parametrize("entry", ["entry.py", "entry_gui.py"])
def test_both_frozen_entry_points_answer_the_catalog_child_flag(
    tmp_path: Path, hostile: tuple[Path, Path], entry: str
) -> None:
    """A frozen app's catalog child (a rebuild's second reader) is ``sys.executable`` with
    CATALOG_FLAG: both programs answer it with the rows, not the window or the command line."""
    folder, canaries = hostile
    ws = init_repository(tmp_path / "repo")
    import_paths(ws, [folder / "weights.safetensors"], "tiny", message="m")
    keys = list(ws.repo.manifest_keys())
    ws.close()
    script = ROOT / "packaging" / entry
    done = subprocess.run([sys.executable, "-I", script, children.CATALOG_FLAG,
                           str(tmp_path / "repo")], input=marshal.dumps(keys), cwd=folder,
                          env=subprocess_env(tmp_path), capture_output=True, timeout=120,
                          check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr
    size = int.from_bytes(done.stdout[:8], "little")
    rows, skipped = marshal.loads(done.stdout[8 : 8 + size])
    assert [r[0] for r in rows] == [keys[0][0]]
    assert skipped == []
    assert canaries_fired(canaries) == []


def test_a_catalog_child_runs_no_code_from_the_repository_folder_or_pythonpath(
    tmp_path: Path, hostile: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The repository sits inside the hostile folder, which is also the working folder and on
    PYTHONPATH: the child (``-I``, a neutral folder) still imports nothing from it."""
    folder, canaries = hostile
    ws = init_repository(folder / "repo")
    import_paths(ws, [folder / "weights.safetensors"], "tiny", message="m")
    monkeypatch.chdir(folder)
    monkeypatch.setenv("PYTHONPATH", str(folder))
    monkeypatch.setenv("PYTHONSTARTUP", str(folder / "numpy.py"))
    child = reader._Child.start(ws.repo, list(ws.repo.manifest_keys()))
    assert child is not None
    assert child.proc.wait(timeout=120) == 0
    child.stop()
    assert len(child.rows) == 1
    ws.close()
    assert canaries_fired(canaries) == []


# -- every command of the command line ----------------------------------------------------


def command_paths(parser: argparse.ArgumentParser) -> Iterator[tuple[str, ...]]:
    """Every command and sub-command the parser knows (``("stores", "adopt")`` ...)."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield (name,)
                yield from ((name, *rest) for rest in command_paths(sub))


#: A harmless, meaningful run of each command, in an order in which each finds what it needs.
#: {out}: a scratch folder outside the model folder; {models}: the model folder's parent.
RUNS: list[tuple[str, ...]] = [
    ("init",),
    ("import", ".", "--model", "tiny", "--message", "hostile folder", "--label", "prod"),
    ("ls",),
    ("log", "tiny"),
    ("show", "tiny", "--tensors"),
    ("export", "tiny", "{out}/export"),
    ("load", "tiny"),
    ("warm", "tiny"),
    ("bench", "tiny", "--threads", "1"),
    ("diff", "tiny@1", "tiny@prod"),
    ("label", "tiny@1", "rc1"),
    ("search", "tiny"),
    ("verify",),
    ("rm", "tiny@1", "--dry-run"),
    ("gc", "--dry-run"),
    ("reindex",),
    *([("gui", "--screenshot", "{out}/shot.png")] if find_spec("PySide6") else []),  # Qt-less CI
    ("remote", "add", "origin", "file://{out}/remote"),
    ("remote",),
    ("remote", "ls"),
    ("push", "tiny", "origin"),
    ("remote", "show", "origin"),
    ("pull", "origin", "tiny"),
    ("remote", "rm", "origin"),
    ("stores", "add", "{models}", "--name", "mine"),
    ("stores",),
    ("stores", "ls"),
    ("stores", "show", "mine", "hostile-model"),
    ("stores", "dups"),
    ("stores", "adopt", "mine", "hostile-model", "--into", "adopted"),
    ("stores", "rm", "mine"),
    ("device", "add", "{out}/disk2", "--name", "disk2"),
    ("device",),
    ("device", "ls"),
    ("device", "offline", "disk2"),
    ("device", "online", "disk2"),
    ("device", "set", "disk2", "--weight", "2"),
    ("device", "rm", "disk2", "--drain", "--dry-run"),
    ("policy", "show"),
    ("policy", "set", "copies=1", "--dry-run"),
    ("codec", "show"),
    ("codec", "set", "tiny", "zstd"),
    ("recompress", "tiny", "--codec", "zstd"),
    ("scrub",),
    ("repair",),
    ("rebalance", "--dry-run"),
    ("stats",),
    ("rm", "tiny@1", "--force"),
    ("gc",),
    (),  # no command: the repository's status and the help (no display here)
]


def _command_of(argv: tuple[str, ...], known: set[tuple[str, ...]]) -> tuple[str, ...]:
    return max((p for p in known if argv[: len(p)] == p), key=len, default=())


def _auto_run(parser: argparse.ArgumentParser, path: tuple[str, ...]) -> tuple[str, ...]:
    """Arguments for a command the table does not know yet: '.' or its first choice for every
    positional and required option, so a new command is run (not just parsed) from the folder."""
    sub = parser
    for name in path:
        sub = next(a for a in sub._actions if isinstance(a, argparse._SubParsersAction)).choices[
            name
        ]
    args: list[str] = list(path)
    for action in sub._actions:
        value = str(next(iter(action.choices))) if action.choices else "."
        if isinstance(action, argparse._SubParsersAction):
            continue
        if not action.option_strings:
            args.append(value)
        elif action.required:
            args += [action.option_strings[0]] + ([] if action.nargs == 0 else [value])
    for group in sub._mutually_exclusive_groups:
        if group.required:
            args.append(group._group_actions[0].option_strings[0])
    return tuple(args)


def _launchers(folder: Path) -> dict[str, tuple[list[str], dict[str, str]]]:
    """The two safe ways to start the app: the console script, and Python in isolated mode
    (which ignores PYTHONPATH too, so it points at the folder here)."""
    return {
        "console script": ([str(CONSOLE_SCRIPT)], {}),
        "python -I -m": ([sys.executable, "-I", "-m", "modelmanager"], {"PYTHONPATH": str(folder)}),
    }


@pytest.mark.slow  # about a hundred and fifty short runs of the program
@pytest.mark.parametrize("launcher", ["console script", "python -I -m"])
def test_every_command_run_from_inside_a_hostile_folder_runs_none_of_its_code(
    tmp_path: Path, hostile: tuple[Path, Path], launcher: str
) -> None:
    folder, canaries = hostile
    out = tmp_path / "out"
    out.mkdir()
    prog, extra = _launchers(folder)[launcher]
    env = subprocess_env(tmp_path, HOME=str(tmp_path / "home"), **extra)
    for var in ("DISPLAY", "WAYLAND_DISPLAY", "PYTHONPATH", "PYTHONSTARTUP", "PYTHONHOME"):
        env.pop(var, None)
    env.update(extra)
    parser = build_parser()
    known = set(command_paths(parser))
    covered = {_command_of(run, known) for run in RUNS}
    runs = RUNS + [_auto_run(parser, p) for p in sorted(known - covered)]

    def run(argv: tuple[str, ...]) -> subprocess.CompletedProcess[str]:
        args = [a.format(out=out, models=folder.parent) for a in argv]
        return subprocess.run([*prog, *args], cwd=folder, env=env, capture_output=True,
                              text=True, timeout=300, check=False)  # fmt: skip

    problems, outputs = [], {}
    for argv in runs:
        done = outputs[argv] = run(argv)
        # A run from the table must succeed (it reached the code it names); one made up for a
        # command the table does not know yet may refuse its made-up arguments, never crash.
        bad = done.returncode != 0 if argv in RUNS else done.returncode == EXIT_BUG
        if bad or "Traceback" in done.stderr:
            problems.append(f"{argv}: exit {done.returncode}\n{done.stderr}")
    helps = [(*p, "--help") for p in sorted(known)]
    with ThreadPoolExecutor(4) as pool:  # --help of every command: parsing only, in parallel
        for path, done in zip(helps, pool.map(run, helps), strict=True):
            if done.returncode != 0:
                problems.append(f"{path}: exit {done.returncode}\n{done.stderr}")
    assert problems == []
    assert canaries_fired(canaries) == []
    tensors = outputs[("show", "tiny", "--tensors")].stdout
    for name in ("token_embd.weight", "model_weights/dense/kernel", "W"):  # the sandbox's work
        assert name in tensors
    assert {p.name for p in (out / "export").rglob("*")} >= set(MODEL_FILES)


def test_the_launchers_the_project_documents_are_the_safe_ones() -> None:
    """scripts/app.sh starts the console script; the desktop entry starts the installed
    (frozen) program; nothing the project ships runs plain ``python -m modelmanager``, which
    puts the working folder first on sys.path (Python's own rule)."""
    assert 'exec "$ROOT/.venv/bin/modelmanager" "$@"' in (ROOT / "scripts" / "app.sh").read_text()
    assert "Exec=modelmanager gui %F" in (ROOT / "packaging" / "desktop_files.py").read_text()
    shipped = [*ROOT.glob("scripts/*.sh"), *ROOT.glob("packaging/**/*.sh"), ROOT / "README.md",
               *ROOT.glob("docs/*.md"), *ROOT.glob("packaging/*.py")]  # fmt: skip
    for path in shipped:
        text = path.read_text()
        for line in text.splitlines():
            if "-m modelmanager" in line:
                assert "-I -m modelmanager" in line, f"{path}: {line}"


def test_plain_python_m_from_a_folder_without_a_modelmanager_package_runs_none_of_its_code(
    tmp_path: Path, hostile: tuple[Path, Path]
) -> None:
    """``python -m modelmanager`` puts the working folder first on sys.path; the app takes it
    off before importing anything else, so a ``gguf.py`` or ``numpy.py`` there stays inert
    (a ``modelmanager/`` package there would be run by Python itself: use the console script)."""
    folder, canaries = hostile
    for item in (folder / "modelmanager").iterdir():
        item.unlink()
    (folder / "modelmanager").rmdir()
    env = subprocess_env(tmp_path, HOME=str(tmp_path / "home"))
    env.pop("PYTHONPATH", None)
    for argv in (["init"], ["import", ".", "--model", "tiny"], ["show", "tiny", "--tensors"]):
        done = subprocess.run([sys.executable, "-m", "modelmanager", *argv], cwd=folder,
                              env=env, capture_output=True, text=True, check=False)  # fmt: skip
        assert done.returncode == 0, done.stderr
    assert canaries_fired(canaries) == []
    assert os.path.exists(folder / "gguf.py")
