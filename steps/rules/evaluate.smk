# Stages svd, embed, score and report: factors of the pre-trained backbone, embeddings of
# every utterance, cosine scores of every trial list, Kaldi's EER/minDCF and results/vox1_eer.txt.


rule svd:
    input:
        checkpoint=_svd_source(),
    output:
        factors="exp/svd/{model}/k{k}_b{b}/factors.pt",
        spectra="exp/svd/{model}/k{k}_b{b}/spectra.json",
        plot=report(
            "exp/svd/{model}/k{k}_b{b}/spectra.png",
            caption="../report/spectra.rst",
            category="Spectra",
            labels={"model": "{model}", "top k": "{k}", "bottom": "{b}"},
        ),
    wildcard_constraints:
        k=r"\d+",
        b=r"\d+",
    params:
        stage=f"{BASE}/steps/svd.sh",
        targets=" ".join(config["adapter"]["targets"]),
        method=config["svd"]["method"],
        dtype=config["svd"]["dtype"],
        out_dir=lambda w, output: os.path.dirname(output.factors),
    threads: 2
    resources:
        mem_mb=4000,
        runtime=30,
        cpus_per_task=2,
    log:
        "logs/svd/{model}_k{k}_b{b}.log",
    benchmark:
        "benchmarks/svd/{model}_k{k}_b{b}.tsv"
    conda:
        CONDA_ENV
    shell:
        "{params.stage} --targets {params.targets:q} --top-k {wildcards.k} --bottom {wildcards.b}"
        " --method {params.method} --dtype {params.dtype} --threads {threads}"
        " {input.checkpoint} {params.out_dir} > {log} 2>&1"


rule embed:
    input:
        unpack(_embed_reuse),
        model="exp/{system}/final.pt",
        table=(
            "data/{set}/feats.scp"
            if config["model"]["backbone"] == "builtin"
            else "data/{set}/wav.scp"
        ),
        train=f"data/{TRAIN_SET}/wav.scp",  # final.pt must have been trained on this set
    output:
        xvector="exp/{system}/embeddings/{set}/xvector.scp",
        spk_xvector="exp/{system}/embeddings/{set}/spk_xvector.scp",
    params:
        max_seconds=config["embed"]["max_seconds"],
        crops=config["embed"]["crops"],
        crop_seconds=config["embed"]["crop_seconds"],
        device=config["embed"]["device"],
        precision=config["embed"]["precision"],
        batch_seconds=config["embed"]["batch_seconds"],
        options=_embed_options,
        data=lambda w: f"data/{w.set}",
        train_data=lambda w, input: os.path.dirname(input.train),
        out_dir=lambda w, output: os.path.dirname(output.xvector),
    threads: config["embed"]["threads"]
    resources:
        mem_mb=3000,
        runtime=30,
        cpus_per_task=config["embed"]["threads"],
        gpu=1 if config["embed"]["device"] == "cuda" else 0,
    log:
        "logs/embed/{system}/{set}.log",
    benchmark:
        "benchmarks/embed/{system}/{set}.tsv"
    conda:
        CONDA_ENV
    shell:
        "spectral-embed --no-progress --speaker-means --threads {threads} --max-seconds {params.max_seconds}"
        " --crops {params.crops} --crop-seconds {params.crop_seconds} --device {params.device}"
        " --precision {params.precision} --batch-seconds {params.batch_seconds} {params.options} --train-data-dir {params.train_data}"
        " {input.model} {params.data} {params.out_dir} > {log} 2>&1"


rule score:
    input:
        unpack(_score_inputs),
    output:
        "exp/{system}/scores/{trials}.score",
    params:
        options=_score_options,
        mean_subtraction=config["score"]["mean_subtraction"],
        asnorm=config["score"]["asnorm"],
        top_n=config["score"]["asnorm_top_n"],
    resources:
        mem_mb=2000,
        runtime=10,
        cpus_per_task=1,
    log:
        "logs/score/{system}/{trials}.log",
    conda:
        CONDA_ENV
    shell:
        "spectral-score {params.options} {input.test} {input.trials} {output} > {log} 2>&1"


rule metrics:
    """Kaldi's EER and minDCF of every trial list of one system, with DET plots."""
    input:
        scores=expand("exp/{{system}}/scores/{trials}.score", trials=SCORED),
        trials=[TRIALS_FILES[t] for t in SCORED],
    output:
        results="exp/{system}/results.txt",
        metrics=expand("exp/{{system}}/scores/{trials}.metrics.json", trials=SCORED),
        det=[
            report(
                f"exp/{{system}}/scores/{t}.det.png",
                caption="../report/det.rst",
                category="Results",
                subcategory="DET curves",
                labels={"system": "{system}", "trial list": t},
            )
            for t in SCORED
        ],
    params:
        lists=lambda w, input: " ".join(
            f"--list {t} {tr} {sc}" for t, tr, sc in zip(SCORED, input.trials, input.scores)
        ),
        out_dir=lambda w: f"exp/{w.system}/scores",
    resources:
        mem_mb=2000,
        runtime=10,
        cpus_per_task=1,
    log:
        "logs/metrics/{system}.log",
    conda:
        CONDA_ENV
    shell:
        "spectral-report --system {wildcards.system} --out-dir {params.out_dir}"
        " --results {output.results} {params.lists} > {log} 2>&1"


rule report:
    """results/vox1_eer.txt: the configured system's metrics (a new system replaces it)."""
    input:
        f"exp/{SYSTEM}/results.txt",
    output:
        report("results/vox1_eer.txt", caption="../report/results.rst", category="Results", labels={"item": "EER and minDCF"}),
    params:
        system=SYSTEM,
    log:
        "logs/report.log",
    conda:
        CONDA_ENV
    shell:
        "cp {input} {output} 2> {log}"
