# The method comparison: every method of config['compare'] x every seed, trained on the same
# pre-trained backbone, scored on the same lists, tabulated with mean ± std over seeds and
# paired speaker-bootstrap 95 % intervals of ΔEER/ΔminDCF against the reference and LoRA.
#
# Target:  results/comparison.md  (+ comparison.png, comparison.tsv, comparison_intervals.tsv,
#          comparison_drift.png: the drift stage of every run, steps/rules/drift.smk)
# The runs (PLAN.compare_runs: label, lr value, seed, system) are systems of PLAN.systems, so each
# is an ordinary system: exp/<system>/{final.pt,train_log.tsv,results.txt}. With compare.lr_grid
# (needs finetune.dev_speakers), the checkpoint select_lr first trains every method at every
# grid value with the first seed and keeps the value with the lowest dev_val EER (from the dev_val
# score files alone); the table then holds every seed at the chosen values. The test lists play
# no part in the choice, and a grid run that is not kept is neither embedded nor scored on them.
# Calls spectral-select-lr (spectral.scoring.select.select) and spectral-compare
# (spectral.scoring.compare.compare) directly.
from spectral.scoring.select import read_selection
from spectral.workflow import DEV_LIST


# label -> the lr value select_lr chose (read once it ran), or None without a grid
SELECTION = (lambda: read_selection(checkpoints.select_lr.get().output.tsv)) if config["compare"]["lr_grid"] else (lambda: None)


if config["compare"]["lr_grid"]:

    checkpoint select_lr:
        """Per method, the backbone lr scale of compare.lr_grid with the lowest dev_val EER (first seed only)."""
        input:
            # the development list only: a grid run that is not kept is never embedded on the test set
            scores=[f"exp/{system}/scores/{DEV_LIST}.score" for _, _, system in PLAN.lr_grid_runs()],
            trials=PLAN.trials_files[DEV_LIST],
        output:
            tsv="results/lr_selection.tsv",
        params:
            runs=" ".join(f"--run {label} {value:g} exp/{system}" for label, value, system in PLAN.lr_grid_runs()),
            dev=DEV_LIST,
        resources:
            mem_mb=500,
            runtime=5,
            cpus_per_task=1,
        log:
            "logs/select_lr.log",
        conda:
            CONDA_ENV
        shell:
            "spectral-select-lr --dev-trials {params.dev} --dev-trials-file {input.trials} --out {output.tsv}"
            " {params.runs} > {log} 2>&1"


rule compare:
    """Tabulate and plot EER/minDCF (mean ± std over seeds), parameters, training time and spectral drift of every method."""
    input:
        unpack(lambda w: PLAN.compare_inputs(SELECTION())),
    output:
        md=report("results/comparison.md", caption="../report/comparison_table.rst", category="Comparison",
                  labels={"item": "table (markdown)"}),
        png=report("results/comparison.png", caption="../report/comparison_figure.rst", category="Comparison",
                   labels={"item": "figure"}),
        tsv=report("results/comparison.tsv", caption="../report/comparison_tsv.rst", category="Comparison",
                   labels={"item": "every run (tsv)"}),
        intervals=report("results/comparison_intervals.tsv", caption="../report/comparison_intervals.rst",
                         category="Comparison", labels={"item": "bootstrap intervals (tsv)"}),
        drift_png=report("results/comparison_drift.png", caption="../report/comparison_drift.rst", category="Comparison",
                         labels={"item": "spectral drift (figure)"}),
    params:
        runs=lambda w, input: PLAN.compare_run_options(SELECTION()),
        trials_files=" ".join(f"--trials-file {t} {path}" for t, path in PLAN.trials_files.items()),
        bootstrap=config["compare"]["bootstrap"],
        trials=" ".join(PLAN.scored),
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
        " --drift --out-dir {params.out_dir} {params.runs} > {log} 2>&1"
