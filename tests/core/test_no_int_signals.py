"""No Qt signal or slot in the app carries a C++ int: sizes, progress and even counts cross
threads as Python ints (``object``), since a signal typed ``int`` is 32-bit and overflows past
2 GiB. Checked over every module, in every spelling: ``Signal(int)``, ``QtCore.Signal(int)``,
``Slot("int")``, and the 32-bit Qt names."""

from __future__ import annotations

import ast
from pathlib import Path

APP = Path(__file__).resolve().parents[2] / "modelmanager"
NARROW = {"int", "qint32", "quint32", "uint", "long", "ulong"}


def _narrow(arg: ast.expr) -> bool:
    if isinstance(arg, ast.Name):
        return arg.id == "int"
    if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
        return arg.value.strip() in NARROW
    if isinstance(arg, (ast.List, ast.Tuple)):  # overloads: Signal([int], [str])
        return any(_narrow(e) for e in arg.elts)
    return False


def int_signals(source: str) -> list[int]:
    """Line numbers of Signal/Slot declarations in ``source`` with a 32-bit int argument."""
    lines = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)
        if name in ("Signal", "Slot", "pyqtSignal", "pyqtSlot") and any(
            _narrow(a) for a in [*node.args, *(k.value for k in node.keywords)]
        ):
            lines.append(node.lineno)
    return lines


def test_the_check_finds_every_spelling() -> None:
    source = (
        "a = Signal(int)\nb = QtCore.Signal(object, int)\nc = Slot('int')\n"
        "d = Signal([int], [str])\ne = Signal(object)\nf = Signal(str, float)\n"
    )
    assert int_signals(source) == [1, 2, 3, 4]


def test_no_signal_or_slot_is_declared_with_int() -> None:
    found = [
        f"{path.relative_to(APP)}:{line}"
        for path in sorted(APP.rglob("*.py"))
        for line in int_signals(path.read_text(encoding="utf-8"))
    ]
    assert found == []
