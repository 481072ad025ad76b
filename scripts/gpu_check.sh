#!/usr/bin/env bash
# The CUDA check of issue 13 in one call on a GPU machine, about 8 minutes, everything under $OUT.
#
# Prepare here (network):   bash scripts/gpu_wheels.sh          # trimesh + libigl into .whl/check
# On the device tool:       run(command="bash scripts/gpu_check.sh", carry=[".whl/check"], timeout_s=600)
# Dry run on a CPU machine: GPU_CHECK_DEVICE=cpu GPU_CHECK_PYTHON=.venv/bin/python OUT=/tmp/gpu_check \
#                               bash scripts/gpu_check.sh     # small sizes, same stages, same files
#
# Stages, each under its own time limit, each logged whatever the others do:
#   1. install the carried wheels offline (pip --no-index --target /tmp/site), warp-lang too when
#      all its parts were carried (scripts/gpu_wheels.sh --warp);
#   2. the device line: GPU, memory, driver, torch, CUDA (summary.txt);
#   3. tests: tests/test_gpu.py (CUDA against the CPU), tests/test_marching_cubes.py and the
#      2-process gloo training test, which must pass with CUDA present (tests.log);
#   4. benchmarks with --device cuda: meshing (torch vs scikit-image vs warp marching cubes, the
#      256^3 / 512^3 coloured mesh of the default and paper presets), TTO, training throughput
#      with the TF32 and bf16 peaks (bench_*.txt);
#   5. the paper preset trained on the built-in data set for GPU_CHECK_TRAIN_SECONDS (Ctrl-C at
#      the limit saves the last finished epoch), exported inference-only to $OUT/paper_gpu.pt with
#      its log (train_paper.log), for evaluation back on the CPU;
#   6. the same benchmarks on this machine's CPU at smaller sizes, appended to each bench_*.txt, so
#      every CUDA figure has a CPU figure from the same run beside it.
# GPU_CHECK_SKIP="tests train ..." skips stages by name (e.g. for a rerun of the benchmarks only);
# GPU_CHECK_T_TESTS, _T_MESH, _T_TTO, _T_TRAINB cap those stages' seconds on CUDA (a short lease);
# GPU_CHECK_CPU_BASELINES=0 skips stage 6.
# The whole run keeps within GPU_CHECK_BUDGET_S (480 s on CUDA): each stage's limit is cut to what
# is left, and a stage with under 20 s left is skipped and named in the summary.
# At most 8 files come back from a device call: this writes 7.
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

DEVICE=${GPU_CHECK_DEVICE:-cuda}
PY=${GPU_CHECK_PYTHON:-python3}
OUT=${OUT:-$ROOT/out/gpu_check}
mkdir -p "$OUT"
SUMMARY=$OUT/summary.txt
: > "$SUMMARY"
START=$(date +%s)
export PYTHONUNBUFFERED=1 PYTHONPATH=$ROOT${PYTHONPATH:+:$PYTHONPATH}
export MPLBACKEND=Agg

say() { echo "$*" | tee -a "$SUMMARY"; }
elapsed() { echo $(( $(date +%s) - START )); }

if [ "$DEVICE" = cuda ]; then  # sizes for one H100 within about 8 minutes
    BUDGET=${GPU_CHECK_BUDGET_S:-480}
    T_TESTS=${GPU_CHECK_T_TESTS:-150} T_MESH=${GPU_CHECK_T_MESH:-120} T_TTO=${GPU_CHECK_T_TTO:-60}
    T_TRAINB=${GPU_CHECK_T_TRAINB:-75} T_PREP=60 T_CPU=60
    TRAIN_SECONDS=${GPU_CHECK_TRAIN_SECONDS:-90}
    MESH_ARGS=(--resolutions 64 128 256 --dense-max 256 --repeats 5 --train-steps 300
               --coloured-presets default paper --coloured-resolutions 256 512 --coloured-repeats 5 --coloured-tf32)
    TTO_ARGS=(--presets default,paper --iterations 100)
    TRAINB_ARGS=(--gpu-sizes)
    PREP_ARGS=(--workers "$(nproc)" --samples 250000)
    TRAIN_ARGS=(--preset paper --conditioning embedding
                --set train.shapes_per_batch=16 --set train.samples_per_shape=16384
                --set train.max_samples_per_shape=200000 --set train.lr_interval=100 --set train.checkpoint_every=10)
    # the CPU baselines of step 6
    CPU_MESH_ARGS=(--resolutions 128 --dense-max 64 --repeats 1 --train-steps 150
                   --coloured-presets default --coloured-resolutions 256 --coloured-repeats 2)
    CPU_TTO_ARGS=(--presets default,paper --iterations 10 --losses baseline,all)
    CPU_TRAINB_ARGS=(--quick)
