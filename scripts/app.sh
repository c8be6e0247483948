#!/usr/bin/env bash
# Set everything up (first run only) and start ModelManager on the default repository.
# Arguments are passed on: scripts/app.sh import ./my-model --model my-model
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
QT_LIBS=display bash "$ROOT/scripts/setup.sh"
exec "$ROOT/.venv/bin/modelmanager" "$@"
