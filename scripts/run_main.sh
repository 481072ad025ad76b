#!/usr/bin/env bash
# The main job: the viewer on the bundled demo model. With no display (a server, CI), a headless
# run under Xvfb that renders every bundled model (resources/<key>/model.json) into screenshots/ and
# exits: the demo's images in screenshots/, each further model's in screenshots/<key>/.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
if [ -n "${DISPLAY:-}${WAYLAND_DISPLAY:-}" ]; then
  exec "$PY" main.py "$@"
fi
echo "[run] no display: rendering the bundled models headless into screenshots/"
exec bash scripts/with_display.sh "$PY" main.py view --screenshots screenshots "$@"
