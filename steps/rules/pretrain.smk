# Stage pretrain (only where model.backbone is builtin): the built-in backbone with a speaker
# back-end on the pre-training corpus.
#
# Target:  exp/pretrain/builtin/final.pt
# Calls steps/pretrain.sh -> spectral-pretrain (spectral.train.pretrain.pretrain).
# Reads PLAN (the Snakefile's spectral.workflow.Plan).
import json


if PLAN.builtin:

    rule pretrain:
        input:
            unpack(lambda w: PLAN.pretrain_inputs()),
        output:
            final="exp/pretrain/builtin/final.pt",
        params:
            stage=f"{BASE}/steps/pretrain.sh",
            config=json.dumps({s: config[s] for s in ("model", "backend", "pretrain", "augment")}, sort_keys=True),
            augment=PLAN.pretrain_options(),
            nproc=1,
            data=lambda w, input: os.path.dirname(input.wav_scp),
            exp_dir=lambda w, output: os.path.dirname(output.final),
        threads: max(1, config["pretrain"]["threads"] or 2)
        resources:
            mem_mb=3000,
            runtime=60,
            cpus_per_task=lambda w, threads: threads,
            gpu=PLAN.gpus("pretrain"),
        log:
            "logs/pretrain/builtin.log",
        benchmark:
            "benchmarks/pretrain/builtin.tsv"
        conda:
            CONDA_ENV
        shell:
            "{params.stage} --nproc {params.nproc} --config {params.config:q} {params.augment}"
            " {params.data} {params.exp_dir} > {log} 2>&1"
