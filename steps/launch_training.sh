# The end of the training stages (steps/pretrain.sh, steps/finetune.sh), sourced once they have
# checked their own inputs: checks the augment manifests and --nproc, then runs $stage_command with
# the options given (but --nproc) on <data-dir> <exp-dir>, as one process or, with --nproc N > 1,
# as N processes under torchrun (DistributedDataParallel).
for f in "$noise_manifest" "$rir_manifest"; do
  [ -z "$f" ] || [ -s "$f" ] || { echo "$0: $f missing or empty (run the augment stage first)" >&2; exit 1; }
done
[[ "$nproc" =~ ^[1-9][0-9]*$ ]] || { echo "$0: --nproc must be a positive integer, got '$nproc'" >&2; exit 1; }
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}  # idle threads sleep: cores may be shared
args=(--no-progress --data-dir "$data" --exp-dir "$exp" ${given_options[@]+"${given_options[@]}"})
if [ "$nproc" -gt 1 ]; then
  torchrun --standalone --nproc-per-node "$nproc" "$(command -v "$stage_command")" "${args[@]}"
else
  "$stage_command" "${args[@]}"
fi
