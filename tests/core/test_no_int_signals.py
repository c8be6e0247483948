"""No Qt signal in the window carries a C++ int: sizes, progress and even counts cross threads
as Python ints (``object``), since a ``Signal(int)`` is 32-bit and overflows past 2 GiB."""

from __future__ import annotations

import ast
from pathlib import Path

GUI = Path(__file__).resolve().parents[2] / "modelmanager" / "gui"


def test_no_signal_or_slot_is_declared_with_int() -> None:
    found = []
    for path in sorted(GUI.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            declared = (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
                        and node.func.id in ("Signal", "Slot"))  # fmt: skip
            if declared and any(isinstance(a, ast.Name) and a.id == "int" for a in node.args):
                found.append(f"{path.relative_to(GUI)}:{node.lineno}")
    assert found == []
