#!/usr/bin/env bash
# Stage prepare (VoxCeleb2-dev, optional training data): lhotse manifests and a Kaldi data
# directory; .m4a files are decoded through lhotse (ffmpeg needed) into <data>/<name>/audio/
# as FLAC, since the other stages read audio with libsndfile.
set -euo pipefail
usage="Usage: $0 [--name vox2_dev] [--nj N] <corpus-dir> <data-dir>
 e.g.: $0 --nj 8 /corpora/VoxCeleb2 data"
name=vox2_dev; nj=1
nargs=2
. "$(dirname "$0")/../steps/stage.sh"
echo "$0 $*"
corpus=$1; data=$2
[ -d "$corpus" ] || { echo "$0: $corpus: no such directory" >&2; exit 1; }
spectral-prepare-vox2 --no-progress --nj "$nj" --name "$name" --corpus-dir "$corpus" --data-dir "$data"
