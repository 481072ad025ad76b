#!/usr/bin/env bash
# Debian's Sweet Home 3D furniture libraries (820 licensed, coloured, categorised models, ~120 MB):
# the real-object data source `preprocess --source sweethome3d` reads them from
# /usr/share/sweethome3d/furniture. Installs them with apt-get (through sudo when not root).
set -euo pipefail
if [ -d /usr/share/sweethome3d/furniture ] && ls /usr/share/sweethome3d/furniture/*.sh3f >/dev/null 2>&1; then
  echo "[furniture] already installed: /usr/share/sweethome3d/furniture"
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "[furniture] no apt-get here: get sweethome3d-furniture's .sh3f files from your distribution or" \
       "sweethome3d.com and pass --library-dir DIR" >&2
  exit 1
fi
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends sweethome3d-furniture >/dev/null
echo "[furniture] installed: /usr/share/sweethome3d/furniture"
