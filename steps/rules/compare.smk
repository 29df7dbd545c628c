# The method comparison: every method of config['compare'] x every seed, trained on the same
# pre-trained backbone, scored on the same lists, tabulated with mean ± std over seeds.
#
# Target:  results/comparison.md  (+ comparison.png, comparison.tsv, comparison_drift.png: the
#          drift stage of every run, steps/rules/drift.smk)
# The runs (COMPARE_RUNS: label, seed, system) are registered in train.smk, so each is an
# ordinary system: exp/<system>/{final.pt,train_log.tsv,results.txt}.


rule compare:
    """Tabulate and plot EER/minDCF (mean ± std over seeds), parameters, training time and spectral drift of every method."""
    input:
        results=[f"exp/{system}/results.txt" for _, _, system in COMPARE_RUNS],
        logs=[f"exp/{system}/train_log.tsv" for _, _, system in COMPARE_RUNS],
        drift=[f"exp/{system}/drift/drift.json" for _, _, system in COMPARE_RUNS],
    output:
        md="results/comparison.md",
        png="results/comparison.png",
        tsv="results/comparison.tsv",
        drift_png="results/comparison_drift.png",
    params:
        runs=" ".join(f"--run {label} {seed} exp/{system}" for label, seed, system in COMPARE_RUNS),
        trials=" ".join(TRIALS),
        reference=config["compare"]["reference"],
        title=f"SpectralFT and baselines on {config['corpus']['name']} ({config['model']['backbone']} backbone)",
        out_dir=lambda w, output: os.path.dirname(output.md),
    resources:
        mem_mb=1000,
        runtime=10,
        cpus_per_task=1,
    log:
        "logs/compare.log",
    conda:
        CONDA_ENV
    shell:
        "spectral-compare --trials {params.trials} --reference {params.reference} --title {params.title:q}"
        " --drift --out-dir {params.out_dir} {params.runs} > {log} 2>&1"
