#!/usr/bin/env bash
# Shared by app.sh and test.sh: make .venv with ModelManager installed (and EXTRAS, if given).
# Works on a fresh Debian/Ubuntu machine: installs python3-venv through apt when it is missing.
# Re-running is cheap: the install is redone only when pyproject.toml or the extras change.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
EXTRAS="${1:-}"

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
    say "need root for: $*"; return 1; fi
}

apt_install() {
  command -v apt-get >/dev/null || { say "please install: $*"; return 1; }
  say "installing system packages: $*"
  as_root apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

find_python() {
  for py in python3 python3.13 python3.12 python3.11 python3.10; do
    if command -v "$py" >/dev/null &&
       "$py" -c 'import sys; sys.exit(sys.version_info < (3, 10))' 2>/dev/null; then
      echo "$py"; return 0
    fi
  done
  return 1
}

PY="$(find_python)" || { apt_install python3 && PY="$(find_python)"; } || {
  say "ModelManager needs Python 3.10 or newer"; exit 1; }

if [ ! -x "$VENV/bin/python" ]; then
  if ! "$PY" -c 'import ensurepip, venv' 2>/dev/null; then
    ver="$("$PY" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')"
    apt_install "python${ver}-venv" || apt_install python3-venv
  fi
  say "creating $VENV with $("$PY" --version)"
  "$PY" -m venv "$VENV"
fi

# Qt's system libraries: what a minimal Debian/Ubuntu lacks for PySide6 (offscreen for tests;
# with "display", the X11/xcb set a real window needs too). Only when PySide6 cannot load.
ensure_qt_libs() {
  local mode="${1:-offscreen}"
  if [ "$mode" = offscreen ] &&
     QT_QPA_PLATFORM=offscreen "$VENV/bin/python" -c 'from PySide6 import QtWidgets' 2>/dev/null; then
    return 0
  fi
  command -v apt-get >/dev/null || return 0
  local pkgs="libegl1 libgl1 libx11-6 libdbus-1-3 libfontconfig1 libfreetype6 libglib2.0-0 libxkbcommon0"
  if [ "$mode" = display ]; then
    pkgs="$pkgs libxcb-cursor0 libxkbcommon-x11-0 libxcb-icccm4 libxcb-image0 libxcb-keysyms1"
    pkgs="$pkgs libxcb-render-util0 libxcb-shape0 libxcb-xkb1 libxcb-randr0 libxcb-xinerama0"
  fi
  local missing=""
  for p in $pkgs; do dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"; done
  # shellcheck disable=SC2086  # one word per package
  [ -z "$missing" ] || apt_install $missing
}

STAMP="$VENV/.modelmanager-installed"
WANT="$(cat "$ROOT/pyproject.toml" "$0" | cksum)-$EXTRAS"
if [ ! -f "$STAMP" ] || [ "$(cat "$STAMP")" != "$WANT" ]; then
  say "installing ModelManager${EXTRAS:+ with [$EXTRAS]} into .venv"
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check --upgrade pip
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check -e "$ROOT${EXTRAS:+[$EXTRAS]}"
  echo "$WANT" > "$STAMP"
fi
ensure_qt_libs "${QT_LIBS:-offscreen}"

# The tools the packaging tests check the installers with (issue 9): NSIS compiles the
# Windows script, shellcheck the build scripts, the freedesktop validators the Linux files.
ensure_test_tools() {
  command -v apt-get >/dev/null || return 0
  local missing="" tool
  for tool in makensis:nsis shellcheck:shellcheck desktop-file-validate:desktop-file-utils \
              appstreamcli:appstream; do
    command -v "${tool%%:*}" >/dev/null || missing="$missing ${tool#*:}"
  done
  # shellcheck disable=SC2086  # one word per package
  [ -z "$missing" ] || apt_install $missing
}
if [ "$EXTRAS" = test ]; then ensure_test_tools; fi
