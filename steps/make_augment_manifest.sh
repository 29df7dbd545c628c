#!/usr/bin/env bash
# Stage augment: list a local noise or room impulse response directory with lhotse into a
# RecordingSet manifest (MUSAN and RIRS_NOISES through lhotse's recipes, any other directory file by
# file); the manifest is written last, atomically. Nothing is downloaded.
set -euo pipefail
usage="Usage: $0 [--musan-parts music,noise] [--rirs-parts sim_rir] <noise|rir> <source-dir> <manifest.jsonl.gz>
 --musan-parts: parts of a MUSAN tree used as noise (music, speech, noise)
 --rirs-parts:  parts of a RIRS_NOISES tree used as RIRs (sim_rir, real_rir)
 e.g.: $0 noise /corpora/musan data/augment/noise_recordings.jsonl.gz
       $0 --rirs-parts sim_rir rir /corpora/RIRS_NOISES data/augment/rir_recordings.jsonl.gz"
echo "$0 $*"
musan_parts=music,noise; rirs_parts=sim_rir
nargs=3
. "$(dirname "$0")/stage.sh"
kind=$1; src=$2; manifest=$3
case "$kind" in noise|rir) ;; *) echo "$0: the kind must be noise or rir, got '$kind'" >&2; exit 1 ;; esac
[ -d "$src" ] || { echo "$0: $src: no such $kind directory" >&2; exit 1; }
python -m spectral.augment --kind "$kind" --source-dir "$src" --manifest "$manifest" \
  --musan-parts "$musan_parts" --rirs-parts "$rirs_parts"
