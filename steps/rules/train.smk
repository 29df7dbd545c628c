# Stages pretrain and finetune: the built-in backbone on the pre-training corpus, then the
# configured adapter method + speaker back-end on the training speakers.
#
# Targets:  exp/pretrain/builtin/final.pt       (only where model.backbone is builtin)
#           exp/{system}/final.pt               (SYSTEM: the configured system; others via add_system)
# A system's name comes from spectral.train.config.system_name, so two configurations never
# share an exp/ folder; SYSTEMS maps every known name to its full training settings, and the
# finetune rule reads them back by wildcard, so each setting is a param of that system only.
# (Functions: steps/rules/common.smk.)
import json
import re

SYSTEM = add_system()
COMPARE_RUNS = _compare_runs()  # registered here: the finetune rule's wildcard takes every system
BUILTIN = config["model"]["backbone"] == "builtin"
MODEL_NAME = "builtin" if BUILTIN else os.path.basename(os.path.normpath(config["model"]["path"]))


if BUILTIN:

    rule pretrain:
        input:
            unpack(lambda w: _augment_inputs(config)),
            feats="data/pretrain/feats.scp",
            utt2spk="data/pretrain/wav.scp",
        output:
            final="exp/pretrain/builtin/final.pt",
        params:
            stage=f"{BASE}/steps/pretrain.sh",
            config=json.dumps({s: config[s] for s in ("model", "backend", "pretrain", "augment")}, sort_keys=True),
            augment=lambda w, input: _augment_options(input),
            nproc=1,
            data=lambda w, input: os.path.dirname(input.feats),
            exp_dir=lambda w, output: os.path.dirname(output.final),
        threads: max(1, config["pretrain"]["threads"] or 2)
        resources:
            mem_mb=3000,
            runtime=60,
            cpus_per_task=lambda w, threads: threads,
            gpu=_gpu("pretrain"),
        log:
            "logs/pretrain/builtin.log",
        benchmark:
            "benchmarks/pretrain/builtin.tsv"
        conda:
            CONDA_ENV
        shell:
            "{params.stage} --nproc {params.nproc} --config {params.config:q} {params.augment}"
            " {params.data} {params.exp_dir} > {log} 2>&1"


rule finetune:
    input:
        unpack(_finetune_inputs),
    output:
        final="exp/{system}/final.pt",
        log_tsv="exp/{system}/train_log.tsv",
    wildcard_constraints:
        system="|".join(re.escape(s) for s in SYSTEMS) if SYSTEMS else "NONE",
    params:
        stage=f"{BASE}/steps/finetune.sh",
        config=lambda w: json.dumps(SYSTEMS[w.system], sort_keys=True),
        options=_finetune_options,
        nproc=1,
        data=f"data/{TRAIN_SET}",
        exp_dir=lambda w, output: os.path.dirname(output.final),
    threads: max(1, config["finetune"]["threads"] or 2)
    resources:
        mem_mb=3000,
        runtime=60,
        cpus_per_task=lambda w, threads: threads,
        gpu=_gpu("finetune"),
    log:
        "logs/finetune/{system}.log",
    benchmark:
        "benchmarks/finetune/{system}.tsv"
    conda:
        CONDA_ENV
    shell:
        "{params.stage} --nproc {params.nproc} --config {params.config:q} {params.options}"
        " {params.data} {params.exp_dir} > {log} 2>&1"
