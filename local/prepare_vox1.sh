#!/usr/bin/env bash
# Stage prepare: lhotse manifests and Kaldi data directories from a VoxCeleb1-layout tree
# (the embedded corpus or a real VoxCeleb1), trial lists read from the corpus directory.
set -euo pipefail
usage="Usage: $0 [--dev-name vox1_dev] [--test-name vox1_test] [--all-name NAME [--all-trials vox1_E,vox1_H]] [--trials vox1_O,...] [--skip-missing-speakers] <corpus-dir> <data-dir>
 --trials: the lists to convert (others found in <corpus-dir> are ignored, with a log line); default every list found
 e.g.: $0 corpus/embedded/vox1 data
       $0 --trials vox1_O /corpora/VoxCeleb1 data
       $0 --all-name vox1_all --all-trials vox1_E,vox1_H /corpora/VoxCeleb1 data
       $0 --dev-name pretrain --test-name '' corpus/embedded/pretrain data"
# options given are forwarded; the others take spectral-prepare-vox1's defaults (those above)
dev_name=; test_name=; all_name=; all_trials=; trials=; skip_missing_speakers=false
nargs=2
. "$(dirname "$0")/../steps/stage.sh"
echo "$0 $*"
corpus=$1; data=$2
[ -f "$corpus/vox1_meta.csv" ] || { echo "$0: $corpus/vox1_meta.csv not found: not a VoxCeleb1-layout directory" >&2; exit 1; }
[ -d "$corpus/wav" ] || { echo "$0: $corpus/wav not found" >&2; exit 1; }
spectral-prepare-vox1 --no-progress --corpus-dir "$corpus" --data-dir "$data" ${given_options[@]+"${given_options[@]}"}
