#!/usr/bin/env bash
# Stage finetune: apply the configured adapter method to a pre-trained backbone and train it with
# the speaker back-end; writes <exp-dir>/final.pt (adapters merged; last, atomically),
# train_log.tsv and checkpoints/last.pt (resumes from it).
set -euo pipefail
usage="Usage: $0 [--config <yaml-file|json>] [--backbone-checkpoint final.pt] [--factors factors.pt]
       [--noise-manifest F] [--rir-manifest F] [--exclude-speakers F] [--nproc 1] <data-dir> <exp-dir>
 --backbone-checkpoint: the pretrain stage's final.pt (builtin; wavlm/hubert load from model.path)
 --factors: the svd stage's factors.pt (spectralft, spectralft_rot, pissa, milora start from it)
 --noise-manifest, --rir-manifest: the augment stage's recordings (needed when augment.noise_prob
           or reverb_prob > 0; default: augment.noise_dir/rir_dir listed in memory)
 --exclude-speakers: the dev_trials stage's dev_speakers (needed when finetune.dev_speakers > 0)
 --nproc:   processes under torchrun (DistributedDataParallel; needs finetune.distributed: true)
 e.g.: $0 --config conf/config.yaml --backbone-checkpoint exp/pretrain/builtin/final.pt \\
          --factors exp/svd/builtin/k64_b0/factors.pt data/vox1_dev exp/builtin_spectralft_k64_r4_s1_172d732d"
echo "$0 $*"
config=""; ckpt=""; factors=""; noise_manifest=""; rir_manifest=""; exclude=""; nproc=1
while [ $# -gt 0 ]; do
  case "$1" in
    --config) config=$2; shift 2 ;;
    --backbone-checkpoint) ckpt=$2; shift 2 ;;
    --factors) factors=$2; shift 2 ;;
    --noise-manifest) noise_manifest=$2; shift 2 ;;
    --rir-manifest) rir_manifest=$2; shift 2 ;;
    --exclude-speakers) exclude=$2; shift 2 ;;
    --nproc) nproc=$2; shift 2 ;;
    -h|--help) echo "$usage"; exit 0 ;;
    --*) echo "$0: unknown option $1" >&2; echo "$usage" >&2; exit 1 ;;
    *) break ;;
  esac
done
[ $# -eq 2 ] || { echo "$usage" >&2; exit 1; }
. "$(dirname "$0")/../path.sh"
data=$1; exp=$2
[ -s "$data/utt2spk" ] || { echo "$0: $data/utt2spk missing or empty (run the prepare stage first)" >&2; exit 1; }
[ -z "$ckpt" ] || [ -s "$ckpt" ] || { echo "$0: $ckpt missing or empty (run the pretrain stage first)" >&2; exit 1; }
[ -z "$factors" ] || [ -s "$factors" ] || { echo "$0: $factors missing or empty (run the svd stage first)" >&2; exit 1; }
[ -z "$exclude" ] || [ -s "$exclude" ] || { echo "$0: $exclude missing or empty (run the dev_trials stage first)" >&2; exit 1; }
for f in "$noise_manifest" "$rir_manifest"; do
  [ -z "$f" ] || [ -s "$f" ] || { echo "$0: $f missing or empty (run the augment stage first)" >&2; exit 1; }
done
[[ "$nproc" =~ ^[1-9][0-9]*$ ]] || { echo "$0: --nproc must be a positive integer, got '$nproc'" >&2; exit 1; }
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}  # idle threads sleep: cores may be shared
args=(--no-progress --data-dir "$data" --exp-dir "$exp")
[ -n "$config" ] && args+=(--config "$config")
[ -n "$ckpt" ] && args+=(--backbone-checkpoint "$ckpt")
[ -n "$factors" ] && args+=(--factors "$factors")
[ -n "$noise_manifest" ] && args+=(--noise-manifest "$noise_manifest")
[ -n "$rir_manifest" ] && args+=(--rir-manifest "$rir_manifest")
[ -n "$exclude" ] && args+=(--exclude-speakers "$exclude")
if [ "$nproc" -gt 1 ]; then
  torchrun --standalone --nproc-per-node "$nproc" "$(command -v spectral-finetune)" "${args[@]}"
else
  spectral-finetune "${args[@]}"
fi
