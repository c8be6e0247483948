"""References, model names, labels and stored file paths."""

from __future__ import annotations

import pytest

from modelmanager.core.repo.names import (
    Ref,
    check_label,
    check_model_name,
    check_relpath,
    model_key,
    parse_ref,
)
from modelmanager.errors import UserError


@pytest.mark.parametrize(
    ("text", "ref"),
    [
        ("bert", Ref("bert")),
        ("bert@3", Ref("bert", seq=3)),
        ("bert@prod", Ref("bert", label="prod")),
        ("bert@latest", Ref("bert")),
        ("org/my-model_v1.2@rc-1", Ref("org/my-model_v1.2", label="rc-1")),
    ],
)
def test_references_parse(text: str, ref: Ref) -> None:
    assert parse_ref(text) == ref


@pytest.mark.parametrize(
    "text", ["", "@3", "bert@", "bert@0", "bert@-1", "a/b/c", "../x", "bert@Prod", "con"]
)
def test_bad_references_are_user_errors(text: str) -> None:
    with pytest.raises(UserError):
        parse_ref(text)


def test_latest_cannot_be_moved() -> None:
    with pytest.raises(UserError, match="newest version"):
        check_label("latest")


@pytest.mark.parametrize("name", ["x" * 101, "a b", "a/", "-a", "a.", "a/b.", "nul", "COM1.txt"])
def test_unportable_model_names_are_refused(name: str) -> None:
    with pytest.raises(UserError, match="invalid model name"):
        check_model_name(name)


def test_org_names_map_to_one_folder() -> None:
    assert model_key("sentence-transformers/all-MiniLM-L6-v2") == (
        "models/sentence-transformers~all-MiniLM-L6-v2"
    )


@pytest.mark.parametrize(
    "path", ["", "/etc/passwd", "../x", "a/../../x", "a//b", "./a", "C:/x", "a\\b", "a\nb", "a/."]
)
def test_unsafe_stored_paths_are_refused(path: str) -> None:
    with pytest.raises(ValueError, match="unsafe"):
        check_relpath(path)


def test_ordinary_paths_are_accepted() -> None:
    assert check_relpath("1_Pooling/config.json") == "1_Pooling/config.json"
    assert check_label("v1.0-rc1") == "v1.0-rc1"
