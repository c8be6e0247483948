"""The command line's shape: options after the command, names suggested when one is unknown,
and one JSON shape for one thing whichever command prints it."""

from __future__ import annotations

import gc
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from modelmanager.cli.main import build_parser, main
from modelmanager.services import Changes
from tests.cli.test_cli import Cli
from tests.support.builders import hf_folder


def run(capsys: pytest.CaptureFixture[str], *argv: str, code: int = 0) -> tuple[str, str]:
    capsys.readouterr()
    got = main(list(argv))
    out, err = capsys.readouterr()
    assert got == code, (argv, got, out, err)
    return out, err


def as_json(capsys: pytest.CaptureFixture[str], *argv: str) -> Any:
    return json.loads(run(capsys, *argv, "--json")[0])


@pytest.fixture
def cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Cli:
    """A repository holding tiny@1 (label prod) and tiny@2."""
    c = Cli(tmp_path / "repo", capsys)
    c("init", "--chunk-size", "64K", "--group-size", "4K")
    rng = np.random.default_rng(3)
    for n in (1, 2):
        c("import", str(hf_folder(tmp_path / f"v{n}", rng)), "--model", "org/tiny",
          "-m", f"version {n}", *(["--label", "prod"] if n == 1 else []))  # fmt: skip
    return c


