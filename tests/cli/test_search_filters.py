"""Structured facts and search filters: every filter against a repository of known models."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from modelmanager.cli.main import main
from modelmanager.core.catalog.filters import UsageError, build, parse_query
from modelmanager.core.formats.hf_config import card_facts
from modelmanager.services import open_workspace
from tests.conftest import subprocess_env
from tests.support.fact_models import KNOWN, build_repository

ALL = set(KNOWN)


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_repository(tmp_path_factory.mktemp("facts"))


def search(repo: Path, capsys: pytest.CaptureFixture[str], *args: str) -> list[dict[str, Any]]:
    capsys.readouterr()
    assert main(["--repo", str(repo), "search", *args, "--json"]) == 0
    found: list[dict[str, Any]] = json.loads(capsys.readouterr().out)
    return found


def refs(repo: Path, capsys: pytest.CaptureFixture[str], *args: str) -> set[str]:
    return {v["ref"] for v in search(repo, capsys, *args)}


def test_each_version_carries_the_facts_its_files_state(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = {v["ref"]: v for v in search(repo, capsys, "--size", ">0")}
    assert set(rows) == ALL
    for ref, known in KNOWN.items():
        row = rows[ref]
        for key, value in known.items():
            got = row[key]
            if key == "dtypes":
                got = sorted(d.lower() for d in got)
            assert got == value, (ref, key)
    llama = rows["org/llama-bf16@1"]
    assert llama["metadata"]["license"] == "apache-2.0"  # from the card, at import
    assert llama["metadata"]["num_hidden_layers"] == 3  # from config.json, at import
    gguf = rows["org/tiny-gguf@1"]
    assert (gguf["architecture"], gguf["layers"]) == ("llama", 1)  # GGUF keys, blk.0 names


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--arch", "llama"], {"org/llama-bf16@1", "org/tiny-gguf@1"}),
        (["--arch", "TinyFor"], {"org/tiny@1", "org/tiny@2"}),
        (["--dtype", "bf16"], {"org/llama-bf16@1"}),
        (["--dtype", "bfloat16"], {"org/llama-bf16@1"}),
        (["--dtype", "q8_0"], {"org/tiny-gguf@1"}),
        (["--dtype", "F32"], {"org/tiny-gguf@1", "org/tiny@1", "org/tiny@2"}),
        (["--format", "gguf"], {"org/tiny-gguf@1"}),
        (["--format", "safetensors"], {"org/llama-bf16@1", "org/tiny@1", "org/tiny@2"}),
        (["--label", "prod"], {"org/llama-bf16@1", "org/tiny@2"}),
        (["--params", "100K..200K"], {"org/llama-bf16@1", "org/tiny@2"}),
        (["--params", ">150K"], {"org/llama-bf16@1"}),
        (["--params", "<1K"], {"org/tiny-gguf@1"}),
        (["--params", "..80K"], {"org/tiny-gguf@1", "org/tiny@1"}),
        (["--params", "192K"], {"org/llama-bf16@1"}),
        (["--size", ">400KiB"], {"org/tiny@2"}),
        (["--size", "<10KB"], {"org/tiny-gguf@1"}),
        (["--size", "0.2MB..0.4MiB"], {"org/llama-bf16@1", "org/tiny@1"}),
        (["--newer", "1h"], ALL),
        (["--older", "1h"], set()),
        (["tiny", "--label", "prod"], {"org/tiny@2"}),
        (["--arch", "llama", "--format", "safetensors", "--label", "prod"], {"org/llama-bf16@1"}),
        (["bigger"], {"org/tiny@2"}),  # text alone: as before
        (["--license", "apache-2.0"], {"org/llama-bf16@1"}),
        (["--license", "mit"], set()),
        (["--base", "org/base"], {"org/llama-bf16@1"}),
    ],
)
def test_each_filter_keeps_exactly_the_versions_with_that_fact(
    repo: Path, capsys: pytest.CaptureFixture[str], args: list[str], expected: set[str]
) -> None:
    assert refs(repo, capsys, *args) == expected


def test_ages_compare_with_the_versions_creation_time(repo: Path) -> None:
    ws = open_workspace(repo)
    try:
        created = {
            f"{v.model}@{v.seq}": v.created for v in ws.catalog.search("", build({"--size": ">0"}))
        }
        newest = max(created.values())
        at = datetime.strptime(newest, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc)
        later = at + timedelta(days=31)
        old = ws.catalog.search("", build({"--older": "30d"}, now=later))
        assert {f"{v.model}@{v.seq}" for v in old} == ALL
        assert ws.catalog.search("", build({"--newer": "30d"}, now=later)) == []
        text, f = parse_query("tiny --older=30d --label prod", now=later)
        assert text == "tiny"
        assert [f"{v.model}@{v.seq}" for v in ws.catalog.search(text, f)] == ["org/tiny@2"]
    finally:
        ws.close()


@pytest.mark.parametrize(
    ("sort", "order"),
    [
        ("name", ["org/llama-bf16@1", "org/tiny@1", "org/tiny@2", "org/tiny-gguf@1"]),
        ("params", ["org/llama-bf16@1", "org/tiny@2", "org/tiny@1", "org/tiny-gguf@1"]),
        ("size", ["org/tiny@2", "org/llama-bf16@1", "org/tiny@1", "org/tiny-gguf@1"]),
        ("date", ["org/tiny@2", "org/tiny@1", "org/tiny-gguf@1", "org/llama-bf16@1"]),
    ],
)
def test_results_sort_by_name_params_size_or_date(
    repo: Path, capsys: pytest.CaptureFixture[str], sort: str, order: list[str]
) -> None:
    found = search(repo, capsys, "--size", ">0", "--sort", sort)
    assert [v["ref"] for v in found] == order


def _cli(repo: Path, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "modelmanager", "--repo", str(repo), "search", *args],
        capture_output=True, text=True, env=subprocess_env(tmp_path),
    )  # fmt: skip


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["--params", "6X"], "--params: unknown unit 'X'"),
        (["--size", ">four"], "--size: '>four' is not a size"),
        (["--params", "9B..6B"], "--params: '9B..6B' runs backwards"),
        (["--older", "30"], "--older: '30' is not an age"),
        (["--size", ".."], "--size: '..' has no bounds"),
        ([], "search: give TEXT, a filter"),
    ],
)
def test_a_bad_filter_is_one_line_naming_the_option_and_exit_2(
    repo: Path, tmp_path: Path, args: list[str], named: str
) -> None:
    proc = _cli(repo, tmp_path, *args)
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert len(proc.stderr.strip().splitlines()) == 1
    assert named in proc.stderr


def test_the_command_line_prints_the_facts_in_its_table(repo: Path, tmp_path: Path) -> None:
    proc = _cli(repo, tmp_path, "--arch", "llama", "--sort", "params")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].split()[:5] == ["REF", "ARCH", "PARAMS", "DTYPES", "FORMAT"]
    assert lines[1].split()[:5] == ["org/llama-bf16@1", "LlamaForCausalLM", "192.0k", "bf16",
                                    "safetensors"]  # fmt: skip
    assert lines[2].split()[:2] == ["org/tiny-gguf@1", "llama"]
    with pytest.raises(UsageError, match="--bogus: unknown filter"):
        parse_query("x --bogus 1")


def _catalog_file(tmp_path: Path) -> Path:
    (found,) = (tmp_path / "cache" / "catalogs").glob("*.sqlite")
    return found


def test_reindex_fills_the_facts_of_versions_catalogued_before(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = build_repository(tmp_path)
    with sqlite3.connect(_catalog_file(tmp_path)) as db:  # rows as a catalog without facts
        db.execute("UPDATE versions SET facts='{}', architecture='', model_type='', "
                   "dtype_names=' ', formats=' '")  # fmt: skip
    db.close()
    assert refs(repo, capsys, "--arch", "llama") == set()
    assert main(["--repo", str(repo), "reindex"]) == 0
    assert refs(repo, capsys, "--arch", "llama") == {"org/llama-bf16@1", "org/tiny-gguf@1"}
    assert refs(repo, capsys, "--format", "gguf", "--dtype", "q8_0") == {"org/tiny-gguf@1"}


def test_a_schema_4_catalog_is_rebuilt_with_facts_and_keeps_benchmarks(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = build_repository(tmp_path)
    path = _catalog_file(tmp_path)
    with sqlite3.connect(path) as db:  # what the previous release left: no fact columns
        db.execute("DROP TABLE versions")
        db.execute(
            "CREATE TABLE versions(key TEXT PRIMARY KEY, model TEXT NOT NULL, "
            "seq INTEGER NOT NULL, parent INTEGER, created TEXT NOT NULL, "
            "message TEXT NOT NULL, metadata TEXT NOT NULL, files INTEGER NOT NULL, "
            "tensors INTEGER NOT NULL, parameters INTEGER NOT NULL, "
            "logical_bytes INTEGER NOT NULL, dtypes TEXT NOT NULL, size INTEGER NOT NULL)"
        )
        db.execute(
            "INSERT INTO bench VALUES('r1','2026-01-01','device','main','d1','','',1,"
            "'cold',1000,0.5)"
        )
        db.execute("PRAGMA user_version=4")  # fmt: skip
    db.close()
    assert refs(repo, capsys, "--dtype", "bf16") == {"org/llama-bf16@1"}
    ws = open_workspace(repo)
    try:
        assert [r.run for r in ws.catalog.bench_rows()] == ["r1"]
    finally:
        ws.close()


@pytest.mark.parametrize(
    ("card", "facts"),
    [
        ("---\nlicense: mit\nbase_model: meta/llama-7b\n---\n", {"license": "mit",
                                                                 "base_model": "meta/llama-7b"}),
        ("---\nbase_model:\n  - 'org/a'\n  - org/b\nlicense: \"apache-2.0\"\n---\n",
         {"base_model": "org/a", "license": "apache-2.0"}),
        ("# No front matter\nlicense: mit\n", {}),
        ("---\ntags: [a]\n---\nlicense: mit\n", {}),  # after the front matter: prose
    ],
)  # fmt: skip
def test_the_card_front_matter_states_license_and_base_model(
    card: str, facts: dict[str, str]
) -> None:
    assert card_facts(card) == facts


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("license:apache-2.0", {"org/llama-bf16@1"}),
        ("--license APACHE-2.0", {"org/llama-bf16@1"}),
        ("--license=apache", set()),  # a license is named exactly
        ("license:mit", set()),
        ("base:base-7b", {"org/llama-bf16@1"}),
        ("--base ORG/BASE", {"org/llama-bf16@1"}),
        ("base:other", set()),
        ("llama base:org/base-7b license:apache-2.0", {"org/llama-bf16@1"}),
        ("tiny license:apache-2.0", set()),
        ("arch:llama format:gguf", {"org/tiny-gguf@1"}),
        ("size:>400KiB", {"org/tiny@2"}),
    ],
)
def test_license_and_base_model_filter_as_options_or_name_colon_value(
    repo: Path, line: str, expected: set[str]
) -> None:
    ws = open_workspace(repo)
    try:
        text, f = parse_query(line)
        assert {f"{v.model}@{v.seq}" for v in ws.catalog.search(text, f)} == expected
    finally:
        ws.close()


def test_a_word_with_a_colon_that_names_no_filter_is_text() -> None:
    assert parse_query("ratio:3 license:MIT") == ("ratio:3", build({"--license": "mit"}))
    with pytest.raises(UsageError, match="--base: needs a value"):
        parse_query("--base ''")
