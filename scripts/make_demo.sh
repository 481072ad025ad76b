#!/usr/bin/env bash
# Rebuild the bundled demo model exactly as shipped in resources/demo/ (about 20 minutes on a
# 2-core CPU): the built-in data set, the project's own `train` command, an inference-only export.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
"$PY" main.py preprocess --source synthetic --out data/synthetic --workers 2
"$PY" main.py train --data data/synthetic --out runs/demo --overwrite --conditioning embedding --epochs 600 \
  --set train.shapes_per_batch=8 --set train.samples_per_shape=2048 --set train.lr_interval=100 \
  --set train.checkpoint_every=50 --set train.max_samples_per_shape=200000
"$PY" -c "from core.model.export import export_inference_checkpoint as e; e('runs/demo/checkpoints/latest.pt', 'resources/demo/demo.pt')"
cp runs/demo/config.json resources/demo/config.json
cp runs/demo/log.csv resources/demo/training_log.csv
