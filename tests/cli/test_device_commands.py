"""``device set --rename``, ``device rm --force`` (previewed, refused while it would lose
data) and the same-file-system warning of ``device add`` and ``device ls``."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np

from modelmanager.core.placement import read_identity
from tests.cli.test_cli import Cli, cli
from tests.conftest import subprocess_env
from tests.support.builders import random_weights, write_safetensors
from tests.support.filesystems import other_fs

__all__ = ["cli", "other_fs"]  # fixtures, used by name


def _import(cli: Cli, tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    write_safetensors(tmp_path / "src" / "m.safetensors",
                      {f"w{i}": random_weights(rng, (8192,)) for i in range(8)})  # fmt: skip
    cli("import", str(tmp_path / "src"), "--model", "m")


def test_add_and_ls_warn_when_devices_share_a_file_system(
    cli: Cli, tmp_path: Path, other_fs: Path
) -> None:
    _out, err = cli("device", "add", str(tmp_path / "a"), "--name", "a")
    assert err.strip() == ("warning: a is on the same file system as main: copies on them are "
                           "not independent (one disk lost loses them all); use a folder on "
                           "another disk for redundancy")  # fmt: skip
    added = cli.json("device", "add", str(other_fs / "b"), "--name", "b")
    assert added["shares_file_system_with"] == []
    out, err = cli("device", "ls")
    assert "one file system holds several devices (main and a)" in err
    listed = {d["name"]: d["shares_file_system_with"] for d in cli.json("device", "ls")}
    assert listed == {"main": ["a"], "a": ["main"], "b": []}
    _import(cli, tmp_path)
    out, _err = cli("policy", "set", "copies=2", "--dry-run")
    assert "survive losing 1 device." in out  # placement puts the two copies on two disks
    out, _err = cli("policy", "set", "copies=3", "--dry-run")
    assert "survive losing 1 device." in out


def test_set_renames_and_reweights_a_device(cli: Cli, tmp_path: Path) -> None:
    cli("device", "add", str(tmp_path / "a"), "--name", "a")
    out, _err = cli("device", "set", "a", "--rename", "fast", "--weight", "3", "--tier", "cold")
    assert out == "Device fast (was a): online, weight 3, cold\n"
    identity = read_identity(tmp_path / "a")
    assert identity is not None
    assert identity["name"] == "fast"
    listed = {d["name"]: (d["weight"], d["tier"]) for d in cli.json("device", "ls")}
    assert listed == {"main": (1.0, "hot"), "fast": (3.0, "cold")}
    _out, err = cli("device", "set", "fast", code=2)
    assert err == "modelmanager: error: say what to change: --weight, --tier and/or --rename\n"
    _out, err = cli("device", "set", "main", "--rename", "home", code=2)
    assert "'main'" in err


def test_rm_force_previews_and_refuses_to_lose_data(cli: Cli, tmp_path: Path) -> None:
    cli("device", "add", str(tmp_path / "a"), "--name", "a")
    cli("device", "offline", "main")
    _import(cli, tmp_path)  # copies=1, everything on a
    cli("device", "online", "main")
    cli("device", "offline", "a")  # the disk failed
    preview = cli.json("device", "rm", "a", "--force", "--dry-run", code=1)
    assert preview["lost"] == 9
    assert (preview["models_lost"], preview["versions_lost"]) == (["m"], ["m@1"])
    out, err = cli("device", "rm", "a", "--force", "--dry-run", code=1)
    assert "    9 chunks lost (models: m)" in out
    assert "refused without --allow-loss" in err

    # A real process: one line naming the device and the cause, usage exit code, no change.
    run = subprocess.run(
        [sys.executable, "-m", "modelmanager", "--repo", str(cli.repo), "device", "rm", "a",
         "--force"], capture_output=True, text=True, env=subprocess_env(tmp_path), check=False,
    )  # fmt: skip
    assert run.returncode == 2, run
    assert run.stderr.count("\n") == 1
    assert run.stderr.startswith(
        "modelmanager: error: removing device a would lose data: 9 chunks of m"
    )
    assert "a" in {d["name"] for d in cli.json("device", "ls")}

    _out, err = cli("device", "rm", "a", "--drain", "--allow-loss", code=2)
    assert "--allow-loss goes with --force" in err
    _out, err = cli("device", "rm", "a", "--force", "--allow-loss")
    assert "lost: 9 chunks of m" in err
    assert "a" not in {d["name"] for d in cli.json("device", "ls")}
    report = cli.json("scrub", code=1)
    assert len(report["lost"]) == 9
