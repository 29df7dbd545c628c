#!/usr/bin/env bash
# Stage export (any corpus): take a trained system out of the pipeline. Reads <final.pt> (and,
# for the peft adapter, the pre-trained backbone and the svd factors it was fine-tuned from);
# writes <out-dir>/: hf/ (WavLM/HuBERT, adapters merged), backend.{safetensors,json},
# extractor.{onnx,pt}, peft/ (exactly low-rank methods) and export.json. The directory is
# built under a temporary name and renamed when complete, so a killed stage leaves none.
set -euo pipefail

usage="Usage: $0 [options] <final.pt> <out-dir>
 e.g.: $0 --backbone-checkpoint exp/pretrain/builtin/final.pt \\
         --factors exp/svd/builtin/k32_b0/factors.pt exp/SYSTEM/final.pt exp/SYSTEM/export
Options:
  --backbone-checkpoint <pt>  builtin: the pretrain stage's final.pt the system started from
  --pretrained-dir <dir>      wavlm/hubert: the pre-trained transformers directory
                              (default: model.path recorded in <final.pt>)
  --factors <pt>              the svd stage's factors.pt the finetune stage read
                              (spectralft, pissa, milora)
  --what <list>               comma-separated subset of hf,backend,extractor,peft (default: all)
  --peft auto|require|skip    auto (default): peft/ where the method is exactly low-rank, else
                              export.json says why not; require: that is an error
  --threads <n>               torch threads (default: 1)"

echo "$0 $*"

backbone_checkpoint= pretrained_dir= factors= what=hf,backend,extractor,peft peft=auto threads=1
nargs=2
. "$(dirname "$0")/stage.sh"
final=$1 dir=$2

for f in "$final" $backbone_checkpoint $factors; do
  if [ ! -s "$f" ]; then echo "$0: no such file or empty: $f" >&2; exit 1; fi
done
if [ -n "$pretrained_dir" ] && [ ! -f "$pretrained_dir/config.json" ]; then
  echo "$0: $pretrained_dir/config.json missing (not a transformers model directory)" >&2; exit 1
fi
case "$peft" in auto|require|skip) ;; *) echo "$0: --peft must be auto, require or skip, got '$peft'" >&2; exit 1 ;; esac
case "$threads" in ''|*[!0-9]*) echo "$0: --threads must be a positive integer, got '$threads'" >&2; exit 1 ;; esac

opts=(--what "$what" --peft "$peft" --threads "$threads")
[ -z "$backbone_checkpoint" ] || opts+=(--backbone-checkpoint "$backbone_checkpoint")
[ -z "$pretrained_dir" ] || opts+=(--pretrained-dir "$pretrained_dir")
[ -z "$factors" ] || opts+=(--factors "$factors")

spectral-export "${opts[@]}" "$final" "$dir"
echo "$0: wrote $dir"
