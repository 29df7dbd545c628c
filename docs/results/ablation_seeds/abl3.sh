#!/bin/bash
# usage: abl3.sh WORKDIR OUT SYS1 SYS2 SYS3
# The three-seed paired ablation of docs/benchmark.md: every q/k zeroed (exp/SYS/ablate/zero, made by
# `snakemake exp/SYS/ablate/zero/comparison.md`) beside the trained system, seeds 1-3 paired.
W=$1; OUT=$2; shift 2
# run with the project environment active (. .venv/bin/activate)
cd $W
runs=""; s=1
for sys in "$@"; do runs="$runs --run trained $s exp/$sys --run zero $s exp/$sys/ablate/zero"; s=$((s+1)); done
spectral-compare --trials vox1_O vox1_H dev_val --trials-file vox1_O data/vox1_test/trials/vox1_O \
  --trials-file vox1_H data/vox1_test/trials/vox1_H --trials-file dev_val data/vox1_dev/trials/dev_val \
  --reference trained --paired-with --title "Ablation (zero) over three seeds" \
  --note "dEER of zero: what setting every q/k to zero costs, paired over speakers and seeds" $runs --out-dir $OUT