else  # dry run on a CPU: the same stages and files at smoke sizes
    BUDGET=${GPU_CHECK_BUDGET_S:-2400}
    T_TESTS=900 T_MESH=300 T_TTO=200 T_TRAINB=200 T_PREP=300 T_CPU=200
    CPU_MESH_ARGS=(--resolutions 32 --dense-max 32 --repeats 1 --train-steps 20
                   --coloured-presets default --coloured-resolutions 32 --coloured-repeats 1)
    CPU_TTO_ARGS=(--presets default --iterations 5 --losses baseline)
    CPU_TRAINB_ARGS=(--quick --presets tiny)
    TRAIN_SECONDS=${GPU_CHECK_TRAIN_SECONDS:-30}
    MESH_ARGS=(--resolutions 32 64 --dense-max 64 --repeats 1 --train-steps 30
               --coloured-presets default --coloured-resolutions 64 --coloured-repeats 2)
    TTO_ARGS=(--presets default --iterations 10 --losses baseline,surface)
    TRAINB_ARGS=(--quick --presets tiny,default)
    PREP_ARGS=(--workers 2 --shapes-per-class 2 --samples 20000 --surface-samples 5000)
    TRAIN_ARGS=(--preset default --conditioning embedding
                --set train.shapes_per_batch=4 --set train.samples_per_shape=1024 --set train.checkpoint_every=1)
fi
# Extra `train` arguments (e.g. GPU_CHECK_TRAIN_ARGS="--set train.lr_decoder=5e-4") go last and win.
read -r -a EXTRA_TRAIN_ARGS <<< "${GPU_CHECK_TRAIN_ARGS:-}"

say "== gpu_check on $(hostname) $(date -u +%FT%TZ), device $DEVICE," \
    "python $($PY -c 'import sys; print(sys.version.split()[0])')"

# -- 1. wheels ---------------------------------------------------------------------------------
install() {
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site "$@"
}
WHEEL_PY=${GPU_PYTHON_VERSION:-3.12}  # the version scripts/gpu_wheels.sh downloads for
if ! "$PY" -c "import sys; sys.exit(f'{sys.version_info[0]}.{sys.version_info[1]}' != '$WHEEL_PY')"; then
    say "the carried wheels are for Python $WHEEL_PY (the GPU machine's); this Python differs: none installed"
elif ls .whl/check/*.whl > /dev/null 2>&1; then
    if install .whl/check/*.whl >> "$SUMMARY" 2>&1; then
        export PYTHONPATH=$PYTHONPATH:/tmp/site  # only packages the image lacks are there (--no-deps)
        say "installed: $(cd .whl/check && ls *.whl | tr '\n' ' ')"
    else
        say "warning: installing .whl/check failed (see above); going on with what the machine has"
    fi
else
    say "no .whl/check wheels carried (scripts/gpu_wheels.sh makes them); using what the machine has"
fi
if [ -f .whl/warp/SHA256SUMS ] && [ "$DEVICE" = cuda ]; then
    name=$(awk '{print $2}' .whl/warp/SHA256SUMS)
    mapfile -t parts < <(ls .whl/warp/part-*/"$name".part-* 2>/dev/null | sort -V)
    if cat "${parts[@]}" > "/tmp/$name" 2>/dev/null && (cd /tmp && sha256sum --status -c "$ROOT/.whl/warp/SHA256SUMS") \
            && install "/tmp/$name" >> "$SUMMARY" 2>&1; then
        say "installed: $name (joined from ${#parts[@]} parts)"
    else
        say "warp-lang: ${#parts[@]} part(s) carried but the joined wheel does not match SHA256SUMS; not installed"
    fi
    rm -f "/tmp/$name"
