# SpectralFT pipeline. Main job:  snakemake --cores 8 results/vox1_eer.txt   (see README.md)
# Every setting is in conf/config.yaml, checked against conf/config.schema.yaml.
import os

from snakemake.exceptions import WorkflowError
from snakemake.utils import min_version, validate

from spectral.workflow import Plan, PlanError, corpus_contract

min_version("9.0")


BASE = workflow.basedir  # stage scripts are called from here, whatever --directory is


configfile: f"{BASE}/conf/config.yaml"


# snakemake --report results/report.html [target]: figures and tables flagged with report()
report: "steps/report/workflow.rst"


validate(config, f"{BASE}/conf/config.schema.yaml")

# every job sees the project's venv first on PATH, C collation and unbuffered Python
shell.prefix(f". {BASE}/path.sh; ")

# The software of every rule, for `snakemake --use-conda` on machines without ./setup.sh's
# .venv; its post-deploy script installs this project into the env from SPECTRAL_ROOT.
CONDA_ENV = f"{BASE}/conf/envs/spectral.yaml"
os.environ.setdefault("SPECTRAL_ROOT", BASE)

CORPUS = config["corpus"]
EMBEDDED = CORPUS["name"] == "embedded"
TRIALS = config["trials"]
# local/rules/<corpus>.smk: the corpus's prepare rules, and CORPUS_CONTRACT (spectral.workflow.
# CorpusContract: training set, the set of every trial list, enroll maps, ...), checked when made.
CORPUS_RULES = {
    "embedded": ["local/rules/embedded.smk", "local/rules/vox1.smk"],
    "vox1": ["local/rules/vox1.smk"],
    "cnceleb1": ["local/rules/cnceleb1.smk"],
}


wildcard_constraints:
    set=r"[A-Za-z0-9_]+",


rule all:
    """The main job: every stage for the configured system, ending in Kaldi's EER and minDCF."""
    input:
        "results/vox1_eer.txt",


# PLAN (spectral.workflow.Plan): the systems, and the input files and options of every stage,
# from config + CORPUS_CONTRACT. The stage rule files below read PLAN and config only, so they
# may be included in any order.
try:
    for corpus_rules in CORPUS_RULES[CORPUS["name"]]:

        include: corpus_rules

    PLAN = Plan(config, globals().get("CORPUS_CONTRACT"), BASE)
except PlanError as err:
    raise WorkflowError(str(err)) from None


rule features:
    """Data only: corpus, manifests, trials and fbank of every set."""
    input:
        expand("data/{set}/feats.scp", set=PLAN.sets),
        list(PLAN.trials_files.values()),


# one rule file per stage, each calling its steps/<stage>.sh or, where the stage needs no shell
# logic, its spectral-<stage> command (README, "Stages")
include: "steps/rules/features.smk"
include: "steps/rules/augment.smk"
include: "steps/rules/pretrain.smk"
include: "steps/rules/svd.smk"
include: "steps/rules/dev_trials.smk"
include: "steps/rules/finetune.smk"
include: "steps/rules/embed.smk"
include: "steps/rules/score.smk"
include: "steps/rules/metrics.smk"
include: "steps/rules/report.smk"
include: "steps/rules/drift.smk"
include: "steps/rules/ablate.smk"
include: "steps/rules/compare.smk"
include: "steps/rules/export.smk"
