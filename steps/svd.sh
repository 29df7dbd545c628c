#!/usr/bin/env bash
# Stage svd: decompose every target weight matrix of a pre-trained checkpoint (our final.pt or
# a transformers model directory) into <out-dir>/factors.pt, spectra.json and spectra.png,
# each written under a temporary name and renamed when complete.
set -euo pipefail
usage="Usage: $0 [--targets 'q_proj k_proj'] [--top-k K] [--bottom B] [--method full|gram|lowrank]
       [--oversample N] [--niter N] [--seed N] [--dtype float32|float64] [--strip-prefix P] [--threads N]
       <checkpoint> <out-dir>
 <checkpoint>: exp/pretrain/<model>/final.pt, or a transformers model directory (config.json + weights)
 An option not given takes spectral-svd's default (spectral-svd --help).
 e.g.: $0 --top-k 64 exp/pretrain/builtin/final.pt exp/svd/builtin/k64_b0"
echo "$0 $*"
targets=""; top_k=""; bottom=""; method=""; oversample=""; niter=""; seed=""; dtype=""; strip_prefix=""; threads=""
nargs=2
. "$(dirname "$0")/stage.sh"
ckpt=$1; dir=$2
if [ -d "$ckpt" ]; then
  [ -f "$ckpt/config.json" ] || { echo "$0: $ckpt/config.json missing (not a transformers model directory)" >&2; exit 1; }
elif [ ! -s "$ckpt" ]; then
  echo "$0: checkpoint $ckpt missing or empty (run the pretrain stage first, or give a model directory)" >&2; exit 1
fi
# Idle OpenMP threads sleep rather than spin: where other jobs share the cores, spinning makes
# the multi-threaded LAPACK SVD many times slower.
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}
case "$method" in ""|full|gram|lowrank) ;; *) echo "$0: --method must be full, gram or lowrank, got '$method'" >&2; exit 1 ;; esac
spectral-svd ${given_options[@]+"${given_options[@]}"} "$ckpt" "$dir"
