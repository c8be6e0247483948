#!/usr/bin/env bash
# Install a built .deb on this Debian/Ubuntu machine, run what it installed, then remove it.
#   packaging/linux/check-install.sh dist/modelmanager_VERSION_ARCH.deb
# .ci/run calls it after the tests (which build the .deb). Needs root (or sudo) and apt.
set -euo pipefail
deb="$(cd "$(dirname "$1")" && pwd)/$(basename "$1")"
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }
say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

say "installing $deb (apt resolves its dependencies)"
DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends "$deb" \
  >/dev/null
trap 'DEBIAN_FRONTEND=noninteractive as_root apt-get remove -y -qq modelmanager >/dev/null' EXIT

work="$(mktemp -d)"
[ "$(command -v modelmanager)" = /usr/bin/modelmanager ]
modelmanager --version
modelmanager --repo "$work/repo" init
QT_QPA_PLATFORM=offscreen modelmanager --repo "$work/repo" gui --screenshot "$work/shot.png" \
  2> "$work/stderr"
if grep -q Traceback "$work/stderr"; then cat "$work/stderr" >&2; exit 1; fi
[ -s "$work/shot.png" ]
[ -f /usr/share/applications/org.modelmanager.ModelManager.desktop ]
installed_kb="$(dpkg-query -W -f='${Installed-Size}' modelmanager)"
say "installed and ran: $((installed_kb / 1024)) MiB installed"
rm -rf "$work"

trap - EXIT
DEBIAN_FRONTEND=noninteractive as_root apt-get remove -y -qq modelmanager >/dev/null
[ ! -e /opt/modelmanager/modelmanager ] && [ ! -e /usr/bin/modelmanager ]
say "removed cleanly"
