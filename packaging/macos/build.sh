#!/usr/bin/env bash
# Build the macOS app and disk image: ModelManager.app (PyInstaller), then a .dmg (hdiutil).
#   packaging/macos/build.sh [OUT_DIR]     (default: dist/)
# Writes OUT_DIR/ModelManager.app and OUT_DIR/ModelManager-VERSION.dmg. macOS only. The app
# is not signed or notarised here: that needs the project's Developer ID (see
# docs/packaging.md); unsigned, users open it once with right-click > Open.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
OUT="$(mkdir -p "${1:-$ROOT/dist}" && cd "${1:-$ROOT/dist}" && pwd)"

[ "$(uname -s)" = Darwin ] || { echo "macos/build.sh runs on macOS only" >&2; exit 2; }
bash "$ROOT/packaging/bundle.sh" "$OUT"
app="$OUT/ModelManager.app"
[ -d "$app" ] || { echo "PyInstaller made no $app" >&2; exit 1; }
plutil -lint "$app/Contents/Info.plist"
version="$(plutil -extract CFBundleShortVersionString raw "$app/Contents/Info.plist")"

# The image holds the app and a link to /Applications, to drag it onto.
stage="$OUT/dmg-root"
rm -rf "$stage"
mkdir -p "$stage"
cp -R "$app" "$stage/"
ln -s /Applications "$stage/Applications"
dmg="$OUT/ModelManager-$version.dmg"
rm -f "$dmg"
hdiutil create -volname "ModelManager $version" -srcfolder "$stage" -fs HFS+ -format UDZO \
  -ov "$dmg"
rm -rf "$stage"
hdiutil verify "$dmg"
printf '\033[1m==> built %s\033[0m\n' "$dmg" >&2
