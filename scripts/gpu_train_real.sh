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
# Each model in GPU_TRAIN_MODELS (NAME=WIDTHxDEPTH[:KEY=VALUE...], e.g. "wide=256x6 paper=512x8
# code128=256x6:model.code_size=128") trains the shipped recipe (the default preset: class embedding,
# colour head stopped at the trunk, two Fourier frequencies, curriculum, cosine rates) at that trunk
# size, with each KEY=VALUE as a `--set` of its own (a study's arms: code size, code noise, dropout, ...),
# all of them at once on the one GPU, each stopping cleanly at train.max_minutes. GPU_TRAIN_EPOCHS sizes
# the schedule (cosine and curriculum span it) so that it ends near the budget: measure the epoch time
# first (GPU_TRAIN_SECONDS=60). GPU_TRAIN_DATA: the packed parts' folder (default .gpu_data).
# Writes under $OUT: NAME.pt (inference checkpoint, config inside), NAME_log.csv, NAME_train.log, summary.txt;
# at most 8 files come back from a device call, so with more than three models (or GPU_TRAIN_PACK=1) each
# model's three files go into one NAME.tar.gz instead (seven models at most).
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
PY=${GPU_TRAIN_PYTHON:-python3}
DEVICE=${GPU_TRAIN_DEVICE:-cuda}
OUT=${OUT:-$ROOT/out/gpu_train}
SECONDS_BUDGET=${GPU_TRAIN_SECONDS:-300}
EPOCHS=${GPU_TRAIN_EPOCHS:-100000}
MODELS=${GPU_TRAIN_MODELS:-"wide=256x6"}
DATA=${GPU_TRAIN_DATA:-.gpu_data}
read -ra SPECS <<< "$MODELS"
PACK=${GPU_TRAIN_PACK:-$([ "${#SPECS[@]}" -gt 3 ] && echo 1 || echo 0)}
# a fresh work folder each run: nothing of an earlier run is reused or deleted
WORK=$(mktemp -d "${TMPDIR:-/tmp}/gpu_train.XXXXXX")
EXPORT=${GPU_TRAIN_EXPORT:-1}  # 0: a timing run, only summary.txt comes back (epoch times per model)
CLASSES=${GPU_TRAIN_CLASSES:-'["appliance","bathroom_fixture","bed","cabinet","chair","electronics","lamp","plant","sofa","table","vehicle"]'}
BATCH=${GPU_TRAIN_BATCH:-"--set train.shapes_per_batch=32 --set train.samples_per_shape=8192"}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 PYTHONPATH=$ROOT${PYTHONPATH:+:$PYTHONPATH}
SUMMARY=$OUT/summary.txt
say() { echo "$*" | tee -a "$SUMMARY"; }
log_of() { if [ "$EXPORT" = 0 ] || [ "$PACK" = 1 ]; then echo "$WORK/$1_train.log"; else echo "$OUT/$1_train.log"; fi; }
# where a model's checkpoint and log copy go: $OUT itself, or a folder in $WORK that becomes NAME.tar.gz
dest_of() { if [ "$PACK" = 1 ]; then echo "$WORK/out_$1"; else echo "$OUT"; fi; }
: > "$SUMMARY"

say "== gpu_train_real on $(hostname) $(date -u +%FT%TZ), device $DEVICE, budget ${SECONDS_BUDGET} s, epochs $EPOCHS"
command -v nvidia-smi > /dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader \
    | sed 's/^/nvidia-smi: /' | tee -a "$SUMMARY"
"$PY" -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, torch.cuda.is_available())" \
    | tee -a "$SUMMARY"

# the carried parts into one data set (a part alone is one too)
if ! "$PY" scripts/gpu_data.py merge "$DATA"/part-* --out "$WORK/data" 2>&1 | tee -a "$SUMMARY"; then
    say "merge failed: no data"; exit 1
fi

minutes=$("$PY" -c "print(round($SECONDS_BUDGET / 60, 3))")
pids=()
for spec in "${SPECS[@]}"; do
    name=${spec%%=*} rest=${spec#*=}
    size=${rest%%:*} extra=()
    if [[ ! $name =~ ^[A-Za-z0-9_-]+$ ]] || [ "$name" = "$spec" ]; then  # the name becomes file names
        say "model spec '$spec': give NAME=WIDTHxDEPTH[:KEY=VALUE...], NAME of letters, digits, '_' and '-'"; exit 2
    fi
    if [ "$rest" != "$size" ]; then
        IFS=: read -ra sets <<< "${rest#*:}"
        for kv in "${sets[@]}"; do extra+=(--set "$kv"); done
    fi
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
        --conditioning embedding --no-progress "${model[@]}" $BATCH "${extra[@]}" \
        --set "train.classes=$CLASSES" --set train.max_minutes="$minutes" --set train.checkpoint_every=10 \
        --set train.threads=4 > "$(log_of "$name")" 2>&1 &
    pids+=($!)
    say "started $name (${model[*]} ${extra[*]}) as pid ${pids[-1]}"
done
for pid in "${pids[@]}"; do wait "$pid"; say "pid $pid ended: rc $?"; done

for spec in "${SPECS[@]}"; do
    name=${spec%%=*}
    run=$WORK/run_$name dest=$(dest_of "$name")
    mkdir -p "$dest"
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
            "$run/checkpoints/latest.pt" "$dest/$name.pt" >> "$(log_of "$name")" 2>&1
        cp "$run/log.csv" "$dest/${name}_log.csv"
        rows=$(($(wc -l < "$run/log.csv") - 1))
        last=$(tail -n 1 "$run/log.csv")
        say "$name: $rows epochs; last log row: $last; checkpoint $(du -h "$dest/$name.pt" | cut -f1)"
    else
        say "$name: no checkpoint; log tail:"; tail -n 5 "$(log_of "$name")" | tee -a "$SUMMARY"
    fi
    if [ "$PACK" = 1 ] && [ "$EXPORT" != 0 ]; then
        cp "$(log_of "$name")" "$dest/${name}_train.log"
        tar -czf "$OUT/$name.tar.gz" -C "$dest" . && say "$name: packed as $name.tar.gz"
    fi
done
say "== done at $(date -u +%FT%TZ)"
ls -l "$OUT" | tee -a "$SUMMARY"
