"""S3 keys in a real keyring backend (keyrings.alt's file backend, chosen by name as a user would),
through the service and the real CLI; a plain-file backend keyring picked by itself is refused."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("moto")
pytest.importorskip("keyrings.alt")

import keyring
from keyrings.alt.file import PlaintextKeyring

from modelmanager.core.remote.credentials import keyring_problem
from modelmanager.errors import EXIT_USAGE, UserError
from modelmanager.services import Workspace
from modelmanager.services.importing import import_paths
from modelmanager.services.remotes import add_remote, list_remotes, list_versions, open_remote
from tests.conftest import subprocess_env
from tests.support.builders import random_weights, write_safetensors
from tests.support.s3 import create_bucket, moto_server

BACKEND = "keyrings.alt.file.PlaintextKeyring"


def test_a_plain_file_keyring_that_keyring_picked_by_itself_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Where no OS keyring exists and keyrings.alt is installed, keyring falls back to a plain
    file by itself: the secret would be written in plain text silently. Refused, in one line;
    the same backend chosen by name (PYTHON_KEYRING_BACKEND) is the user's choice and used."""
    monkeypatch.delenv("PYTHON_KEYRING_BACKEND", raising=False)
    backend = PlaintextKeyring()
    backend.file_path = str(tmp_path / "kr" / "keyring_pass.cfg")
    previous = keyring.get_keyring()
    keyring.set_keyring(backend)
    try:
        with pytest.raises(UserError, match=r"no OS keyring.*AWS_ACCESS_KEY_ID") as e:
            add_remote("team", "s3://bucket/p", access_key="AKIA", secret_key="pl41n-s3cret")
        assert "\n" not in str(e.value)
        assert BACKEND in str(e.value)
        assert not (tmp_path / "kr").exists()
        assert list_remotes() == []
        monkeypatch.setenv("PYTHON_KEYRING_BACKEND", BACKEND)
        assert keyring_problem() is None
        add_remote("team", "s3://bucket/p", access_key="AKIA", secret_key="pl41n-s3cret")
        assert "pl41n-s3cret" in backend.get_password("modelmanager", "remote:team")  # type: ignore[operator]
    finally:
        keyring.set_keyring(previous)


def test_the_cli_keeps_keys_in_the_chosen_keyring_and_push_uses_them(
    ws: Workspace, tmp_path: Path
) -> None:
    """`remote add --access-key-id` (secret on stdin) then `push`, two real processes, with no
    AWS keys in the environment or ~/.aws: the push can only have used the keyring's."""
    rng = np.random.default_rng(0)
    src = tmp_path / "src"
    write_safetensors(src / "model.safetensors", {"w": random_weights(rng, (64, 64))})
    import_paths(ws, [src], "tiny")
    env = subprocess_env(tmp_path, PYTHON_KEYRING_BACKEND=BACKEND,
                         XDG_DATA_HOME=str(tmp_path / "xdg"), HOME=str(tmp_path / "home"),
                         AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "none"),
                         AWS_CONFIG_FILE=str(tmp_path / "none"),
                         AWS_DEFAULT_REGION="us-east-1")  # fmt: skip
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        env.pop(var, None)
    cli = [sys.executable, "-m", "modelmanager", "--repo", str(ws.repo.root)]
    with moto_server() as endpoint:
        create_bucket(endpoint)
        added = subprocess.run(
            [*cli, "remote", "add", "team", "s3://models/cli", "--endpoint", endpoint,
             "--access-key-id", "AKIACLI"],
            input="cli-s3cret-91\n", env=env, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert added.returncode == 0, added.stderr
        assert "keys kept in the OS keyring" in added.stdout
        pushed = subprocess.run([*cli, "push", "tiny@1", "team"], env=env, capture_output=True,
                                text=True, timeout=120)  # fmt: skip
        assert pushed.returncode == 0, pushed.stderr
        kept = list((tmp_path / "xdg").rglob("keyring_pass.cfg"))
        assert len(kept) == 1
        backend = PlaintextKeyring()
        backend.file_path = str(kept[0])
        assert "cli-s3cret-91" in backend.get_password("modelmanager", "remote:team")  # type: ignore[operator]
        ours = "".join(p.read_text() for p in (tmp_path / "data").rglob("*.json"))
        assert "cli-s3cret-91" not in ours
        # Read back in this process through the same keyring file: the version is there.
        previous = keyring.get_keyring()
        keyring.set_keyring(backend)
        try:
            assert [v.model for v in list_versions(open_remote("team"))] == ["tiny"]
        finally:
            keyring.set_keyring(previous)
        env.pop("PYTHON_KEYRING_BACKEND")  # the plain file is no longer the user's choice
        again = subprocess.run(
            [*cli, "remote", "add", "team2", "s3://models/cli2", "--access-key-id", "AKIA2"],
            input="other-s3cret\n", env=env, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert again.returncode == EXIT_USAGE, again.stdout
        assert again.stderr.count("\n") == 1
        assert "no OS keyring" in again.stderr
        assert backend.get_password("modelmanager", "remote:team2") is None
