# Stage report: results/vox1_eer.txt, the configured system's metrics (a new system replaces it).
#
# Target:  results/vox1_eer.txt   (the main job)
# A copy of exp/<PLAN.system>/results.txt (written by the metrics stage, spectral-report).


rule report:
    """results/vox1_eer.txt: the configured system's metrics (a new system replaces it)."""
    input:
        f"exp/{PLAN.system}/results.txt",
    output:
        report("results/vox1_eer.txt", caption="../report/results.rst", category="Results", labels={"item": "EER and minDCF"}),
    params:
        system=PLAN.system,
    log:
        "logs/report.log",
    conda:
        CONDA_ENV
    shell:
        "cp {input} {output} 2> {log}"
