# Stage prepare: lhotse manifests, Kaldi data directories and Kaldi trials.


rule prepare_target:
    input:
        meta=f"{CORPUS['root']}/vox1_meta.csv",
    output:
        dev="data/vox1_dev/wav.scp",
        test="data/vox1_test/wav.scp",
        trials=expand("data/vox1_test/trials/{trials}", trials=TRIALS),
    params:
        stage=f"{BASE}/local/prepare_vox1.sh",
        corpus=lambda w, input: os.path.dirname(input.meta),
    resources:
        mem_mb=2000,
        runtime=30,
        cpus_per_task=1,
    log:
        "logs/prepare/vox1.log",
    shell:
        "{params.stage} {params.corpus} data > {log} 2>&1"


if CORPUS["pretrain_root"]:

    rule prepare_pretrain:
        input:
            meta=f"{CORPUS['pretrain_root']}/vox1_meta.csv",
        output:
            "data/pretrain/wav.scp",
        params:
            stage=f"{BASE}/local/prepare_vox1.sh",
            corpus=lambda w, input: os.path.dirname(input.meta),
        resources:
            mem_mb=2000,
            runtime=30,
            cpus_per_task=1,
        log:
            "logs/prepare/pretrain.log",
        shell:
            "{params.stage} --dev-name pretrain --test-name '' {params.corpus} data > {log} 2>&1"
