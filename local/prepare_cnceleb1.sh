#!/usr/bin/env bash
# Stage prepare (CN-Celeb1): lhotse manifests and Kaldi data directories of the dev and eval
# sets, the enroll maps and the Kaldi trials of the two protocols (cnceleb1_concat: CNC-Eval-Concat,
# cnceleb1_avg: CNC-Eval-Avg, averaging eval/lists/enroll.map's utterances) from a local CN-Celeb1
# copy (OpenSLR 82). Writes <data>/<dev-name>/, <data>/<eval-name>/{enroll_maps,trials}/<protocol>;
# each set appears only when complete.
set -euo pipefail
usage="Usage: $0 [--dev-name cnceleb1_dev] [--eval-name cnceleb1_eval] [--trials cnceleb1_concat,cnceleb1_avg] <corpus-dir> <data-dir>
 e.g.: $0 /corpora/CN-Celeb_flac data
       $0 --trials cnceleb1_avg /corpora/CN-Celeb_flac data"
opts=()
while [ $# -gt 0 ]; do
  case "$1" in
    --dev-name|--eval-name|--trials)
      [ $# -ge 2 ] || { echo "$0: option $1 needs a value" >&2; exit 1; }
      opts+=("$1" "$2"); shift 2 ;;
    -h|--help) echo "$usage"; exit 0 ;;
    --*) echo "$0: unknown option $1" >&2; echo "$usage" >&2; exit 1 ;;
    *) break ;;
  esac
done
[ $# -eq 2 ] || { echo "$usage" >&2; exit 1; }
. "$(dirname "$0")/../path.sh"
echo "$0 $*"
corpus=$1; data=$2
[ -d "$corpus" ] || { echo "$0: $corpus: no such directory" >&2; exit 1; }
spectral-prepare-cnceleb1 --no-progress --corpus-dir "$corpus" --data-dir "$data" ${opts[@]+"${opts[@]}"}
