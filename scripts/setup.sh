#!/usr/bin/env bash
# One-time set-up on a fresh Debian/Ubuntu machine: the system libraries Qt and VTK need
# (plus Xvfb for machines without a display), a virtual environment in .venv, and the
# project with its extras. Safe to run again: it only installs what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=${VENV:-.venv}
PYTHON=${PYTHON:-python3}
EXTRAS=${EXTRAS:-dev,text}

# Qt's xcb platform plugin, Mesa's software OpenGL (VTK and the headless EGL scans of
# mesh-to-sdf), and Xvfb for a virtual screen.
APT_PACKAGES=(xvfb xauth libgl1 libgl1-mesa-dri libegl1 libosmesa6 libxcb-cursor0 libxkbcommon-x11-0
  libxcb-icccm4 libxcb-image0 libxcb-keysyms1 libxcb-randr0 libxcb-render-util0 libxcb-shape0
  libxcb-xinerama0 libxcb-xkb1 libxrender1 libfontconfig1 libdbus-1-3 libglib2.0-0)

missing=()
if command -v dpkg-query >/dev/null 2>&1; then
  for pkg in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
fi
if [ ${#missing[@]} -gt 0 ]; then
  echo "[setup] installing system packages: ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if [ ! -x "$VENV/bin/python" ]; then
  echo "[setup] creating virtual environment $VENV"
  "$PYTHON" -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install -q --upgrade pip
# Pin torch first: 2.13.0 is the CPU wheel these machines keep on disk; an open range
# would pull a multi-GB CUDA build.
"$VENV/bin/python" -m pip install -q "torch==2.13.0"
"$VENV/bin/python" -m pip install -q -e ".[${EXTRAS}]"
echo "[setup] done: $VENV"
