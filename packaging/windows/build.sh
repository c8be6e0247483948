#!/usr/bin/env bash
# Build the Windows installer: the bundle, then a setup .exe with NSIS (Git Bash on Windows).
#   packaging/windows/build.sh [OUT_DIR]     (default: dist/)
# Writes OUT_DIR/modelmanager/ and OUT_DIR/ModelManager-VERSION-setup.exe. Needs makensis
# on PATH (choco install nsis; Debian's nsis package compiles the script too).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
OUT="$(mkdir -p "${1:-$ROOT/dist}" && cd "${1:-$ROOT/dist}" && pwd)"

bash "$ROOT/packaging/bundle.sh" "$OUT"
version="$(sed -n 's/^!define APP_DISPLAY_VERSION "\(.*\)"$/\1/p' \
  "$ROOT/packaging/build/windows/appinfo.nsh")"
setup="$OUT/ModelManager-$version-setup.exe"
makensis -V2 -DDIST="$OUT/modelmanager" -DASSETS="$ROOT/packaging/build" -DOUT="$setup" \
  "$HERE/modelmanager.nsi"
printf '\033[1m==> built %s\033[0m\n' "$setup" >&2
