# Stage score: cosine scores of one trial list (mean subtraction, AS-norm, enroll maps as
# configured), refusing embeddings of a final.pt trained on another training set.
#
# Target:  exp/{system}/scores/{trials}.score
# Calls spectral-score (spectral.scoring.score.score_trials) directly: the stage needs no shell
# logic (steps/score.sh scores and reports one list by hand, outside the workflow).


rule score:
    input:
        unpack(lambda w: PLAN.score_inputs(w.system, w.trials)),
    output:
        "exp/{system}/scores/{trials}.score",
    params:
        options=lambda w: PLAN.score_options(w.system, w.trials),
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
