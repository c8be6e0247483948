"""How the app starts a Python child of its own: isolated (``-I``: no working folder, script
folder, PYTHONPATH or user site-packages on ``sys.path``), in a folder no model lives in, with
nothing in its environment that points at other code. So a ``numpy.py`` or ``modelmanager/``
beside a model can never shadow a module in a child. A frozen app (PyInstaller, which has no
``python -I -c``) starts its own program with a flag that packaging/entry.py dispatches.
"""

from __future__ import annotations

import os
import sys

#: Where children run: a folder no model lives in, so nothing beside the input is a module.
NEUTRAL_FOLDER = os.path.abspath(os.sep)
#: Variables that would make a child import or run something the user's files could name.
_UNSAFE_VARIABLES = ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "PYTHONUSERBASE",
                     "PYTHONSAFEPATH", "PYTHONINSPECT", "PYTHONPLATLIBDIR")  # fmt: skip
#: The frozen program's flags for its children (packaging/entry.py, entry_gui.py).
SANDBOX_FLAG = "--modelmanager-sandbox-child"
CATALOG_FLAG = "--modelmanager-catalog-child"


def python_child(flag: str, code: str, *args: str) -> list[str]:
    """The argument list of a child that runs ``code`` (``sys.argv[1:]`` = ``args``): Python
    in isolated mode, or a frozen app's own program with ``flag``."""
    if getattr(sys, "frozen", False):  # PyInstaller's sys.path is the bundle alone
        return [sys.executable, flag, *args]
    return [sys.executable, "-I", "-c", code, *args]


def child_environment() -> dict[str, str]:
    """The parent's environment less what could point a child at other code (a frozen app's
    bootloader reads some of these; ``-I`` already ignores them in a plain interpreter)."""
    return {k: v for k, v in os.environ.items() if k not in _UNSAFE_VARIABLES}


def usable_cores() -> int:
    """How many cores this process may run on (its affinity where the system says)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return os.cpu_count() or 1
