# Stage pretrain (only where model.backbone is builtin): the built-in backbone with a speaker
# back-end on the pre-training corpus; or, where model.path names a shipped backbone directory
# (models/builtin), that backbone checked against its SHA256SUMS and the config's shape, and
# installed in its place.
#
# Target:  exp/pretrain/builtin/final.pt
# Calls steps/pretrain.sh -> spectral-pretrain (spectral.train.pretrain.pretrain), or
#       spectral-backbone install (spectral.models.shipped.install).
# Reads PLAN (the Snakefile's spectral.workflow.Plan).
import json


if PLAN.builtin and PLAN.shipped:

    rule install_backbone:
        """The shipped backbone (model.path), checked, where every later stage reads the pre-trained one."""
        input:
            weights=f"{PLAN.shipped}/final.pt",
            sums=f"{PLAN.shipped}/SHA256SUMS",
            recipe=f"{PLAN.shipped}/recipe.yaml",
        output:
            final="exp/pretrain/builtin/final.pt",
        params:
            shipped=lambda w, input: os.path.dirname(input.weights),
            model=json.dumps(config["model"], sort_keys=True),
        resources:
            mem_mb=1000,
            runtime=5,
            cpus_per_task=1,
        log:
            "logs/pretrain/install.log",
        conda:
            CONDA_ENV
        shell:
            "spectral-backbone install {params.shipped} {output.final} --model-json {params.model:q} > {log} 2>&1"

elif PLAN.builtin:

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
