#!/usr/bin/env bash
# Stage pretrain: train the built-in backbone with a speaker back-end on the pre-training corpus;
# writes <exp-dir>/final.pt (last, atomically), train_log.tsv and checkpoints/last.pt (resumes from it).
set -euo pipefail
usage="Usage: $0 [--config <yaml-file|json>] [--noise-manifest F] [--rir-manifest F] [--nproc 1] <data-dir> <exp-dir>
 --config: settings laid out like conf/config.yaml (sections model, backend, pretrain, augment)
 --noise-manifest, --rir-manifest: the augment stage's recordings (needed when augment.noise_prob
          or reverb_prob > 0; default: augment.noise_dir/rir_dir listed in memory)
 --nproc:  processes under torchrun (DistributedDataParallel; needs pretrain.distributed: true)
 e.g.: $0 --config conf/config.yaml data/pretrain exp/pretrain/builtin"
echo "$0 $*"
config=""; noise_manifest=""; rir_manifest=""; nproc=1
while [ $# -gt 0 ]; do
  case "$1" in
    --config) config=$2; shift 2 ;;
    --noise-manifest) noise_manifest=$2; shift 2 ;;
    --rir-manifest) rir_manifest=$2; shift 2 ;;
    --nproc) nproc=$2; shift 2 ;;
    -h|--help) echo "$usage"; exit 0 ;;
    --*) echo "$0: unknown option $1" >&2; echo "$usage" >&2; exit 1 ;;
    *) break ;;
  esac
done
[ $# -eq 2 ] || { echo "$usage" >&2; exit 1; }
. "$(dirname "$0")/../path.sh"
data=$1; exp=$2
for f in utt2spk feats.scp; do
  [ -s "$data/$f" ] || { echo "$0: $data/$f missing or empty (run the prepare and features stages first)" >&2; exit 1; }
done
for f in "$noise_manifest" "$rir_manifest"; do
  [ -z "$f" ] || [ -s "$f" ] || { echo "$0: $f missing or empty (run the augment stage first)" >&2; exit 1; }
done
[[ "$nproc" =~ ^[1-9][0-9]*$ ]] || { echo "$0: --nproc must be a positive integer, got '$nproc'" >&2; exit 1; }
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}  # idle threads sleep: cores may be shared
args=(--no-progress --data-dir "$data" --exp-dir "$exp")
[ -n "$config" ] && args+=(--config "$config")
[ -n "$noise_manifest" ] && args+=(--noise-manifest "$noise_manifest")
[ -n "$rir_manifest" ] && args+=(--rir-manifest "$rir_manifest")
if [ "$nproc" -gt 1 ]; then
  torchrun --standalone --nproc-per-node "$nproc" "$(command -v spectral-pretrain)" "${args[@]}"
else
  spectral-pretrain "${args[@]}"
fi
