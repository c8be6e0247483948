#!/usr/bin/env bash
# Build the Linux one-folder bundle (PyInstaller) and a .deb from it.
#   packaging/linux/build.sh [OUT_DIR]      (default: dist/)
# Writes OUT_DIR/modelmanager/ (the bundle) and OUT_DIR/modelmanager_VERSION_ARCH.deb.
# Needs: the project's .venv (scripts/setup.sh) or PYTHON=..., and dpkg-deb (Debian/Ubuntu).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
OUT="$(mkdir -p "${1:-$ROOT/dist}" && cd "${1:-$ROOT/dist}" && pwd)"
PY="${PYTHON:-$ROOT/.venv/bin/python}"
ASSETS="$ROOT/packaging/build"
APP_ID="org.modelmanager.ModelManager"

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

bash "$ROOT/packaging/bundle.sh" "$OUT"

say "Debian package"
version="$("$PY" -c 'from modelmanager import __version__; print(__version__)')"
arch="$(dpkg --print-architecture)"
stage="$OUT/deb-root"
rm -rf "$stage"
mkdir -p "$stage/DEBIAN" "$stage/opt" "$stage/usr/bin" "$stage/usr/share/applications" \
  "$stage/usr/share/metainfo" "$stage/usr/share/mime/packages" \
  "$stage/usr/share/icons/hicolor/scalable/apps"
cp -a "$OUT/modelmanager" "$stage/opt/modelmanager"
ln -s ../../opt/modelmanager/modelmanager "$stage/usr/bin/modelmanager"
install -m 644 "$ASSETS/linux/$APP_ID.desktop" "$stage/usr/share/applications/"
install -m 644 "$ASSETS/linux/$APP_ID.metainfo.xml" "$stage/usr/share/metainfo/"
install -m 644 "$ASSETS/linux/$APP_ID.xml" "$stage/usr/share/mime/packages/"
install -m 644 "$ROOT/resources/icons/modelmanager.svg" \
  "$stage/usr/share/icons/hicolor/scalable/apps/$APP_ID.svg"
cp -r "$ASSETS/hicolor/." "$stage/usr/share/icons/hicolor/"
# The desktop's MIME, menu and icon caches are refreshed by the dpkg triggers of
# shared-mime-info, desktop-file-utils and the icon theme: no maintainer scripts needed.
installed_kb="$(du -sk --exclude=DEBIAN "$stage" | cut -f1)"
cat > "$stage/DEBIAN/control" <<EOF
Package: modelmanager
Version: $version
Architecture: $arch
Maintainer: The ModelManager developers <maintainers@modelmanager.org>
Installed-Size: $installed_kb
Depends: libc6 (>= 2.34), libegl1, libgl1, libfontconfig1, libfreetype6, libglib2.0-0, libdbus-1-3, libx11-6, libx11-xcb1, libxkbcommon0, libxkbcommon-x11-0, libxcb-cursor0, libxcb-icccm4, libxcb-image0, libxcb-keysyms1, libxcb-render-util0, libxcb-shape0, libxcb-xkb1, libxcb-randr0
Section: science
Priority: optional
Homepage: https://github.com/modelmanager/modelmanager
Description: versioned, deduplicated storage for model checkpoints
 ModelManager keeps machine-learning checkpoints (safetensors, PyTorch, GGUF,
 NumPy, Keras HDF5, ONNX, Hugging Face folders) in a versioned,
 content-addressed repository: every file comes back byte for byte, identical
 weights are stored once, and chunks can be spread over several disks with
 copies or erasure coding. Desktop application and command line.
EOF
find "$stage" -type d -exec chmod 755 {} +
deb="$OUT/modelmanager_${version}_${arch}.deb"
dpkg-deb --root-owner-group -Zzstd --build "$stage" "$deb" >/dev/null
rm -rf "$stage"
say "built $deb ($(du -h "$deb" | cut -f1), $((installed_kb / 1024)) MiB installed)"
