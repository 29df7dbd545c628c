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
config=""; backbone_checkpoint=""; factors=""; noise_manifest=""; rir_manifest=""; exclude_speakers=""
nproc=1; script_options=nproc  # the others go to spectral-finetune
nargs=2
. "$(dirname "$0")/stage.sh"
data=$1; exp=$2
[ -s "$data/utt2spk" ] || { echo "$0: $data/utt2spk missing or empty (run the prepare stage first)" >&2; exit 1; }
[ -z "$backbone_checkpoint" ] || [ -s "$backbone_checkpoint" ] || { echo "$0: $backbone_checkpoint missing or empty (run the pretrain stage first)" >&2; exit 1; }
[ -z "$factors" ] || [ -s "$factors" ] || { echo "$0: $factors missing or empty (run the svd stage first)" >&2; exit 1; }
[ -z "$exclude_speakers" ] || [ -s "$exclude_speakers" ] || { echo "$0: $exclude_speakers missing or empty (run the dev_trials stage first)" >&2; exit 1; }
stage_command=spectral-finetune
. "$(dirname "$0")/launch_training.sh"
