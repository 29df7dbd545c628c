#!/usr/bin/env bash
# Stage svd: decompose every target weight matrix of a pre-trained checkpoint (our final.pt or
# a transformers model directory) into <out-dir>/factors.pt, spectra.json and spectra.png,
# each written under a temporary name and renamed when complete.
set -euo pipefail
usage="Usage: $0 [--targets 'q_proj k_proj'] [--top-k 256] [--bottom 0] [--method full|gram|lowrank]
       [--oversample 10] [--niter 4] [--seed 0] [--dtype float32] [--strip-prefix ''] [--threads 0]
       <checkpoint> <out-dir>
 <checkpoint>: exp/pretrain/<model>/final.pt, or a transformers model directory (config.json + weights)
 e.g.: $0 --top-k 256 exp/pretrain/wavlm_base/final.pt exp/svd/wavlm_base"
echo "$0 $*"
targets="q_proj k_proj"; top_k=256; bottom=0; method=full; oversample=10; niter=4; seed=0
dtype=float32; strip_prefix=""; threads=0
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
case "$method" in full|gram|lowrank) ;; *) echo "$0: --method must be full, gram or lowrank, got '$method'" >&2; exit 1 ;; esac
spectral-svd --targets "$targets" --top-k "$top_k" --bottom "$bottom" --method "$method" \
  --oversample "$oversample" --niter "$niter" --seed "$seed" --dtype "$dtype" \
  --strip-prefix "$strip_prefix" --threads "$threads" "$ckpt" "$dir"
