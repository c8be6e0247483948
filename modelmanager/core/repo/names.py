"""Names users type and files carry: models, labels, references, file paths inside a version.

Each rule keeps names portable (Windows, macOS, Linux) and safe to use as path components.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Protocol

from modelmanager.errors import UserError

_COMPONENT = r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}"
_MODEL_RE = re.compile(rf"{_COMPONENT}(?:/{_COMPONENT})?")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_LABEL_RE = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")
_WINDOWS_RESERVED = {
    "con", "prn", "aux", "nul",
    *(f"com{i}" for i in range(1, 10)), *(f"lpt{i}" for i in range(1, 10)),
}  # fmt: skip
#: Reserved: ``NAME@latest`` (and a bare ``NAME``) always mean the newest version. It is derived,
#: never stored, so no crash can leave it pointing at an older version than the newest.
LATEST = "latest"


def _portable(component: str) -> bool:
    return not component.endswith(".") and component.split(".")[0].lower() not in _WINDOWS_RESERVED


@functools.lru_cache(maxsize=1 << 16)
def _valid_model_name(name: str) -> bool:
    """Remembered: a catalog rebuild checks every manifest's model name twice."""
    return bool(_MODEL_RE.fullmatch(name)) and all(_portable(c) for c in name.split("/"))


def check_model_name(name: str) -> str:
    """``name`` if it is a valid model name (``name`` or ``org/name``), else UserError."""
    if not isinstance(name, str) or not _valid_model_name(name):
        raise UserError(
            f"invalid model name {name!r}: use letters, digits, '.', '_' and '-' "
            "(optionally 'org/name'), starting with a letter or digit"
        )
    return name


def check_label(label: str) -> str:
    """``label`` if it is a valid label (lower case, not all digits), else UserError."""
    if not _LABEL_RE.fullmatch(label) or label.isdigit() or not _portable(label):
        raise UserError(
            f"invalid label {label!r}: use lower-case letters, digits, '.', '_' and '-', "
            "not only digits (those are version numbers)"
        )
    if label == LATEST:
        raise UserError(
            f"'{LATEST}' always means the newest version and cannot be moved; "
            "use another label (e.g. prod) to pin a version"
        )
    return label


def is_label(label: str) -> bool:
    """True when ``label`` is a valid label (what :func:`check_label` accepts)."""
    try:
        check_label(label)
    except UserError:
        return False
    return True


@dataclass(frozen=True)
class Ref:
    """A parsed reference: ``NAME`` (latest), ``NAME@3`` (version 3) or ``NAME@prod`` (label)."""

    model: str
    seq: int | None = None
    label: str | None = None

    def __str__(self) -> str:
        if self.seq is not None:
            return f"{self.model}@{self.seq}"
        if self.label is not None:
            return f"{self.model}@{self.label}"
        return self.model


def parse_ref(text: str) -> Ref:
    """Parse a reference typed by a user; UserError with the accepted forms otherwise."""
    model, sep, selector = text.partition("@")
    check_model_name(model)
    if not sep:
        return Ref(model)
    if selector.isdigit() and selector.isascii():
        seq = int(selector)
        if seq < 1:
            raise UserError(f"invalid reference {text!r}: versions count from 1")
        return Ref(model, seq=seq)
    if not selector:
        raise UserError(f"invalid reference {text!r}: expected NAME, NAME@3 or NAME@label")
    if selector == LATEST:
        return Ref(model)
    return Ref(model, label=check_label(selector))


def check_relpath(path: str) -> str:
    """``path`` if it is a safe relative POSIX path for a file inside a version, else ValueError.

    Refused: absolute paths, '..' and '.' components, empty components, backslashes, drive
    letters, control characters. These come from manifests, which may come from elsewhere.
    """
    if not path or path.startswith("/") or "\\" in path or len(path) > 4096:
        raise ValueError(f"unsafe file path {path!r}")
    if _CONTROL.search(path):
        raise ValueError(f"unsafe file path {path!r} (control character)")
    parts = path.split("/")
    if any(p in ("", ".", "..") for p in parts) or re.match(r"[A-Za-z]:", parts[0]):
        raise ValueError(f"unsafe file path {path!r}")
    return path


def model_key(name: str) -> str:
    """The folder key of a model in the repository ('/' in ``org/name`` becomes '~')."""
    return "models/" + check_model_name(name).replace("/", "~")


class ModelIndex(Protocol):
    """Something that knows every model's name (the catalog): answers the import name check
    without listing the repository's folders."""

    def existing_model_name(self, model: str) -> str | None:
        """The stored spelling of a model whose name equals ``model`` ignoring case."""
        ...

    def model_names(self) -> list[str]:
        """Every model's name, sorted (for a not-found message's close names)."""
        ...
