"""The command line: every command, --json output, exit codes, one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from modelmanager import __version__
from modelmanager.cli.main import main
from modelmanager.core.chunks.store import chunk_key
from tests.conftest import subprocess_env
from tests.support.builders import hf_folder, random_weights, tree_bytes, write_safetensors


class Cli:
    """Runs ``modelmanager --repo REPO ...`` in-process and captures its output."""

    def __init__(self, repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
        self.repo = repo
        self.capsys = capsys

    def __call__(self, *args: str, code: int = 0) -> tuple[str, str]:
        self.capsys.readouterr()
        got = main(
            ["--repo", str(self.repo), *args]
            if args[0] != "--wait"
            else [args[0], args[1], "--repo", str(self.repo), *args[2:]]
        )
        out, err = self.capsys.readouterr()
        assert got == code, (got, out, err)
        return out, err

    def json(self, *args: str, code: int = 0) -> Any:
        out, _err = self(*args, "--json", code=code)
        return json.loads(out)


@pytest.fixture
def cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Cli:
    c = Cli(tmp_path / "repo", capsys)
    c("init", "--chunk-size", "64K", "--group-size", "4K")
    return c


def test_full_workflow_through_the_command_line(cli: Cli, tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    src = hf_folder(tmp_path / "tiny", rng, shards=2)
    imported = cli.json("import", str(src), "--model", "org/tiny", "--message", "base model",
                        "--label", "prod", "--meta", "task=text-generation")  # fmt: skip
    assert imported["ref"] == "org/tiny@1"
    # Both shards hold an identical norm.weight (all ones): stored once even within one import.
    assert (imported["chunks"], imported["new_chunks"]) == (14, 13)

    shard = src / "model-00002-of-00002.safetensors"
    tensors = {"model.layers.1.attn.weight": random_weights(rng, (64, 64)),
               "model.layers.1.mlp.weight": random_weights(rng, (256, 64)),
               "model.layers.1.norm.weight": np.ones(64, dtype=np.float32)}  # fmt: skip
    write_safetensors(shard, tensors, {"format": "pt"})
    second = cli.json("import", str(src), "--model", "org/tiny", "--message", "tuned")
    assert second["ref"] == "org/tiny@2"
    # Only the two changed tensors are new: the shard's header (same names, shapes, offsets)
    # and its unchanged norm tensor dedup.
    assert (second["chunks"], second["new_chunks"]) == (14, 2)

    models = cli.json("ls")
    assert [(m["model"], m["versions"], m["latest"], m["labels"]) for m in models] == [
        ("org/tiny", 2, 2, {"prod": 1})
    ]
    log = cli.json("log", "org/tiny")
    assert [(v["version"], v["message"], v["labels"]) for v in log] == [
        (2, "tuned", []),
        (1, "base model", ["prod"]),
    ]
    shown = cli.json("show", "org/tiny@prod", "--tensors")
    assert shown["version"] == 1
    assert shown["metadata"]["task"] == "text-generation"
    assert shown["metadata"]["architecture"] == "TinyForCausalLM"
    assert len(shown["tensor_list"]) == 8
    assert sum(t["parameters"] for t in shown["tensor_list"]) == shown["parameters"]

    d = cli.json("diff", "org/tiny@1", "org/tiny@2")
    assert {t["name"]: t["status"] for t in d["changed_tensors"]} == {
        "model.layers.1.attn.weight": "changed",
        "model.layers.1.mlp.weight": "changed",
    }
    assert [f["path"] for f in d["changed_files"]] == ["model-00002-of-00002.safetensors"]
    assert "files" not in d  # a count elsewhere, never a list
    assert "tensors" not in d

    moved = cli.json("label", "org/tiny@2", "prod")
    assert (moved["version"], moved["previous"]) == (2, 1)
    found = cli.json("search", "tuned")
    assert [v["ref"] for v in found] == ["org/tiny@2"]

    exported = cli.json("export", "org/tiny", str(tmp_path / "out"))
    assert exported["bytes"] == sum(len(b) for b in tree_bytes(src).values())
    assert tree_bytes(tmp_path / "out") == tree_bytes(src)

    assert cli.json("verify")["ok"] is True
    assert cli.json("gc", "--dry-run")["chunks"] == 0
    assert cli.json("reindex")["versions"] == 2
    stats = cli.json("stats")
    assert {"logical_bytes", "stored_bytes", "models", "versions"} <= stats.keys()
    assert (stats["models"], stats["versions"]) == (1, 2)
    assert stats["stored_bytes"] < stats["logical_bytes"]

    out, _ = cli("ls")
    assert "org/tiny" in out
    assert "prod@2" in out
    out, _ = cli("show", "org/tiny")
    assert "TinyForCausalLM" in out
    out, _ = cli("diff", "org/tiny@1", "org/tiny@2")
    assert "2 changed" in out


def test_rm_previews_then_removes_and_gc_lists_what_it_would_delete(
    cli: Cli, tmp_path: Path
) -> None:
    rng = np.random.default_rng(3)
    tensors = {f"w{i}": random_weights(rng, (64, 64)) for i in range(6)}
    for n in (1, 2, 3):
        tensors["w0"] = random_weights(rng, (64, 64))  # each version changes one tensor
        write_safetensors(tmp_path / f"v{n}" / "model.safetensors", tensors)
        cli("import", str(tmp_path / f"v{n}"), "--model", "m", "--message", f"v{n}")
    cli("label", "m@2", "prod")
    out, _ = cli("rm", "m@2", "--dry-run")
    assert out.splitlines()[:3] == [
        "Would remove m@2 (96.4 KiB of files)",
        "    labels that go with it: m@prod",
        "    made from it: m@3 (their parent shows as removed)",
    ]
    assert "It carries labels: removing it needs --force" in out
    preview = cli.json("rm", "m@2", "--dry-run")
    assert (preview["freed_chunks"], preview["labels"]) == (1, ["m@prod"])
    _out, err = cli("rm", "m@2", code=2)
    assert "carries labels (m@prod)" in err
    assert [v["version"] for v in cli.json("log", "m")] == [3, 2, 1]  # refused: nothing went
    done = cli.json("rm", "m@2", "--force")
    assert done["freed_bytes"] == preview["freed_bytes"] > 0
    assert [v["version"] for v in cli.json("log", "m")] == [3, 1]
    out, _ = cli("show", "m@3")
    assert "parent 2 (removed)" in out
    _out, err = cli("rm", "m", code=2)
    assert "'m' names a model, not a version" in err
    assert cli.json("gc", "--dry-run")["unused_chunks"] == []
    assert cli.json("verify")["ok"] is True


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["show", "nothing"], "no model named 'nothing'"),
        (["show", "bad name!"], "invalid model name"),
        (["export", "m@9", "out"], "has no version 9"),
        (["label", "m@1", "latest"], "cannot be moved"),
        (["log", "ghost"], "no model named 'ghost'"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    cli: Cli, tmp_path: Path, args: list[str], message: str
) -> None:
    write_safetensors(tmp_path / "m.safetensors", {"w": np.ones(4, np.float32)})
    cli("import", str(tmp_path / "m.safetensors"), "--model", "m")
    _out, err = cli(*args, code=2)
    assert err.startswith("modelmanager: error: ")
    assert message in err
    assert len(err.strip().splitlines()) == 1


def test_broken_file_error_names_the_file(cli: Cli, tmp_path: Path) -> None:
    bad = tmp_path / "broken.safetensors"
    bad.write_bytes(b"\x05\x00\x00\x00\x00\x00\x00\x00{oops")
    _out, err = cli("import", str(bad), "--model", "m", code=2)
    assert str(bad) in err
    assert "not valid JSON" in err
    assert cli.json("ls") == []


def test_verify_exits_1_and_names_the_damage(cli: Cli, tmp_path: Path) -> None:
    write_safetensors(tmp_path / "m.safetensors", {"w": np.arange(50000, dtype=np.float32)})
    cli("import", str(tmp_path / "m.safetensors"), "--model", "m")
    shown = cli.json("show", "m")
    assert shown["file_list"][0]["chunks"] > 1
    victim = next(p for p in (cli.repo / "chunks").rglob("*") if p.is_file())
    blob = bytearray(victim.read_bytes())
    blob[-1] ^= 0x01
    victim.write_bytes(blob)
    report = cli.json("verify", code=1)
    assert report["ok"] is False
    assert [p["subject"] for p in report["problems"]] == [victim.name]
    assert chunk_key(victim.name).endswith(victim.name)
    _out, err = cli("verify", code=1)
    assert "corrupt" in err
    assert "m@1" in err


def test_locked_repository_exit_code_3(cli: Cli, tmp_path: Path) -> None:
    from modelmanager.core.repo.repository import Repository

    other = Repository.open(cli.repo)
    write_safetensors(tmp_path / "m.safetensors", {"w": np.ones(4, np.float32)})
    with other.writer():
        _out, err = cli("--wait", "0.1", "import", str(tmp_path / "m.safetensors"), "--model", "m",
                        code=3)  # fmt: skip
        _out, err2 = cli("--wait", "0", "label", "m", "prod", code=3)
    assert "is being written by process" in err
    assert "is being written by process" in err2


def test_no_command_opens_the_default_repository_and_prints_help(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([]) == 0
    out = capsys.readouterr().out
    default = tmp_path / "data" / "repository"
    assert f"repository {default} holds 0 models, 0 versions" in out
    assert "import" in out
    assert (default / "config.json").exists()


def test_console_script_reports_its_version(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "modelmanager", "--version"],
        capture_output=True, text=True, env=subprocess_env(tmp_path), check=True,
    )  # fmt: skip
    assert proc.stdout.strip() == f"modelmanager {__version__}"
    assert __version__ != "0+unknown"


def test_default_repository_without_repo_flag(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["ls", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == []
    assert (tmp_path / "data" / "repository" / "config.json").exists()


def test_init_refuses_a_non_empty_folder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "thing.txt").write_text("mine")
    assert main(["--repo", str(tmp_path / "full"), "init"]) == 2
    assert "not empty" in capsys.readouterr().err
    assert sorted(p.name for p in (tmp_path / "full").iterdir()) == ["thing.txt"]


def test_opening_a_folder_that_is_not_a_repository(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "plain").mkdir()
    (tmp_path / "plain" / "x").write_text("x")
    assert main(["--repo", str(tmp_path / "plain"), "ls"]) == 2
    assert "no repository here" in capsys.readouterr().err


def test_devices_policy_scrub_repair_rebalance_through_the_command_line(
    cli: Cli, tmp_path: Path
) -> None:
    import shutil

    for i in range(4):
        added = cli.json("device", "add", str(tmp_path / f"disk{i}"), "--name", f"disk{i}")
        assert (added["name"], added["recognised"]) == (f"disk{i}", False)
    cli("device", "offline", "main")
    policy = cli.json("policy", "set", "copies=2")
    assert (policy["policy"], policy["ok"]) == ("copies=2", True)
    rng = np.random.default_rng(3)
    write_safetensors(tmp_path / "src" / "m.safetensors",
                      {f"w{i}": random_weights(rng, (8192,)) for i in range(8)})  # fmt: skip
    cli("import", str(tmp_path / "src"), "--model", "m")
    listed = {d["name"]: d for d in cli.json("device", "ls")}
    assert listed["main"]["state"] == "offline"
    assert sum(d["chunks"] for d in listed.values()) >= 2 * 9

    clean = cli.json("scrub")
    assert clean["ok"] is True
    assert clean["missing"] == clean["corrupt"] == clean["under_replicated"] == []
    out, _ = cli("policy", "set", "m", "copies=3", "--dry-run")
    assert "Setting m to copies=3 would change 9 chunks:\n    write 9 pieces" in out
    # All four disks are folders of tmp_path's one file system: copies=3 survives no disk lost.
    assert "survive losing no device" in out
    assert "devices on one file system count as one" in out
    assert cli.json("policy", "show")["models"] == {}  # a preview sets nothing

    shutil.rmtree(tmp_path / "disk1")
    report = cli.json("scrub", code=1)
    assert {"missing", "corrupt", "under_replicated", "devices", "models"} <= report.keys()
    assert {m["device"] for m in report["missing"]} == {"disk1"}
    assert report["devices"]["disk1"]["missing"] == len(report["missing"])
    assert report["models"]["m"]["under_replicated"] == len(report["under_replicated"])
    _out, err = cli("scrub", code=1)
    assert "repair" in err

    exported = cli.json("export", "m", str(tmp_path / "out"))
    assert exported["degraded_chunks"] > 0
    assert tree_bytes(tmp_path / "out") == tree_bytes(tmp_path / "src")

    assert cli.json("device", "rm", "disk1", "--force")["removed"] == "disk1"
    assert cli.json("repair")["ok"] is True
    assert cli.json("scrub")["ok"] is True
    cli("device", "add", str(tmp_path / "disk9"), "--name", "disk9")
    moved = cli.json("rebalance")
    assert moved["moved_pieces"] > 0
    assert cli.json("rebalance")["moved_pieces"] == 0
    drained = cli.json("device", "rm", "disk0", "--drain")
    assert drained["removed"] == "disk0"
    assert cli.json("scrub")["ok"] is True
    assert cli.json("policy", "show") == {"default": "copies=2", "models": {}}
    _out, err = cli("policy", "set", "copies=9", code=2)
    assert "needs 9 devices" in err
    _out, err = cli("device", "rm", "main", "--force", code=2)
    assert "repository folder itself" in err


def test_codec_recompress_and_stats_breakdowns_through_the_command_line(
    cli: Cli, tmp_path: Path
) -> None:
    set_to = cli.json("codec", "set", "zstd", "--level", "3")
    shown = cli.json("codec", "show")
    assert shown == {"default": {"codec": "zstd", "level": 3}, "models": {}}
    assert {k: set_to[k] for k in ("codec", "level")} == shown["default"]  # one shape
    rng = np.random.default_rng(2)
    write_safetensors(tmp_path / "src" / "m.safetensors",
                      {f"w{i}": random_weights(rng, (16384,)) for i in range(4)})  # fmt: skip
    cli("import", str(tmp_path / "src"), "--model", "m")
    before = cli.json("stats")
    done = cli.json("recompress", "m", "--codec", "bytegroup")
    assert done["rewritten"] > 0
    assert done["stored_after"] < done["stored_before"]
    after = cli.json("stats")
    assert after["stored_bytes"] < before["stored_bytes"]
    assert set(after["by_dtype"]) == {"F32", "other"}
    assert after["by_model"]["m"]["ratio"] < 0.9
    assert after["by_version"]["m@1"]["logical_bytes"] == after["logical_bytes"]
    assert cli.json("recompress", "m", "--codec", "bytegroup")["rewritten"] == 0
    assert cli.json("verify")["ok"] is True
    cli("codec", "set", "m", "raw")
    assert cli.json("codec", "show")["models"] == {"m": {"codec": "raw", "level": 1}}
    out, _ = cli("stats")
    assert "DTYPE" in out
    assert "F32" in out
    _out, err = cli("codec", "set", "lz4", code=2)
    assert "unknown codec 'lz4'" in err


def test_load_warm_and_bench_commands(cli: Cli, tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    write_safetensors(tmp_path / "m.safetensors", {"w": random_weights(rng, (256, 256))})
    cli("import", str(tmp_path / "m.safetensors"), "--model", "m")
    loaded = cli.json("load", "m", "--cold", "--strategy", "round-robin", "--threads", "2")
    assert loaded["bytes"] == (tmp_path / "m.safetensors").stat().st_size
    assert loaded["tensors"] == 1
    assert sum(loaded["device_bytes"].values()) == loaded["bytes"]
    uses = json.loads((cli.repo / "hot-use.json").read_text())
    assert list(uses) == ["m@1"]  # a load is a use: the hot tier demotes the least recently used
    warmed = cli.json("warm", "m")
    assert warmed["bytes_read"] > 0
    rows = cli.json("bench", "--threads", "1,2")
    kinds = {r["kind"] for r in rows}
    assert kinds == {"device", "load", "threads", "strategy"}
    assert {r["ref"] for r in rows} == {"m@1"}
    assert all(r["bytes_per_second"] > 0 for r in rows)
    assert len(cli.json("bench", "--history")) == len(rows)
    out, _err = cli("bench", "--history")
    assert "strategy" in out
    assert "MB/S" in out
    if sys.platform == "linux":  # the page cache can be emptied: cold rows, so an aggregate
        out, _err = cli("bench", "--threads", "1")
        assert "aggregate: 1 device read at once, " in out
    _out, err = cli("bench", "--threads", "two", code=2)
    assert "--threads takes numbers" in err


def test_bench_on_an_empty_repository_says_what_to_do(cli: Cli) -> None:
    _out, err = cli("bench", code=2)
    assert "nothing to benchmark" in err
