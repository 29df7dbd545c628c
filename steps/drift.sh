#!/usr/bin/env bash
# Stage drift: where a fine-tuned system's update went, per adapted matrix, against the top-k
# singular subspaces of its pre-trained backbone: <out-dir>/drift.tsv, drift.json and drift.png,
# each written under a temporary name and renamed when all three are complete.
set -euo pipefail
usage="Usage: $0 [--top-k K] [--default-top-k K] [--factors factors.pt] [--threads 0]
       <finetuned-final.pt> <pretrained> <out-dir>
 <pretrained>: exp/pretrain/builtin/final.pt, or the transformers directory of a wavlm/hubert backbone
 k: --top-k, else the system's adapter.top_k (spectralft, spectralft_rot), else --default-top-k
    (default: 64 for builtin, 256 for wavlm/hubert)
 e.g.: $0 --factors exp/svd/builtin/k64_b0/factors.pt exp/<system>/final.pt exp/pretrain/builtin/final.pt exp/<system>/drift"
echo "$0 $*"
top_k=""; default_top_k=""; factors=""; threads=0
nargs=3
. "$(dirname "$0")/stage.sh"
finetuned=$1; pretrained=$2; dir=$3
[ -s "$finetuned" ] || { echo "$0: fine-tuned checkpoint $finetuned missing or empty (run the finetune stage first)" >&2; exit 1; }
if [ -d "$pretrained" ]; then
  [ -f "$pretrained/config.json" ] || { echo "$0: $pretrained/config.json missing (not a transformers model directory)" >&2; exit 1; }
elif [ ! -s "$pretrained" ]; then
  echo "$0: pre-trained backbone $pretrained missing or empty (run the pretrain stage first, or give a model directory)" >&2; exit 1
fi
if [ -n "$factors" ] && [ ! -s "$factors" ]; then
  echo "$0: factors $factors missing or empty (run the svd stage first)" >&2; exit 1
fi
for v in "$top_k" "$default_top_k" "$threads"; do
  case "$v" in ""|*[!0-9]*) [ -z "$v" ] || { echo "$0: --top-k, --default-top-k and --threads take integers, got '$v'" >&2; exit 1; } ;; esac
done
# Idle OpenMP threads sleep rather than spin (see steps/svd.sh).
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}
opts=(--threads "$threads" --no-progress)
[ -z "$top_k" ] || opts+=(--top-k "$top_k")
[ -z "$default_top_k" ] || opts+=(--default-top-k "$default_top_k")
[ -z "$factors" ] || opts+=(--factors "$factors")
spectral-drift "${opts[@]}" "$finetuned" "$pretrained" "$dir"
