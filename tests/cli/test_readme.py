"""Every ``modelmanager ...`` line of the README's shell blocks runs, in order, as written.

The README is what a new user copies; a line that fails, or does something else than it says
(``-m`` once named the model, so ``import ./finetuned --model X -m "tuned"`` made a model called
"tuned"), is a bug. The lines run in-process against a repository in a temporary folder, with
real model files where the README names folders. What the test changes, and why:

- ``NAME`` is the README's own placeholder for a model (see its "References"): the one imported;
- ``/mnt/...`` (the disks of the devices example) are empty folders in the temporary folder;
- the S3 remote (``s3://bucket/prefix --endpoint https://minio.lab:9000``) needs a server: it
  becomes a shared-folder remote (``file://``), which runs the very same push, show and pull
  code above the blob store (tests/conformance holds the S3 store to the same behaviour, and
  tests/services/test_remotes.py runs these commands against a loopback S3 server);
- the Ollama store of ``stores adopt ollama llama3:latest`` is built in the folder Ollama's
  ``OLLAMA_MODELS`` names.
No line is skipped: none needs a window (``gui`` appears only inline, not in a shell block).
"""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import numpy as np
import pytest

from modelmanager.cli.main import main
from tests.services.test_stores import ollama_store
from tests.support.builders import hf_folder

README = Path(__file__).resolve().parents[2] / "README.md"
MODEL = "sentence-transformers/all-MiniLM-L6-v2"
S3_REMOTE = "s3://bucket/prefix --endpoint https://minio.lab:9000"


def readme_commands(text: str) -> list[list[str]]:
    """The ``modelmanager`` lines of the ```sh blocks, continuations joined, comments cut."""
    lines: list[list[str]] = []
    for block in re.findall(r"```sh\n(.*?)```", text, flags=re.S):
        for line in block.replace("\\\n", " ").splitlines():
            words = shlex.split(line, comments=True)
            if words[:1] == ["modelmanager"]:
                lines.append(words[1:])
    return lines


def test_readme_commands_are_read_as_written() -> None:
    commands = readme_commands(README.read_text(encoding="utf-8"))
    assert len(commands) >= 30
    assert ["import", "./finetuned", "--model", MODEL, "-m", "tuned"] in commands
    for words in commands:  # runnable as written: no [optional] parts, no other placeholder
        assert not [w for w in words if w.startswith("[") or re.fullmatch(r"[A-Z]+", w)], words


def test_every_readme_example_runs_in_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    rng = np.random.default_rng(16)
    hf_folder(tmp_path / "all-MiniLM-L6-v2", rng)
    hf_folder(tmp_path / "finetuned", rng)
    for disk in ("nvme", "usb"):
        (tmp_path / "mnt" / disk / "mm").mkdir(parents=True)
    ollama = tmp_path / "no-ollama"  # OLLAMA_MODELS (tests/conftest.py)
    ollama_store(ollama, tmp_path)
    library = ollama / "manifests" / "registry.ollama.ai" / "library"
    (library / "tiny").rename(library / "llama3")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    text = README.read_text(encoding="utf-8").replace(S3_REMOTE, f"file://{tmp_path}/remote")
    failed = []
    for words in readme_commands(text):
        argv = [w.replace("NAME", MODEL).replace("/mnt/", f"{tmp_path}/mnt/") for w in words]
        capsys.readouterr()
        code = main(argv)
        out, err = capsys.readouterr()
        if code != 0:
            failed.append(f"modelmanager {shlex.join(words)}: exit {code}\n{out}{err}")
    assert failed == []

    # What the lines said they do: -m is the message of version 2 of the same model.
    capsys.readouterr()
    assert main(["log", MODEL, "--json"]) == 0
    log = json.loads(capsys.readouterr().out)
    assert [(v["version"], v["message"], v["labels"]) for v in log] == [
        (2, "tuned", ["prod"]),
        (1, "from the hub", []),
    ]
    assert main(["ls", "--json"]) == 0
    assert [m["model"] for m in json.loads(capsys.readouterr().out)] == [MODEL]
    assert (tmp_path / "out" / "config.json").read_bytes() == (
        tmp_path / "finetuned" / "config.json"
    ).read_bytes()
