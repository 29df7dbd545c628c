#!/usr/bin/env bash
# Stage corpus (embedded default): generate the synthetic VoxCeleb1-shaped target corpus
# and, where <pretrain-dir> is given, the pre-training corpus, deterministically from a seed,
# offline (a shipped backbone, model.path, needs no pre-training corpus).
#
# Writes <target-dir>/{wav/,vox1_meta.csv,veri_test2.txt,list_test_hard2.txt,noise/,rir/,...}
# and <pretrain-dir>/{wav/,vox1_meta.csv,...}; each appears only when complete.
# Options are forwarded to spectral-make-corpus (see `spectral-make-corpus --help`).

set -euo pipefail

usage() {
  cat <<USAGE
Usage: $0 [options] <target-dir> [<pretrain-dir>]
 e.g.: $0 --size default --seed 20250107 --nj 2 corpus/embedded/vox1 corpus/embedded/pretrain
Options (forwarded to spectral-make-corpus; defaults from --size):
  --size {tiny,small,default}   --seed N   --nj N
  --n-pretrain-speakers N   --pretrain-utts-per-speaker N
  --n-dev-speakers N   --n-test-speakers N   --utts-per-speaker N   --sessions-per-speaker N
  --min-duration S   --max-duration S   --snr-db-min DB   --snr-db-max DB
  --reverb-prob P   --telephone-prob P   --n-trials-o N   --n-trials-h N   --no-progress
USAGE
}

echo "$0 $*"

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=/dev/null
. "$root/path.sh"

opts=()
while [ $# -gt 0 ]; do
  case "$1" in
    -h|--help) usage; exit 0 ;;
    --no-progress) opts+=("$1"); shift ;;
    --*)
      if [ $# -lt 2 ]; then echo "$0: option $1 needs a value" >&2; usage >&2; exit 1; fi
      opts+=("$1" "$2"); shift 2 ;;
    *) break ;;
  esac
done

if [ $# -lt 1 ] || [ $# -gt 2 ]; then
  usage >&2
  exit 1
fi

target_dir=$1
pretrain_dir=${2:-}

if [ -n "$pretrain_dir" ]; then
  spectral-make-corpus --target-dir "$target_dir" --pretrain-dir "$pretrain_dir" "${opts[@]}"
else
  spectral-make-corpus --target-dir "$target_dir" "${opts[@]}"
fi

for f in "$target_dir/vox1_meta.csv" ${pretrain_dir:+"$pretrain_dir/vox1_meta.csv"}; do
  [ -s "$f" ] || { echo "$0: $f missing after generation" >&2; exit 1; }
done
echo "$0: wrote $target_dir${pretrain_dir:+ and $pretrain_dir}"
