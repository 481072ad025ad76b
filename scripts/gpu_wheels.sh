#!/usr/bin/env bash
# Download the wheels that the GPU machine lacks into .whl/ (gitignored), for scripts/gpu_check.sh.
#
#   bash scripts/gpu_wheels.sh            # .whl/check: what the GPU check needs (about 15 MB)
#   bash scripts/gpu_wheels.sh --warp     # also warp-lang, split into parts under .whl/warp (see below)
#   bash scripts/gpu_wheels.sh --viewer   # also the viewer's packages into .whl/viewer (see below)
#
# The GPU machine (docs/benchmarks.md, "GPU") is x86-64 with Python 3.12 and no network. Its
# image already holds torch with CUDA, numpy, scipy, scikit-image, tqdm, tensorboard, pillow,
# imageio, matplotlib, pytest and pytest-timeout; it lacks trimesh (mesh IO, the tests' data set)
# and libigl (exact distances, winding numbers). Those go to .whl/check, at the versions of this
# checkout's .venv, built for the GPU machine's Python and platform, without their dependencies
# (the machine has them). A device call carries them with `carry: [".whl/check"]`.
#
# Two sets cannot travel in one call, whose working tree is limited to 64 MiB:
# --viewer  PySide6-Essentials (80 MB) and vtk (140 MB) with pyvista, pyvistaqt, shiboken6,
#           scooby, pooch, pytest-qt: downloaded for a machine without that limit; gpu_check.sh
#           does not use them (it runs no viewer test; pytest-qt without a Qt binding would stop
#           pytest, so it is not in the check set either).
# --warp    warp-lang (149 MB wheel) for the optional warp marching cubes in bench_meshing.py:
#           split into 48 MiB parts with a SHA256SUMS file. Carry one part per device call on a
#           machine kept warm (`carry: [".whl/warp/part-N"]` ...); earlier parts stay there as
#           ignored files, and gpu_check.sh joins and installs warp once every part is present.
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-.venv/bin/python}
[ -x "$PY" ] || PY=python3
GPU_PY=${GPU_PYTHON_VERSION:-3.12}
PLATFORMS=(manylinux_2_39_x86_64 manylinux_2_35_x86_64 manylinux_2_34_x86_64 manylinux_2_31_x86_64
           manylinux_2_28_x86_64 manylinux_2_27_x86_64 manylinux_2_24_x86_64 manylinux_2_17_x86_64
           manylinux2014_x86_64 manylinux1_x86_64)
PLATFORM_ARGS=()
for p in "${PLATFORMS[@]}"; do PLATFORM_ARGS+=(--platform "$p"); done

want_warp=0 want_viewer=0
for arg in "$@"; do
    case "$arg" in
        --warp) want_warp=1 ;;
        --viewer) want_viewer=1 ;;
        -h|--help) sed -n '2,25p' "$0"; exit 0 ;;
        *) echo "error: unknown option $arg; use --warp and/or --viewer" >&2; exit 2 ;;
    esac
done

# The version installed in this checkout's environment, so the GPU runs the code tested here.
version_of() {
    "$PY" -c "import importlib.metadata as m, sys; print(m.version(sys.argv[1]))" "$1" 2>/dev/null || true
}

pinned() {  # NAME [FALLBACK_VERSION] -> NAME==VERSION (or NAME when neither is known)
    local v
    v=$(version_of "$1")
    v=${v:-${2:-}}
    if [ -n "$v" ]; then echo "$1==$v"; else echo "$1"; fi
}

download() {  # DEST SPEC...
    local dest=$1
    shift
    mkdir -p "$dest"
    echo "== pip download into $dest (Python $GPU_PY, x86-64 manylinux): $*"
    "$PY" -m pip download --quiet --no-deps --only-binary=:all: --python-version "$GPU_PY" --implementation cp \
        "${PLATFORM_ARGS[@]}" -d "$dest" "$@" 2> >(grep -v "is ignored: it is neither" >&2)
}

download .whl/check "$(pinned trimesh 5.2.0)" "$(pinned libigl 2.6.3)"

if [ "$want_viewer" = 1 ]; then
    download .whl/viewer "$(pinned PySide6-Essentials)" "$(pinned shiboken6)" "$(pinned pyvista)" \
        "$(pinned pyvistaqt)" "$(pinned vtk)" "$(pinned scooby)" "$(pinned pooch)" "$(pinned pytest-qt)"
fi

if [ "$want_warp" = 1 ]; then
    tmp=.whl/warp-download
    download "$tmp" "warp-lang${WARP_VERSION:+==$WARP_VERSION}"
    wheel=$(ls "$tmp"/warp_lang-*.whl | head -n 1)
    rm -rf .whl/warp
    mkdir -p .whl/warp
    name=$(basename "$wheel")
    split --bytes=48M --numeric-suffixes=1 --suffix-length=1 "$wheel" ".whl/warp/part-"
    for part in .whl/warp/part-*; do  # each part in its own folder, so one call can carry one part
        mkdir "$part.d" && mv "$part" "$part.d/$name.$(basename "$part")" && mv "$part.d" "$part"
    done
    (cd "$(dirname "$wheel")" && sha256sum "$name") > .whl/warp/SHA256SUMS
    rm -rf "$tmp"
    echo "warp-lang: $(ls -d .whl/warp/part-* | wc -l) parts of at most 48 MiB in .whl/warp" \
         "(carry .whl/warp/SHA256SUMS with the last)"
fi

echo "== wheels for the GPU machine"
du -sh .whl/* 2>/dev/null
ls -l .whl/check
check_mib=$(du -sm .whl/check | cut -f1)
if [ "$check_mib" -gt 48 ]; then
    echo "warning: .whl/check is ${check_mib} MiB; with the working tree it may exceed a device call's 64 MiB" >&2
fi
