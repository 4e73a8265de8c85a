#!/usr/bin/env bash
# The paper profile on a GPU: every chapter's MNIST parts at the paper's full settings (CIFAR-10 switched off), then
# the training step of every paper-profile network timed with the paper's objective and batch size, and each
# CIFAR-10 model's epoch from it. Writes book/gpu_check.json (date, GPU, seconds per pass of each architecture,
# epoch times, the chapters' wall times), which the book's Environment page shows as measured and which
# tradeoffs.book.cost then uses instead of its estimate; the executed chapters and their claims go to
# build/gpu_check/ (copy build/gpu_check/results/*.json to book/_results/ to put them on the scorecard).
#
#   scripts/gpu_check.sh              on a CUDA machine (hours: the MNIST parts of the paper profile)
#   scripts/gpu_check.sh --timing     the timings only (minutes)
#   scripts/gpu_check.sh --dry        a check of this script on any machine: the dry run (TRADEOFFS_DRY_RUN=1) on the
#                                     CPU, output to build/gpu_check.dry.json (never shown as a measurement)
# BATCHES=N times N steps per model and extrapolates an epoch (default 0: whole epochs; --dry: 1).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
export PYTHONPATH="$PWD/lib${PYTHONPATH:+:$PYTHONPATH}"
mode=${1:-full}
case "$mode" in
  full|--timing)
    "$PY" -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else "no CUDA GPU: use --dry for a check")'
    device=${DEVICE:-cuda}; out=book/gpu_check.json; batches=${BATCHES:-0} ;;
  --dry)
    export TRADEOFFS_DRY_RUN=1
    device=cpu; out=build/gpu_check.dry.json; batches=${BATCHES:-1} ;;
  *) echo "usage: scripts/gpu_check.sh [--timing|--dry]" >&2; exit 2 ;;
esac
chapters=(--chapters build/gpu_check)
[ "$mode" = --timing ] && chapters=()
nvidia-smi 2>/dev/null | head -15 || true
"$PY" -m tradeoffs.book.gpu_check --out "$out" --device "$device" --batches "$batches" "${chapters[@]}"
