#!/usr/bin/env bash
# Stage features: 80-dim Kaldi-compatible log-mel fbank (lhotse) for one data directory,
# into <data>/fbank/raw_fbank.*.ark and <data>/feats.scp (written last).
set -euo pipefail
usage="Usage: $0 [--nj N] [--num-mel-bins N] [--frame-length-ms MS] [--frame-shift-ms MS] [--dither D] <data-dir>
 An option not given takes spectral-features' default (spectral-features --help).
 e.g.: $0 --nj 2 data/vox1_dev"
nj=""; num_mel_bins=""; frame_length_ms=""; frame_shift_ms=""; dither=""
nargs=1
. "$(dirname "$0")/stage.sh"
echo "$0 $*"
data=$1
for f in wav.scp utt2spk; do
  [ -s "$data/$f" ] || { echo "$0: $data/$f missing or empty (run the prepare stage first)" >&2; exit 1; }
done
spectral-features --no-progress --data-dir "$data" ${given_options[@]+"${given_options[@]}"}
