#!/usr/bin/env bash
# Make (or rebuild) the shipped builtin backbone with one command: the pipeline's own corpus,
# prepare, features and pretrain stages, run in a work directory of their own with the recipe
# conf/presets/backbone.yaml, then spectral-backbone ship, which writes <out-dir>/{final.pt,
# SHA256SUMS,recipe.yaml} (the recipe names this command, the commit and the sha256).
#
# The weights are the same to the last bit on one machine; another machine may give other bits
# (README, "What is reproducible"), so a rebuilt final.pt may have another sha256 there.

set -euo pipefail

usage() {
  cat <<USAGE
Usage: $0 [--work-dir DIR] [--cores N] [--recipe FILE] <out-dir>
 e.g.: $0 models/builtin
  --work-dir DIR   where the corpus, data/ and exp/pretrain/ go (default: work/backbone)
  --cores N        snakemake --cores (default: 2)
  --recipe FILE    the config overlay on conf/config.yaml (default: conf/presets/backbone.yaml)
USAGE
}

echo "$0 $*"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=/dev/null
. "$root/path.sh"

work_dir=work/backbone; cores=2; recipe="$root/conf/presets/backbone.yaml"
while [ $# -gt 0 ]; do
  case "$1" in
    -h|--help) usage; exit 0 ;;
    --work-dir|--cores|--recipe)
      [ $# -ge 2 ] || { echo "$0: option $1 needs a value" >&2; usage >&2; exit 1; }
      case "$1" in --work-dir) work_dir=$2 ;; --cores) cores=$2 ;; --recipe) recipe=$2 ;; esac
      shift 2 ;;
    --*) echo "$0: unknown option $1" >&2; usage >&2; exit 1 ;;
    *) break ;;
  esac
done
[ $# -eq 1 ] || { usage >&2; exit 1; }
out_dir=$1
[ -s "$recipe" ] || { echo "$0: recipe $recipe missing or empty" >&2; exit 1; }

commit=$(git -C "$root" rev-parse HEAD 2>/dev/null || echo unknown)
dirty=""
if [ -n "$(git -C "$root" status --porcelain -- spectral steps local conf 2>/dev/null)" ]; then
  dirty="--dirty"
  echo "$0: warning: uncommitted changes under spectral/ steps/ local/ conf/; the recipe will say so" >&2
fi

mkdir -p "$work_dir"
snakemake -s "$root/Snakefile" -d "$work_dir" --cores "$cores" exp/pretrain/builtin/final.pt \
  --configfile "$root/conf/config.yaml" "$recipe"
spectral-backbone ship "$work_dir/exp/pretrain/builtin/final.pt" "$out_dir" --recipe-config "$recipe" \
  --command "local/make_backbone.sh $out_dir" --commit "$commit" $dirty
echo "$0: wrote $out_dir (check it with: spectral-backbone check $out_dir)"
