# Stage corpus: the embedded VoxCeleb1-shaped target corpus and, where corpus.pretrain_root is
# set (pre-training here rather than from a shipped backbone), its pre-training corpus.
# Every key of config['embedded'] but nj becomes an option of spectral-make-corpus (nulls omitted).
# Calls local/make_embedded_corpus.sh -> spectral-make-corpus (spectral.corpora.embedded.generate.generate_corpora).


rule corpus:
    output:
        target=f"{CORPUS['root']}/vox1_meta.csv",
        **({"pretrain": f"{CORPUS['pretrain_root']}/vox1_meta.csv"} if CORPUS["pretrain_root"] else {}),
    params:
        stage=f"{BASE}/local/make_embedded_corpus.sh",
        options=" ".join(
            f"--{key.replace('_', '-')} {value}"
            for key, value in sorted(config["embedded"].items())
            if value is not None and key != "nj"
        ),
        target_dir=lambda w, output: os.path.dirname(output.target),
        pretrain_dir=lambda w, output: os.path.dirname(output.pretrain) if "pretrain" in output.keys() else "",
    threads: config["embedded"]["nj"]
    resources:
        mem_mb=4000,
        runtime=30,
        cpus_per_task=config["embedded"]["nj"],
    log:
        "logs/corpus.log",
    benchmark:
        "benchmarks/corpus.tsv"
    conda:
        CONDA_ENV
    shell:
        "{params.stage} --no-progress --nj {threads} {params.options}"
        " {params.target_dir} {params.pretrain_dir} > {log} 2>&1"
