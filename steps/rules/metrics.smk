# Stage metrics: Kaldi's EER and minDCF of every scored list of one system, with DET plots.
#
# Target:  exp/{system}/results.txt, exp/{system}/scores/{trials}.{metrics.json,det.png}
# Calls spectral-report (spectral.scoring.report.write_report) directly.


rule metrics:
    """Kaldi's EER and minDCF of every trial list of one system, with DET plots."""
    input:
        scores=expand("exp/{{system}}/scores/{trials}.score", trials=PLAN.scored),
        trials=[PLAN.trials_files[t] for t in PLAN.scored],
    output:
        results="exp/{system}/results.txt",
        metrics=expand("exp/{{system}}/scores/{trials}.metrics.json", trials=PLAN.scored),
        det=[
            report(
                f"exp/{{system}}/scores/{t}.det.png",
                caption="../report/det.rst",
                category="Results",
                subcategory="DET curves",
                labels={"system": "{system}", "trial list": t},
            )
            for t in PLAN.scored
        ],
    params:
        lists=lambda w, input: " ".join(
            f"--list {t} {tr} {sc}" for t, tr, sc in zip(PLAN.scored, input.trials, input.scores)
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
