#!/usr/bin/env bash
# Score stage (any corpus): cosine scoring of one trial list, then its report.
# Reads <xvector-scp> (kaldiio embeddings) and <trials> ('enroll test target|nontarget');
# writes <scores-dir>/<name>.score ('enroll test score'), <name>.metrics.json,
# <name>.det.png and, with --results, the results text file (overwritten, never appended).
# Every file is written under a temporary name and renamed when complete.
set -euo pipefail

usage="Usage: $0 [options] <xvector-scp> <trials> <scores-dir>
 e.g.: $0 --system SYSTEM \\
         --mean-scp exp/SYSTEM/embeddings/vox1_dev/xvector.scp \\
         --cohort-scp exp/SYSTEM/embeddings/vox1_dev/spk_xvector.scp --top-n 300 \\
         --results exp/SYSTEM/results.txt \\
         exp/SYSTEM/embeddings/vox1_test/xvector.scp data/vox1_test/trials/vox1_O exp/SYSTEM/scores
Options:
  --system <name>        system name written into the report (required)
  --name <name>          trial-list name (default: file name of <trials>)
  --mean-scp <scp>       subtract the mean of these embeddings (training set)
  --cohort-scp <scp>     AS-norm with this cohort (e.g. spk_xvector.scp of the training set)
  --top-n <n>            AS-norm: cohort scores kept per side (default: 300)
  --enroll-map <file>    'model utt1 utt2 ...' lines: enroll ids are models (CN-Celeb style)
  --checkpoint <final.pt> --train-data-dir <dir>
                         refuse embeddings of a final.pt not trained on <dir> (the configured training set)
  --results <file>       also write the results text file, e.g. results/vox1_eer.txt"

echo "$0 $*"

system= name= mean_scp= cohort_scp= top_n=300 enroll_map= results= checkpoint= train_data_dir=
nargs=3
. "$(dirname "$0")/stage.sh"
xvector_scp=$1 trials=$2 dir=$3
[ -n "$name" ] || name=$(basename "$trials")

if [ -z "$system" ]; then echo "$0: --system is required" >&2; exit 1; fi
case "$top_n" in ''|*[!0-9]*) echo "$0: --top-n must be a positive integer, got '$top_n'" >&2; exit 1 ;; esac
for f in "$xvector_scp" "$trials" $mean_scp $cohort_scp $enroll_map; do
  if [ ! -s "$f" ]; then echo "$0: no such file or empty: $f" >&2; exit 1; fi
done

mkdir -p "$dir"
opts=()
[ -z "$mean_scp" ] || opts+=(--mean-scp "$mean_scp")
[ -z "$cohort_scp" ] || opts+=(--cohort-scp "$cohort_scp" --top-n "$top_n")
[ -z "$enroll_map" ] || opts+=(--enroll-map "$enroll_map")
[ -z "$checkpoint$train_data_dir" ] || opts+=(--checkpoint "$checkpoint" --train-data-dir "$train_data_dir")
report_opts=()
[ -z "$results" ] || report_opts+=(--results "$results")

spectral-score ${opts[@]+"${opts[@]}"} "$xvector_scp" "$trials" "$dir/$name.score"
spectral-report --system "$system" ${report_opts[@]+"${report_opts[@]}"} --list "$name" "$trials" "$dir/$name.score"
echo "$0: wrote $dir/$name.score, $dir/$name.metrics.json, $dir/$name.det.png${results:+ and $results}"
