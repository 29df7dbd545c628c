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
while [ $# -gt 0 ]; do
  case "$1" in
    --targets) targets=$2; shift 2 ;;
    --top-k) top_k=$2; shift 2 ;;
    --bottom) bottom=$2; shift 2 ;;
    --method) method=$2; shift 2 ;;
    --oversample) oversample=$2; shift 2 ;;
    --niter) niter=$2; shift 2 ;;
    --seed) seed=$2; shift 2 ;;
    --dtype) dtype=$2; shift 2 ;;
    --strip-prefix) strip_prefix=$2; shift 2 ;;
    --threads) threads=$2; shift 2 ;;
    -h|--help) echo "$usage"; exit 0 ;;
    --*) echo "$0: unknown option $1" >&2; echo "$usage" >&2; exit 1 ;;
    *) break ;;
  esac
done
[ $# -eq 2 ] || { echo "$usage" >&2; exit 1; }
. "$(dirname "$0")/../path.sh"
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
args=()
[ -z "$targets" ] || args+=(--targets "$targets")
[ -z "$top_k" ] || args+=(--top-k "$top_k")
[ -z "$bottom" ] || args+=(--bottom "$bottom")
[ -z "$method" ] || args+=(--method "$method")
[ -z "$oversample" ] || args+=(--oversample "$oversample")
[ -z "$niter" ] || args+=(--niter "$niter")
[ -z "$seed" ] || args+=(--seed "$seed")
[ -z "$dtype" ] || args+=(--dtype "$dtype")
[ -z "$strip_prefix" ] || args+=(--strip-prefix "$strip_prefix")
[ -z "$threads" ] || args+=(--threads "$threads")
spectral-svd ${args[@]+"${args[@]}"} "$ckpt" "$dir"