fi
"$PY" - << 'EOF' 2>&1 | tee -a "$SUMMARY"
import importlib.util
for name in ("trimesh", "igl", "skimage", "scipy", "pytest", "warp"):
    print(f"  {name}: {'yes' if importlib.util.find_spec(name) else 'MISSING'}")
EOF

# -- 2. device line ----------------------------------------------------------------------------
if command -v nvidia-smi > /dev/null; then
    nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv,noheader 2>&1 \
        | sed 's/^/nvidia-smi: /' | tee -a "$SUMMARY"
fi
"$PY" - "$DEVICE" << 'EOF' 2>&1 | tee -a "$SUMMARY"
import sys

import torch

from benchmarks.device_info import device_line
from core.utils.devices import resolve_device

print(device_line(resolve_device(sys.argv[1])))
print(f"torch.cuda.is_available() {torch.cuda.is_available()}, torch CUDA {torch.version.cuda}, "
      f"cuDNN {torch.backends.cudnn.version() if torch.cuda.is_available() else None}")
EOF

# -- stages ------------------------------------------------------------------------------------
FAILED=() SKIPPED=()
left() { echo $(( BUDGET - $(elapsed) )); }
stage() {  # NAME LIMIT_S LOGFILE COMMAND...   (OK_RC=N: one more exit status that counts as success)
    local name=$1 limit=$2 log=$3
    shift 3
    local tic rc
    if [[ " ${GPU_CHECK_SKIP:-} " == *" $name "* ]]; then
        SKIPPED+=("$name")
        say "$(printf '%-16s skipped: GPU_CHECK_SKIP names it' "$name")"
        return 0
    fi
    if [ "$(left)" -lt 20 ]; then
        SKIPPED+=("$name")
        say "$(printf '%-16s skipped: the %s s budget is spent' "$name" "$BUDGET")"
        return 0
    fi
    [ "$limit" -gt "$(left)" ] && limit=$(left)
    tic=$(date +%s)
    echo "== $name: $*" | tee "$log"
    timeout -k 15 "$limit" "$@" >> "$log" 2>&1
    rc=$?
    local took=$(( $(date +%s) - tic ))
    if [ "$rc" = 124 ] && [ "$took" -ge "$limit" ]; then echo "(stopped at its ${limit} s limit)" >> "$log"; fi
    [ "$rc" = 0 ] || [ "$rc" = "${OK_RC:-0}" ] || FAILED+=("$name")
    say "$(printf '%-16s rc %-3s %4s s   (at %s s)  %s' "$name" "$rc" "$took" "$(elapsed)" "$(basename "$log")")"
    tr '\r' '\n' < "$log" | grep -v '^[[:space:]]*$' | tail -n 3 | cut -c1-200 | sed 's/^/    /' >> "$SUMMARY"
}

# -- 3. tests ----------------------------------------------------------------------------------
stage tests "$T_TESTS" "$OUT/tests.log" "$PY" -m pytest -q -rA -p no:cacheprovider -m "not slow" \
    tests/test_gpu.py tests/test_marching_cubes.py \
    "tests/test_training.py::test_distributed_two_cpu_processes_match_single_process"

# -- 4. benchmarks -----------------------------------------------------------------------------
stage bench_meshing "$T_MESH" "$OUT/bench_meshing.txt" \
    "$PY" -m benchmarks.bench_meshing --device "$DEVICE" "${MESH_ARGS[@]}"
