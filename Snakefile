# SpectralFT pipeline. Main job:  snakemake --cores 8 results/vox1_eer.txt   (see README.md)
# Every setting is in conf/config.yaml, checked against conf/config.schema.yaml.
import os

from snakemake.exceptions import WorkflowError
from snakemake.utils import min_version, validate

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
# local/rules/<corpus>.smk: the corpus's prepare rules and its contract with the rule files
# below: TRAIN_SET (fine-tuning data), TRIAL_SETS (list -> set holding it), ENROLL_MAPS.
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


for corpus_rules in CORPUS_RULES[CORPUS["name"]]:

    include: corpus_rules


EVAL_SETS = sorted(set(TRIAL_SETS.values()))
SETS = [TRAIN_SET] + EVAL_SETS + (["pretrain"] if CORPUS["pretrain_root"] else [])


# the Kaldi trials file of every configured list: data/<set>/trials/<name>
TRIALS_FILES = {t: f"data/{TRIAL_SETS[t]}/trials/{t}" for t in TRIALS}
# finetune.dev_speakers > 0: training speakers held out of fine-tuning, with their own trial
# list dev_val (steps/rules/dev.smk), scored beside the test lists; hyper-parameters are
# chosen on it, never on the test lists.
DEV_SPEAKERS = config["finetune"]["dev_speakers"]
if DEV_SPEAKERS:
    TRIAL_SETS["dev_val"] = TRAIN_SET
    TRIALS_FILES["dev_val"] = f"data/{TRAIN_SET}/trials/dev_val"
SCORED = TRIALS + (["dev_val"] if DEV_SPEAKERS else [])
if DEV_SPEAKERS and config["embed"]["cohort_utts"] is not None:
    raise WorkflowError(
        "finetune.dev_speakers scores dev_val from the training set's embeddings, which embed.cohort_utts "
        "would cut to a subset: leave embed.cohort_utts null"
    )


rule features:
    """Data only: corpus, manifests, trials and fbank of every set."""
    input:
        expand("data/{set}/feats.scp", set=SETS),
        list(TRIALS_FILES.values()),


include: "steps/rules/common.smk"
include: "steps/rules/features.smk"
include: "steps/rules/dev.smk"
include: "steps/rules/augment.smk"
include: "steps/rules/train.smk"
include: "steps/rules/evaluate.smk"
include: "steps/rules/drift.smk"
include: "steps/rules/ablate.smk"
include: "steps/rules/compare.smk"
include: "steps/rules/export.smk"
