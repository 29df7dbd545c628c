# SpectralFT pipeline. Main job:  snakemake --cores 8 features   (see README.md)
# Every setting is in conf/config.yaml, checked against conf/config.schema.yaml.
import os

from snakemake.utils import min_version, validate

min_version("9.0")


BASE = workflow.basedir  # stage scripts are called from here, whatever --directory is


configfile: f"{BASE}/conf/config.yaml"


validate(config, f"{BASE}/conf/config.schema.yaml")

CORPUS = config["corpus"]
EMBEDDED = CORPUS["name"] == "embedded"
TRIALS = config["trials"]
SETS = ["vox1_dev", "vox1_test"] + (["pretrain"] if CORPUS["pretrain_root"] else [])


wildcard_constraints:
    set=r"[A-Za-z0-9_]+",


rule features:
    """The furthest target of the pipeline so far: corpus, manifests, trials and fbank."""
    input:
        expand("data/{set}/feats.scp", set=SETS),
        expand("data/vox1_test/trials/{trials}", trials=TRIALS),


if EMBEDDED:

    include: "local/rules/embedded.smk"


include: "steps/rules/prepare.smk"
include: "steps/rules/features.smk"
