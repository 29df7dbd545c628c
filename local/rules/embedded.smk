# Stage corpus: the embedded VoxCeleb1-shaped target corpus and its pre-training corpus.


def _embedded_options(wildcards=None):
    """Command-line options for spectral-make-corpus from config['embedded'] (nulls omitted)."""
    opts = []
    for key, value in sorted(config["embedded"].items()):
        if value is not None and key != "nj":
            opts.append(f"--{key.replace('_', '-')} {value}")
    return " ".join(opts)


rule corpus:
    output:
        target=f"{CORPUS['root']}/vox1_meta.csv",
        pretrain=f"{CORPUS['pretrain_root']}/vox1_meta.csv",
    params:
        options=_embedded_options(),
        target_dir=CORPUS["root"],
        pretrain_dir=CORPUS["pretrain_root"],
    threads: config["embedded"]["nj"]
    resources:
        mem_mb=4000,
        runtime=30,
        cpus_per_task=config["embedded"]["nj"],
    log:
        "logs/corpus.log",
    benchmark:
        "benchmarks/corpus.tsv"
    shell:
        "local/make_embedded_corpus.sh --nj {threads} {params.options}"
        " --target-dir {params.target_dir} --pretrain-dir {params.pretrain_dir} > {log} 2>&1"
