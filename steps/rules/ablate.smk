# Stage ablate (a diagnostic): how much of a system's result its adapted matrices carry.
# spectral-ablate writes the system's final.pt with every adapted matrix (adapter.targets, e.g.
# q_proj and k_proj of every layer) zeroed, or reverted to the pre-trained backbone's; the
# ordinary embed, score and metrics rules then evaluate it as exp/{system}/ablate/{mode}/, and
# spectral-compare puts it beside the system with paired speaker-bootstrap intervals.
#
# Targets:  exp/{system}/ablate/{mode}/comparison.md    mode: zero | revert (revert: builtin only)
#           results/ablation.md                          both modes for the configured system
# Calls spectral-ablate (spectral.ablate.ablate_checkpoint) and spectral-compare
# (spectral.scoring.compare.compare) directly. Reads PLAN (the Snakefile's spectral.workflow.Plan).

ABLATE_MODES = ["zero", "revert"] if PLAN.builtin else ["zero"]


rule ablate:
    input:
        model="exp/{system}/final.pt",
        pretrained=lambda w: [PLAN.pretrained] if w.mode == "revert" else [],
    output:
        final="exp/{system}/ablate/{mode}/final.pt",
        log_tsv="exp/{system}/ablate/{mode}/train_log.tsv",
    wildcard_constraints:
        system=PLAN.system_pattern(),
        mode="|".join(ABLATE_MODES),
    params:
        pretrained=lambda w, input: f"--pretrained {input.pretrained[0]}" if input.pretrained else "",
        out_dir=lambda w, output: os.path.dirname(output.final),
    resources:
        mem_mb=2000,
        runtime=10,
        cpus_per_task=1,
    log:
        "logs/ablate/{system}/{mode}.log",
    conda:
        CONDA_ENV
    shell:
        "spectral-ablate --mode {wildcards.mode} {params.pretrained} {input.model} {params.out_dir} > {log} 2>&1"


rule ablation:
    """The system beside its ablated copy: EER/minDCF of each and the paired 95 % interval of the cost."""
    input:
        system="exp/{system}/results.txt",
        ablated="exp/{system}/ablate/{mode}/results.txt",
        trials=[PLAN.trials_files[t] for t in PLAN.scored],
    output:
        md="exp/{system}/ablate/{mode}/comparison.md",
        intervals="exp/{system}/ablate/{mode}/comparison_intervals.tsv",
    wildcard_constraints:
        system=PLAN.system_pattern(),
        mode="|".join(ABLATE_MODES),
    params:
        trials=" ".join(PLAN.scored),
        trials_files=" ".join(f"--trials-file {t} {PLAN.trials_files[t]}" for t in PLAN.scored),
        bootstrap=config["compare"]["bootstrap"],
        out_dir=lambda w, output: os.path.dirname(output.md),
    resources:
        mem_mb=1000,
        runtime=10,
        cpus_per_task=1,
    log:
        "logs/ablate/{system}/{mode}.compare.log",
    conda:
        CONDA_ENV
    shell:
        "spectral-compare --trials {params.trials} {params.trials_files} --bootstrap {params.bootstrap}"
        " --reference trained --paired-with --title 'Ablation ({wildcards.mode}) of {wildcards.system}'"
        " --note 'dEER of {wildcards.mode}: what setting the adapted matrices to {wildcards.mode} costs'"
        " --run trained 1 exp/{wildcards.system} --run {wildcards.mode} 1 {params.out_dir}"
        " --out-dir {params.out_dir} > {log} 2>&1"


rule ablation_report:
    """results/ablation.md: every ablation of the configured system."""
    input:
        expand("exp/{system}/ablate/{mode}/comparison.md", system=PLAN.system, mode=ABLATE_MODES),
    output:
        "results/ablation.md",
    log:
        "logs/ablate/report.log",
    conda:
        CONDA_ENV
    shell:
        "cat {input} > {output} 2> {log}"
