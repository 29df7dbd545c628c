# The method comparison: every method of config['compare'] x every seed, trained on the same
# pre-trained backbone, scored on the same lists, tabulated with mean ± std over seeds and
# paired speaker-bootstrap 95 % intervals of ΔEER/ΔminDCF against the reference and LoRA.
#
# Target:  results/comparison.md  (+ comparison.png, comparison.tsv)
# The runs (COMPARE_RUNS: label, seed, system) are registered in train.smk, so each is an
# ordinary system: exp/<system>/{final.pt,train_log.tsv,results.txt}.


rule compare:
    """Tabulate and plot EER/minDCF (mean ± std over seeds), parameters and training time of every method."""
    input:
        results=[f"exp/{system}/results.txt" for _, _, system in COMPARE_RUNS],
        logs=[f"exp/{system}/train_log.tsv" for _, _, system in COMPARE_RUNS],
        scores=[f"exp/{system}/scores/{t}.score" for _, _, system in COMPARE_RUNS for t in SCORED],
        trials=list(TRIALS_FILES.values()),
    output:
        md="results/comparison.md",
        png="results/comparison.png",
        tsv="results/comparison.tsv",
        intervals="results/comparison_intervals.tsv",
    params:
        runs=" ".join(f"--run {label} {seed} exp/{system}" for label, seed, system in COMPARE_RUNS),
        trials_files=" ".join(f"--trials-file {t} {path}" for t, path in TRIALS_FILES.items()),
        bootstrap=config["compare"]["bootstrap"],
        trials=" ".join(SCORED),
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
        "spectral-compare --trials {params.trials} {params.trials_files} --bootstrap {params.bootstrap}"
        " --reference {params.reference} --title {params.title:q}"
        " --out-dir {params.out_dir} {params.runs} > {log} 2>&1"
