"""Issue 21: the window's filter bar and ``search`` give the same result set for the same query.

The window reads its line with ``filters.parse_query`` and searches the catalog (gui/library.py);
this compares that with the real command line over a repository of known facts, for every
filter. ``name:value`` words (``license:mit``) are filters in both: ``search`` reads its line
with the same parser.
"""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import pytest

from modelmanager.cli.main import main
from modelmanager.core.catalog.filters import parse_query
from modelmanager.services import open_workspace
from tests.support.fact_models import build_repository

SAME = [
    "--arch llama", "--arch TinyFor", "--dtype bf16", "--dtype bfloat16", "--dtype q8_0",
    "--dtype F32", "--format gguf", "--format safetensors", "--label prod",
    "--params 100K..200K", "--params '>150K'", "--params '<1K'", "--params ..80K",
    "--size '>400KiB'", "--size 0.2MB..0.4MiB", "--newer 1h", "--older 1h",
    "--license apache-2.0", "--license mit", "--base org/base", "tiny --label prod",
    "--arch llama --format safetensors --label prod", "bigger", "--sort size --size '>0'",
]  # fmt: skip
WORDS = ["arch:llama format:gguf", "size:>400KiB", "params:<1K", "label:prod", "format:gguf"]


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_repository(tmp_path_factory.mktemp("parity"))


def _cli(repo: Path, query: str, capsys: pytest.CaptureFixture[str]) -> set[str]:
    capsys.readouterr()
    assert main(["--repo", str(repo), "search", *shlex.split(query), "--json"]) == 0
    return {v["ref"] for v in json.loads(capsys.readouterr().out)}


def _bar(repo: Path, query: str) -> set[str]:
    ws = open_workspace(repo)
    try:
        text, filters = parse_query(query)
        return {f"{v.model}@{v.seq}" for v in ws.catalog.search(text, filters)}
    finally:
        ws.close()


@pytest.mark.parametrize("query", SAME + WORDS)
def test_the_filter_bar_and_the_command_line_find_the_same_versions(
    repo: Path, query: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _cli(repo, query, capsys) == _bar(repo, query)
