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
dev_name=; eval_name=; trials=  # given ones are forwarded; the others take spectral-prepare-cnceleb1's defaults
nargs=2
. "$(dirname "$0")/../steps/stage.sh"
echo "$0 $*"
corpus=$1; data=$2
[ -d "$corpus" ] || { echo "$0: $corpus: no such directory" >&2; exit 1; }
spectral-prepare-cnceleb1 --no-progress --corpus-dir "$corpus" --data-dir "$data" ${given_options[@]+"${given_options[@]}"}