stage bench_tto "$T_TTO" "$OUT/bench_tto.txt" "$PY" -m benchmarks.bench_tto --device "$DEVICE" "${TTO_ARGS[@]}"
stage bench_training "$T_TRAINB" "$OUT/bench_training.txt" \
    "$PY" -m benchmarks.bench_training --device "$DEVICE" "${TRAINB_ARGS[@]}"

# -- 5. the paper preset trained on the built-in set ---------------------------------------------
if [ "$TRAIN_SECONDS" -gt 0 ] && [[ " ${GPU_CHECK_SKIP:-} " != *" train "* ]]; then
    WORK=${GPU_CHECK_WORK:-/tmp/gpu_check_work}
    rm -rf "$WORK/run"
    LOG=$OUT/train_paper.log
    stage preprocess "$T_PREP" "$LOG.prep" \
        "$PY" main.py preprocess --source synthetic --out "$WORK/data" "${PREP_ARGS[@]}"
    # Ctrl-C (SIGINT) at the limit: the trainer saves the last finished epoch and exits; the inner
    # timeout then reports 124, the expected end of this stage.
    seconds=$(( $(left) - 45 ))  # room for the last epoch, the save and the export
    [ "$seconds" -gt "$TRAIN_SECONDS" ] && seconds=$TRAIN_SECONDS
    [ "$seconds" -lt 10 ] && seconds=10
    OK_RC=124 stage train "$((seconds + 40))" "$LOG.train" timeout -s INT "$seconds" \
        "$PY" main.py train --data "$WORK/data" --out "$WORK/run" --device "$DEVICE" --epochs 100000 --no-progress \
        "${TRAIN_ARGS[@]}" "${EXTRA_TRAIN_ARGS[@]}"
    if [ -f "$WORK/run/checkpoints/latest.pt" ]; then
        "$PY" -c "import sys; from core.model.export import export_inference_checkpoint as e; e(*sys.argv[1:])" \
            "$WORK/run/checkpoints/latest.pt" "$OUT/paper_gpu.pt" >> "$LOG.train" 2>&1 \
            && say "exported $OUT/paper_gpu.pt ($(du -h "$OUT/paper_gpu.pt" | cut -f1))"
        { echo "== config.json"; cat "$WORK/run/config.json"; echo; echo "== log.csv"; cat "$WORK/run/log.csv"; } \
            >> "$LOG.train" 2>&1
    else
        FAILED+=(train)
        say "train: no checkpoint written"
    fi
    cat "$LOG.prep" "$LOG.train" > "$LOG" 2>/dev/null
    rm -f "$LOG.prep" "$LOG.train"
fi

# -- 6. CPU baselines on the same machine, appended to each CUDA report -------------------------
if [ "${GPU_CHECK_CPU_BASELINES:-$([ "$DEVICE" = cpu ] && echo 0 || echo 1)}" = 1 ]; then
    for bench in meshing tto training; do
        case $bench in
            meshing) args=("${CPU_MESH_ARGS[@]}") ;;
            tto) args=("${CPU_TTO_ARGS[@]}") ;;
            training) args=("${CPU_TRAINB_ARGS[@]}") ;;
        esac
        stage "bench_${bench}_cpu" "$T_CPU" "$OUT/cpu_$bench.tmp" \
            "$PY" "benchmarks/bench_$bench.py" --device cpu "${args[@]}"
        [ -f "$OUT/cpu_$bench.tmp" ] || continue
        { echo; echo "== the same machine's CPU (same run)"; cat "$OUT/cpu_$bench.tmp"; } >> "$OUT/bench_$bench.txt"
        rm -f "$OUT/cpu_$bench.tmp"
    done
fi

say "== done in $(elapsed) s; failed stages: ${FAILED[*]:-none}; skipped: ${SKIPPED[*]:-none}"
ls -l "$OUT" | tee -a "$SUMMARY"
[ "${#FAILED[@]}" = 0 ]
