#!/usr/bin/env bash
# Rebuild the bundled real-object model as shipped in resources/real/ (real-v5, 2026-12-04; docs/results.md lists every version):
# Debian's sweethome3d-furniture libraries (installed by scripts/install_furniture.sh, reserved models
# always skipped), eleven classes at 200,000 SDF samples a shape on the open-mesh field (the default
# `--backend auto`: every surface dilated by a 128^3 voxel), the `default` preset's recipe on a 6 x 256
# trunk in two stages, then scripts/export_real_model.py (inference checkpoint, config, training log,
# ATTRIBUTION.md of the trained items, the model.json card).
#
# Stage 1 is the GPU's: 780 epochs of 32 shapes x 8,192 samples, 6 minutes on one H200 (the shipped
# run: scripts/gpu_data.py pack + scripts/gpu_train_real.sh through the device tool, see
# docs/benchmarks.md "GPU"); the same command runs here with DEVICE=cuda on any CUDA machine, or on a
# CPU in about ten hours. Stage 2 is the CPU's: 400 epochs warm-started at the curriculum's last
# stages, small batches (8 shapes x 2,048 samples) so that every code moves often (about 90 minutes on
# two threads). Armchairs are preprocessed but never trained on (the zero-shot class).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
DEVICE=${DEVICE:-auto}
CLASSES=(appliance armchair bathroom_fixture bed cabinet chair electronics lamp plant sofa table vehicle)
TRAINED='["appliance","bathroom_fixture","bed","cabinet","chair","electronics","lamp","plant","sofa","table","vehicle"]'
WIDE=(--set 'model.hidden_dims=[256,256,256,256,256,256]' --set 'model.latent_in=[3]')
bash scripts/install_furniture.sh
"$PY" main.py preprocess --source sweethome3d --out data/sweethome3d --samples 200000 --workers 2 \
  --classes "${CLASSES[@]}" --ground-truth-report 96 128
# Stage 1 (GPU): what scripts/gpu_train_real.sh runs on the packed set (25,000 samples a shape).
"$PY" main.py train --data data/sweethome3d --out runs/real_gpu --overwrite --conditioning embedding \
  --epochs 780 --device "$DEVICE" "${WIDE[@]}" --set "train.classes=$TRAINED" \
  --set train.shapes_per_batch=32 --set train.samples_per_shape=8192 --set train.max_samples_per_shape=25000 \
  --set train.checkpoint_every=10 --set train.threads=4
# Stage 2 (CPU): warm-started, the curriculum's last two stages on a fresh cosine from 0.3 of the start rates.
"$PY" main.py train --data data/sweethome3d --out runs/real_gpu_s2 --overwrite --conditioning embedding \
  --epochs 400 --device cpu "${WIDE[@]}" --set "train.classes=$TRAINED" \
  --set train.init_from=runs/real_gpu/checkpoints/latest.pt --set train.curriculum_first_stage=2 \
  --set train.lr_decoder=0.0003 --set train.lr_codes=0.0006 --set train.threads=2 \
  --set train.max_samples_per_shape=200000 --set train.checkpoint_every=20
# title and description: the card already in resources/real/model.json
"$PY" scripts/export_real_model.py --run runs/real_gpu_s2 --data data/sweethome3d --out resources/real
cp runs/real_gpu/config.json resources/real/config_stage1.json
cp runs/real_gpu/log.csv resources/real/training_log_stage1.csv
