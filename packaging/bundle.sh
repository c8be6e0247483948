#!/usr/bin/env bash
# Build the one-folder bundle for this platform: icons, desktop files, then PyInstaller.
#   packaging/bundle.sh OUT_DIR     writes OUT_DIR/modelmanager/ (and ModelManager.app on macOS)
# Shared by the platform scripts (linux/, windows/, macos/). Python: $PYTHON, else the
# project's .venv, else python3 on PATH.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
OUT="$(mkdir -p "$1" && cd "$1" && pwd)"
if [ -n "${PYTHON:-}" ]; then PY="$PYTHON"
elif [ -x "$ROOT/.venv/bin/python" ]; then PY="$ROOT/.venv/bin/python"
elif [ -x "$ROOT/.venv/Scripts/python.exe" ]; then PY="$ROOT/.venv/Scripts/python.exe"
else PY=python3; fi
ASSETS="$HERE/build"

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

"$PY" -c 'import PyInstaller' 2>/dev/null || {
  say "installing PyInstaller"
  "$PY" -m pip install -q --disable-pip-version-check "pyinstaller>=6.10"
}

say "icons and desktop files"
QT_QPA_PLATFORM=offscreen "$PY" "$HERE/icons.py" "$ASSETS" >/dev/null
"$PY" "$HERE/desktop_files.py" "$ASSETS" >/dev/null

say "bundle (PyInstaller)"
"$PY" -m PyInstaller --noconfirm --clean --log-level WARN \
  --distpath "$OUT" --workpath "$OUT/pyinstaller-work" "$HERE/modelmanager.spec"
rm -rf "$OUT/pyinstaller-work"

if [ "$(uname -s)" = Linux ]; then
  # Debug symbols are half the size of some libraries (libpython, zstandard). Libraries that
  # auditwheel patched (in a wheel's .libs folder, or with an RPATH into one: numpy's openblas,
  # Pillow) are left alone: stripped, they fail to load ("ELF load command ... not
  # page-aligned").
  while IFS= read -r -d '' lib; do
    if readelf -S "$lib" 2>/dev/null | grep -q '\.debug_info' &&
       ! readelf -d "$lib" 2>/dev/null | grep -q -E 'R(UN)?PATH.*\.libs'; then
      strip --strip-debug "$lib"
    fi
  done < <(find "$OUT/modelmanager" -type f -name '*.so*' -not -path '*.libs/*' -print0)
fi
say "bundle in $OUT/modelmanager ($(du -sh "$OUT/modelmanager" | cut -f1))"