def test_global_options_work_before_and_after_the_command(
    cli: Cli, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = str(cli.repo)
    after = as_json(capsys, "ls", "--repo", repo)
    assert [m["model"] for m in after] == ["org/tiny"]
    assert as_json(capsys, "--repo", repo, "ls") == after  # before: not undone by the command
    assert as_json(capsys, "--repo", str(tmp_path / "nowhere"), "ls", "--repo", repo) == after
    assert as_json(capsys, "remote", "ls", "--repo", repo, "--wait", "2") == []
    args = build_parser().parse_args(["gui", "--repo", repo, "--wait", "4", "--tab", "devices"])
    assert (args.repo, args.wait, args.tab) == (repo, 4.0, "devices")
    assert build_parser().parse_args(["--wait", "7", "label", "org/tiny@1", "rc"]).wait == 7.0


def test_m_is_the_message_and_the_model_needs_its_long_option(cli: Cli) -> None:
    log = cli.json("log", "org/tiny")
    assert [(v["version"], v["message"]) for v in log] == [(2, "version 2"), (1, "version 1")]
    with pytest.raises(SystemExit) as exited:  # argparse: the usage and exit 2
        main(["--repo", str(cli.repo), "import", "x", "-m", "tuned"])
    assert exited.value.code == 2
    assert "the following arguments are required: --model" in cli.capsys.readouterr().err


def test_an_unknown_model_or_version_names_what_exists(cli: Cli, tmp_path: Path) -> None:
    _out, err = cli("show", "org/tinny", code=2)
    assert "no model named 'org/tinny' (did you mean 'org/tiny'?)" in err
    _out, err = cli("log", "tiny", code=2)
    assert "(did you mean 'org/tiny'?)" in err
    _out, err = cli("export", "org/tiny@7", str(tmp_path / "out"), code=2)
    assert "has no version 7 (it has versions 1 and 2)" in err
    cli("import", str(hf_folder(tmp_path / "v3", np.random.default_rng(9))), "--model", "org/tiny")
    cli("rm", "org/tiny@1", "org/tiny@2", "--force")
    _out, err = cli("show", "org/tiny@1", code=2)
    assert "has no version 1 (it has version 3)" in err
    _out, err = cli("show", "zzz", code=2)
    assert "no model named 'zzz'\n" in err  # nothing close: no guess


def test_one_thing_has_one_json_shape_whichever_command_prints_it(
    cli: Cli, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"file://{tmp_path}/remote"
    added = cli.json("remote", "add", "team", url, "--retries", "3")
    assert added == {"name": "team", "url": url, "endpoint": None, "profile": None,
                     "retries": 3, "read_only": False}  # fmt: skip
    assert cli.json("remote", "ls") == [added]
    pushed = [cli.json("push", f"org/tiny@{n}", "team") for n in (1, 2)]
    assert pushed[0]["labels"] == ["prod"]
    assert pushed[0]["label_conflicts"] == []
    # A version listed by the remote is the version 'log' lists, key for key.
    assert cli.json("remote", "show", "team") == sorted(
        cli.json("log", "org/tiny"), key=lambda v: v["version"]
    )
    assert cli.json("remote", "show", "team", "org/tiny@1", "--tensors") == cli.json(
        "show", "org/tiny@1", "--tensors"
    )
    other = Cli(tmp_path / "other", capsys)
    other("init", "--chunk-size", "64K", "--group-size", "4K")
    pulled = other.json("pull", "team", "org/tiny@1")
    assert set(pulled) == set(pushed[0])
    assert (pulled["chunks_moved"], pulled["labels"]) == (pushed[0]["chunks_moved"], ["prod"])
    assert pulled["chunks_moved"] > 0
    assert "chunks_sent" not in pulled


def test_labels_moved_on_both_sides_are_settled_and_said(
    cli: Cli, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cli("remote", "add", "team", f"file://{tmp_path}/remote")
    cli("push", "org/tiny@2", "team")
    cli("push", "org/tiny@1", "team")
    other = Cli(tmp_path / "other", capsys)
    other("init", "--chunk-size", "64K", "--group-size", "4K")
    for n in (1, 2):
        other("pull", "team", f"org/tiny@{n}")
    cli("label", "org/tiny@2", "prod")  # the older move, not pushed yet
    other("label", "org/tiny@1", "prod", "--delete")  # the newer one: a removal
    published = other.json("push", "org/tiny@1", "team")  # only it moved since: it follows
    assert (published["labels"], published["label_conflicts"]) == (["prod"], [])
    _out, err = cli("push", "org/tiny@2", "team", "--keep-local")  # both moved: ours, though older
    assert "label conflict in org/tiny, prod: here -> 2 (" in err
    assert "remote -> removed (" in err
    assert err.rstrip().endswith("; kept yours (--keep-local)")
    assert [v["labels"] for v in cli.json("remote", "show", "team")] == [[], ["prod"]]
    back = other.json("pull", "team", "org/tiny@2")  # the other side takes it: no conflict
    assert (back["labels"], back["label_conflicts"]) == (["prod"], [])


def test_every_result_names_its_version_as_log_does(
    cli: Cli, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """import, export, load and warm print the version's ref, model and version under log's
    keys, and log's counts (files, tensors) mean the same number in each."""
    imported = cli.json("import", str(hf_folder(tmp_path / "v3", np.random.default_rng(5))),
                        "--model", "org/tiny")  # fmt: skip
    rows = {v["ref"]: v for v in cli.json("log", "org/tiny")}
    keys = ("ref", "model", "version", "files", "logical_bytes")
    assert {k: imported[k] for k in keys} == {k: rows["org/tiny@3"][k] for k in keys}
    one = rows["org/tiny@1"]
    exported = cli.json("export", "org/tiny@prod", str(tmp_path / "out"))
    loaded = cli.json("load", "org/tiny@prod")
    warmed = cli.json("warm", "org/tiny@prod")  # a label: the version it names is printed
    for doc in (exported, loaded, warmed):
        assert {k: doc[k] for k in ("ref", "model", "version")} == {
            "ref": "org/tiny@1",
            "model": "org/tiny",
            "version": 1,
        }
    assert exported["files"] == one["files"] == len(exported["file_paths"])
    assert all(Path(p).is_file() for p in exported["file_paths"])
    assert loaded["tensors"] == one["tensors"] == loaded["arrays"]  # safetensors: all arrays
    assert exported["bytes"] == loaded["bytes"] == one["logical_bytes"]
    assert warmed["bytes_read"] > 0


def test_cli_json_is_the_result_to_json(
    cli: Cli, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """What each command prints is its service result's ``to_json`` (for verify, gc and the
    device commands too: the shape scripts read today, now owned by the dataclass)."""
    from modelmanager.services import devices, exporting, loading, maintenance, open_workspace

    ws = open_workspace(cli.repo)
    try:
        assert cli.json("verify") == maintenance.verify(ws).to_json()
        gc = cli.json("gc", "--dry-run")
        assert gc == maintenance.collect_garbage(ws, dry_run=True).to_json()
        listed = [{**d, "free": 0} for d in cli.json("device", "ls")]  # free space moves
        assert listed == [{**i.to_json(), "free": 0} for i in devices.list_devices(ws)]
        warm = loading.warm(ws, "org/tiny@2")
        assert cli.json("warm", "org/tiny@2")["bytes_read"] == warm.to_json()["bytes_read"]
        out = exporting.export_ref(ws, "org/tiny@2", tmp_path / "o2")
        assert cli.json("export", "org/tiny@2", str(tmp_path / "o2"), "--force") == out.to_json()
        for result in (warm, out, loading.load_version(ws, "org/tiny@2")):
            assert result.changes == Changes()  # nothing in the repository changed
    finally:
        ws.close()
    second = tmp_path / "second"
    second.mkdir()
    cli("device", "add", str(second), "--name", "second")
    policy = cli.json("policy", "set", "copies=1")  # what PolicyChange.to_json gives
    assert list(policy)[:3] == ["policy", "model", "ok"]
    assert (policy["policy"], policy["model"], policy["ok"]) == ("copies=1", None, True)
    removed = cli.json("device", "rm", "second", "--drain")
    assert removed == {"removed": "second", "moved_pieces": removed["moved_pieces"],
                       "moved_bytes": removed["moved_bytes"]}  # fmt: skip


def test_show_is_log_row_plus_details(cli: Cli, capsys: pytest.CaptureFixture[str]) -> None:
    row = next(v for v in cli.json("log", "org/tiny") if v["version"] == 1)
    shown = cli.json("show", "org/tiny@1", "--tensors")
    assert {k: shown[k] for k in row} == row  # files and tensors: counts, as log says
    assert len(shown["file_list"]) == row["files"]
    assert len(shown["tensor_list"]) == row["tensors"]


def _counts(doc: Any, key: str) -> list[object]:
    """Every value of ``key`` anywhere in a JSON document."""
    if isinstance(doc, list):
        return [v for item in doc for v in _counts(item, key)]
    if not isinstance(doc, dict):
        return []
    here = [doc[key]] if key in doc else []
    return here + [v for value in doc.values() for v in _counts(value, key)]


def test_files_is_a_count_in_every_document(cli: Cli, tmp_path: Path) -> None:
    """``files`` counts (a list of files is ``file_list``, of paths ``file_paths``)."""
    plain = tmp_path / "plain"
    (plain / "tuned").mkdir(parents=True)
    for f in (tmp_path / "v1").glob("*.safetensors"):
        (plain / "tuned" / f.name).write_bytes(f.read_bytes())
    cli("stores", "add", str(plain))
    listed = cli.json("stores", "ls")
    [store] = [s for s in listed if s["root"] == str(plain)]
    [model] = store["models"]
    docs = {
        "log": cli.json("log", "org/tiny"),
        "show": cli.json("show", "org/tiny@1"),
        "export": cli.json("export", "org/tiny@1", str(tmp_path / "out")),
        "stores ls": listed,
        "stores show": cli.json("stores", "show", store["name"], model["ref"]),
        "stores adopt --dry-run": cli.json("stores", "adopt", store["name"], model["ref"],
                                           "--dry-run"),
    }  # fmt: skip
    for name, doc in docs.items():
        found = _counts(doc, "files")
        assert found, name
        assert all(isinstance(n, int) for n in found), (name, found)
    shown = docs["stores show"]
    assert shown["files"] == len(shown["file_list"]) > 0


def test_a_command_process_freezes_what_its_imports_made(tmp_path: Path) -> None:
    """The console script (argv None) moves the import-time objects out of the collector's
    reach (a full collection of them cost 15-25 ms of a 10,000-row ls); a caller passing
    argv, as these tests do, keeps its own collector as it was."""
    code = (
        "import gc, sys; from modelmanager.cli.main import main; "
        "sys.argv = ['modelmanager', '--version']; before = gc.get_freeze_count()\n"
        "try: main()\nexcept SystemExit: pass\n"
        "print(before, gc.get_freeze_count())"
    )
    done = subprocess.run([sys.executable, "-I", "-c", code], capture_output=True, text=True,
                          cwd=tmp_path, check=True)  # fmt: skip
    before, after = map(int, done.stdout.split()[-2:])
    assert before == 0
    assert after > 10_000
    frozen = gc.get_freeze_count()
    with pytest.raises(SystemExit):
        main(["--version"])
    assert gc.get_freeze_count() == frozen
