#!/usr/bin/env bash
# Stage features: 80-dim Kaldi-compatible log-mel fbank (lhotse) for one data directory,
# into <data>/fbank/raw_fbank.*.ark and <data>/feats.scp (written last).
set -euo pipefail
usage="Usage: $0 [--nj 2] [--num-mel-bins 80] [--frame-length-ms 25] [--frame-shift-ms 10] [--dither 0] <data-dir>
 e.g.: $0 --nj 2 data/vox1_dev"
nj=2; bins=80; flen=25; fshift=10; dither=0
while [ $# -gt 0 ]; do
  case "$1" in
    --nj) nj=$2; shift 2 ;;
    --num-mel-bins) bins=$2; shift 2 ;;
    --frame-length-ms) flen=$2; shift 2 ;;
    --frame-shift-ms) fshift=$2; shift 2 ;;
    --dither) dither=$2; shift 2 ;;
    -h|--help) echo "$usage"; exit 0 ;;
    --*) echo "$0: unknown option $1" >&2; echo "$usage" >&2; exit 1 ;;
    *) break ;;
  esac
done
[ $# -eq 1 ] || { echo "$usage" >&2; exit 1; }
. "$(dirname "$0")/../path.sh"
echo "$0 $*"
data=$1
for f in wav.scp utt2spk; do
  [ -s "$data/$f" ] || { echo "$0: $data/$f missing or empty (run the prepare stage first)" >&2; exit 1; }
done
spectral-features --no-progress --data-dir "$data" --nj "$nj" --num-mel-bins "$bins" \
  --frame-length-ms "$flen" --frame-shift-ms "$fshift" --dither "$dither"
