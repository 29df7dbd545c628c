# Stage drift: where each system's update went, per adapted matrix, against the top-k singular
# subspaces of the pre-trained backbone (principal angles, shares of ||dW||^2, singular-value
# change, rank of dW).
#
# Target:  exp/{system}/drift/{drift.tsv,drift.json,drift.png}   (any system; the comparison
#          builds it for every run). k: the system's adapter.top_k (spectralft, spectralft_rot),
#          else drift.top_k, else 64 (builtin) / 256 (wavlm, hubert); U_k, V_k and the singular
#          values of W come from the svd stage's factors at that k (PLAN.drift_inputs).
# Calls steps/drift.sh -> spectral-drift (spectral.drift.drift).


rule drift:
    input:
        unpack(lambda w: PLAN.drift_inputs(w.system)),
    output:
        tsv="exp/{system}/drift/drift.tsv",
        json="exp/{system}/drift/drift.json",
        png=report("exp/{system}/drift/drift.png", caption="../report/drift.rst", category="Drift",
                   labels={"system": "{system}"}),
    wildcard_constraints:
        system=PLAN.system_pattern(),
    params:
        stage=f"{BASE}/steps/drift.sh",
        top_k=lambda w: PLAN.drift_top_k(w.system),
        out_dir=lambda w, output: os.path.dirname(output.json),
    threads: 1
    resources:
        mem_mb=3000,
        runtime=30,
        cpus_per_task=1,
    log:
        "logs/drift/{system}.log",
    benchmark:
        "benchmarks/drift/{system}.tsv"
    conda:
        CONDA_ENV
    shell:
        "{params.stage} --top-k {params.top_k} --factors {input.factors} --threads {threads}"
        " {input.finetuned} {input.pretrained} {params.out_dir} > {log} 2>&1"
