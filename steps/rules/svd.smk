# Stage svd: the top-k (and bottom-b) singular triplets of every target matrix of the
# pre-trained backbone, with a spectra report and plot.
#
# Target:  exp/svd/{model}/k{k}_b{b}/{factors.pt,spectra.json,spectra.png}   (k, b: those a
#          system's adapter method needs, spectral.adapters.config.svd_factors_needed)
# Calls steps/svd.sh -> spectral-svd (spectral.svd.decompose_weights).


rule svd:
    input:
        checkpoint=PLAN.pretrained,
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
