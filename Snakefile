# SpectralFT pipeline. Main job:  snakemake --cores 8 results/vox1_eer.txt   (see README.md)
# Every setting is in conf/config.yaml, checked against conf/config.schema.yaml.
import os

from snakemake.utils import min_version, validate

min_version("9.0")


BASE = workflow.basedir  # stage scripts are called from here, whatever --directory is


configfile: f"{BASE}/conf/config.yaml"


validate(config, f"{BASE}/conf/config.schema.yaml")

# every job sees the project's venv first on PATH, C collation and unbuffered Python
shell.prefix(f". {BASE}/path.sh; ")

CORPUS = config["corpus"]
EMBEDDED = CORPUS["name"] == "embedded"
TRIALS = config["trials"]
SETS = ["vox1_dev", "vox1_test"] + (["pretrain"] if CORPUS["pretrain_root"] else [])


wildcard_constraints:
    set=r"[A-Za-z0-9_]+",


rule all:
    """The main job: every stage for the configured system, ending in Kaldi's EER and minDCF."""
    input:
        "results/vox1_eer.txt",


rule features:
    """Data only: corpus, manifests, trials and fbank of every set."""
    input:
        expand("data/{set}/feats.scp", set=SETS),
        expand("data/vox1_test/trials/{trials}", trials=TRIALS),


if EMBEDDED:

    include: "local/rules/embedded.smk"


include: "steps/rules/prepare.smk"
include: "steps/rules/features.smk"
include: "steps/rules/train.smk"
include: "steps/rules/evaluate.smk"
