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

# apt-get, waiting for the package manager's locks: a fresh Ubuntu runs unattended-upgrades at
# first boot, and apt-get then fails at once with exit 100 ("Could not get lock").
apt_get() {
  local try
  for try in $(seq 1 60); do
    if DEBIAN_FRONTEND=noninteractive as_root apt-get -o DPkg::Lock::Timeout=60 "$@"; then
      return 0
    fi
    as_root fuser /var/lib/dpkg/lock-frontend /var/lib/apt/lists/lock >/dev/null 2>&1 ||
      [ "$try" -lt 3 ] || return 1
    say "waiting for another package manager to finish (try $try of 60)"
    sleep 10
  done
  return 1
}

apt_install() {
  command -v apt-get >/dev/null || { say "please install: $*"; return 1; }
  say "installing system packages: $*"
  apt_get update -qq >/dev/null
  apt_get install -y -qq --no-install-recommends "$@" >/dev/null
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

# The stamp holds the install's checksum and the extras it included. The test extra is a
# superset of the app's needs, so app.sh after test.sh installs nothing (and test.sh after app.sh
# only adds the extra): neither undoes the other.
STAMP="$VENV/.modelmanager-installed"
# setup.py and the C source too: a changed decoder must be compiled again.
SUM="$(cat "$ROOT/pyproject.toml" "$ROOT/setup.py" "$ROOT/modelmanager/core/codecs/_bytegroup.c" "$0" | cksum)"
HAVE=""
[ -f "$STAMP" ] && HAVE="$(cat "$STAMP")"
if [ "${HAVE%%|*}" != "$SUM" ] || { [ -n "$EXTRAS" ] && [ "${HAVE#*|}" != "$EXTRAS" ]; }; then
  KEEP="$EXTRAS"
  # A re-install for a changed pyproject keeps the extras already there.
  [ -z "$KEEP" ] && [ "$HAVE" != "${HAVE#*|}" ] && KEEP="${HAVE#*|}"
  say "installing ModelManager${KEEP:+ with [$KEEP]} into .venv"
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check --upgrade pip
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check -e "$ROOT${KEEP:+[$KEEP]}"
  echo "$SUM|$KEEP" > "$STAMP"
fi
ensure_qt_libs "${QT_LIBS:-offscreen}"

# The tools the packaging tests check the installers with (issue 9): NSIS compiles the
# Windows script, shellcheck the build scripts, the freedesktop validators the Linux files;
# FUSE for the mount tests.
ensure_test_tools() {
  command -v apt-get >/dev/null || return 0
  local missing="" tool
  # fusermount3 (Debian's fuse3): the mount tests mount a real repository (issue 20).
  # An arm64 cross compiler and qemu-aarch64: the decoder's NEON loops are checked under
  # emulation (tests/core/test_bytegroup_native.py).
  for tool in makensis:nsis shellcheck:shellcheck desktop-file-validate:desktop-file-utils \
              appstreamcli:appstream fusermount3:fuse3 \
              aarch64-linux-gnu-gcc:gcc-aarch64-linux-gnu qemu-aarch64:qemu-user; do
    command -v "${tool%%:*}" >/dev/null || missing="$missing ${tool#*:}"
  done
  # The cross compiler alone builds nothing: its C library's headers come separately.
  [ -e /usr/aarch64-linux-gnu/include/stdint.h ] || missing="$missing libc6-dev-arm64-cross"
  # shellcheck disable=SC2086  # one word per package
  [ -z "$missing" ] || apt_install $missing
}
if [ "$EXTRAS" = test ]; then ensure_test_tools; fi
