#!/usr/bin/env bash
# Train real-object models on a lent GPU in one device call, from the packed training set that
# scripts/gpu_data.py makes (a device call carries 64 MiB), and bring the checkpoints back.
#
# Prepare here:   python scripts/gpu_data.py pack --data data/sweethome3d_thin --samples 30000 --parts 1 \
#                     --classes appliance bathroom_fixture bed cabinet chair electronics lamp plant sofa table vehicle \
#                     --out .gpu_data
# On the device:  run(command="bash scripts/gpu_train_real.sh", carry=[".gpu_data"], timeout_s=600)
# Dry run here:   GPU_TRAIN_DEVICE=cpu GPU_TRAIN_SECONDS=20 GPU_TRAIN_MODELS=tiny OUT=/tmp/gpu_train \
#                     bash scripts/gpu_train_real.sh
#
# Each model in GPU_TRAIN_MODELS (name=hidden-widths, e.g. "wide=256x6 paper=512x8") trains the
# shipped recipe (the default preset: class embedding, colour head stopped at the trunk, two Fourier
# frequencies, curriculum, cosine rates) at that trunk size, all of them at once on the one GPU, each
# stopping cleanly at train.max_minutes. GPU_TRAIN_EPOCHS sizes the schedule (cosine and curriculum
# span it) so that it ends near the budget: measure the epoch time first (GPU_TRAIN_SECONDS=60).
# Writes under $OUT: NAME.pt (inference checkpoint, config inside), NAME_log.csv, NAME_train.log, summary.txt
# (at most 8 files come back from a device call: three models at most).
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
PY=${GPU_TRAIN_PYTHON:-python3}
DEVICE=${GPU_TRAIN_DEVICE:-cuda}
OUT=${OUT:-$ROOT/out/gpu_train}
SECONDS_BUDGET=${GPU_TRAIN_SECONDS:-300}
EPOCHS=${GPU_TRAIN_EPOCHS:-100000}
MODELS=${GPU_TRAIN_MODELS:-"wide=256x6"}
# a fresh work folder each run: nothing of an earlier run is reused or deleted
WORK=$(mktemp -d "${TMPDIR:-/tmp}/gpu_train.XXXXXX")
EXPORT=${GPU_TRAIN_EXPORT:-1}  # 0: a timing run, only summary.txt comes back (epoch times per model)
CLASSES=${GPU_TRAIN_CLASSES:-'["appliance","bathroom_fixture","bed","cabinet","chair","electronics","lamp","plant","sofa","table","vehicle"]'}
BATCH=${GPU_TRAIN_BATCH:-"--set train.shapes_per_batch=32 --set train.samples_per_shape=8192"}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 PYTHONPATH=$ROOT${PYTHONPATH:+:$PYTHONPATH}
SUMMARY=$OUT/summary.txt
say() { echo "$*" | tee -a "$SUMMARY"; }
log_of() { if [ "$EXPORT" = 0 ]; then echo "$WORK/$1_train.log"; else echo "$OUT/$1_train.log"; fi; }
: > "$SUMMARY"

say "== gpu_train_real on $(hostname) $(date -u +%FT%TZ), device $DEVICE, budget ${SECONDS_BUDGET} s, epochs $EPOCHS"
command -v nvidia-smi > /dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader \
    | sed 's/^/nvidia-smi: /' | tee -a "$SUMMARY"
"$PY" -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, torch.cuda.is_available())" \
    | tee -a "$SUMMARY"

# the carried parts into one data set (a part alone is one too)
if ! "$PY" scripts/gpu_data.py merge .gpu_data/part-* --out "$WORK/data" 2>&1 | tee -a "$SUMMARY"; then
    say "merge failed: no data"; exit 1
fi

minutes=$("$PY" -c "print(round($SECONDS_BUDGET / 60, 3))")
pids=()
for spec in $MODELS; do
    name=${spec%%=*} size=${spec#*=}
    if [ "$size" = tiny ]; then
        model=(--preset tiny)
    else
        width=${size%x*} depth=${size#*x}
        dims=$("$PY" -c "print([$width] * $depth)" | tr -d ' ')
        latent=$((depth / 2))
        model=(--set "model.hidden_dims=$dims" --set "model.latent_in=[$latent]")
    fi
    # shellcheck disable=SC2086
    "$PY" main.py train --data "$WORK/data" --out "$WORK/run_$name" --device "$DEVICE" --epochs "$EPOCHS" \
        --conditioning embedding --no-progress "${model[@]}" $BATCH \
        --set "train.classes=$CLASSES" --set train.max_minutes="$minutes" --set train.checkpoint_every=10 \
        --set train.threads=4 > "$(log_of "$name")" 2>&1 &
    pids+=($!)
    say "started $name (${model[*]}) as pid ${pids[-1]}"
done
for pid in "${pids[@]}"; do wait "$pid"; say "pid $pid ended: rc $?"; done

for spec in $MODELS; do
    name=${spec%%=*}
    run=$WORK/run_$name
    if [ -f "$run/log.csv" ]; then  # seconds per epoch after the first (which warms up)
        "$PY" - "$run/log.csv" "$name" << 'EOF' | tee -a "$SUMMARY"
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
if len(rows) > 2:
    t = [float(r["seconds"]) for r in rows]
    per = (t[-1] - t[0]) / (len(t) - 1)
    print(f"{sys.argv[2]}: {len(rows)} epochs in {t[-1]:.1f} s, {per:.3f} s an epoch after the first, "
          f"{float(rows[-1]['samples_per_s']):.0f} samples/s, last loss {float(rows[-1]['loss']):.5f}")
EOF
    fi
    if [ "$EXPORT" = 0 ]; then
        tail -n 3 "$(log_of "$name")" >> "$SUMMARY"
    elif [ -f "$run/checkpoints/latest.pt" ]; then
        "$PY" -c "import sys; from core.model.export import export_inference_checkpoint as e; e(*sys.argv[1:])" \
            "$run/checkpoints/latest.pt" "$OUT/$name.pt" >> "$(log_of "$name")" 2>&1
        cp "$run/log.csv" "$OUT/${name}_log.csv"
        rows=$(($(wc -l < "$run/log.csv") - 1))
        last=$(tail -n 1 "$run/log.csv")
        say "$name: $rows epochs; last log row: $last; checkpoint $(du -h "$OUT/$name.pt" | cut -f1)"
    else
        say "$name: no checkpoint; log tail:"; tail -n 5 "$(log_of "$name")" | tee -a "$SUMMARY"
    fi
done
say "== done at $(date -u +%FT%TZ)"
ls -l "$OUT" | tee -a "$SUMMARY"
