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
config=""; noise_manifest=""; rir_manifest=""; nproc=1; script_options=nproc  # the others go to spectral-pretrain
nargs=2
. "$(dirname "$0")/stage.sh"
data=$1; exp=$2
for f in utt2spk feats.scp; do
  [ -s "$data/$f" ] || { echo "$0: $data/$f missing or empty (run the prepare and features stages first)" >&2; exit 1; }
done
stage_command=spectral-pretrain
. "$(dirname "$0")/launch_training.sh"
