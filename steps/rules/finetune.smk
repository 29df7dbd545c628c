# Stage finetune: the configured adapter method + speaker back-end on the training speakers.
#
# Target:  exp/{system}/final.pt, train_log.tsv   (any system of PLAN.systems: the configured
#          one, PLAN.system, and every run of the comparison)
# Calls steps/finetune.sh -> spectral-finetune (spectral.train.finetune.finetune).
# A system's name comes from spectral.train.config.system_name, so two configurations never
# share an exp/ folder; the rule reads each system's full settings back by wildcard
# (PLAN.systems), so each setting is a param of that system only. Its inputs (SVD factors,
# pre-trained backbone, augment manifests, held-out speakers) are PLAN.finetune_inputs.
import json


rule finetune:
    input:
        unpack(lambda w: PLAN.finetune_inputs(w.system)),
    output:
        final="exp/{system}/final.pt",
        log_tsv="exp/{system}/train_log.tsv",
    wildcard_constraints:
        system=PLAN.system_pattern(),
    params:
        stage=f"{BASE}/steps/finetune.sh",
        config=lambda w: json.dumps(PLAN.systems[w.system], sort_keys=True),
        options=lambda w: PLAN.finetune_options(w.system),
        nproc=1,
        data=lambda w, input: os.path.dirname(input.wav_scp),
        exp_dir=lambda w, output: os.path.dirname(output.final),
    threads: max(1, config["finetune"]["threads"] or 2)
    resources:
        mem_mb=3000,
        runtime=60,
        cpus_per_task=lambda w, threads: threads,
        gpu=PLAN.gpus("finetune"),
    log:
        "logs/finetune/{system}.log",
    benchmark:
        "benchmarks/finetune/{system}.tsv"
    conda:
        CONDA_ENV
    shell:
        "{params.stage} --nproc {params.nproc} --config {params.config:q} {params.options}"
        " {params.data} {params.exp_dir} > {log} 2>&1"
