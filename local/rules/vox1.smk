# Stage prepare for VoxCeleb1-layout corpora (the embedded corpus and a real VoxCeleb1), and
# optional VoxCeleb2-dev training data. Defines the corpus contract the other rule files read:
#   TRAIN_SET    the set fine-tuning trains on (data/<TRAIN_SET>/)
#   TRIAL_SETS   trial list -> the set holding data/<set>/trials/<list>, whose embeddings score it
#   ENROLL_MAPS  trial list -> enroll map (none here: VoxCeleb trials enroll single utterances)
# Real VoxCeleb1-E/H name utterances of dev speakers, so they live in vox1_all (every
# utterance); they overlap VoxCeleb1-dev, which the workflow warns about when it starts.
from snakemake.logging import logger

VOX1_CORPUS_TRIALS = ["vox1_O", "vox1_E", "vox1_H", "vox1_O_orig", "vox1_E_orig", "vox1_H_orig"]
# lists that name dev utterances in the real VoxCeleb1 (the embedded corpus's H list does not)
VOX1_ALL_TRIALS = [] if EMBEDDED else [t for t in TRIALS if t.startswith(("vox1_E", "vox1_H"))]
VOX2 = bool(CORPUS["vox2_root"])
TRAIN_SET = "vox1_vox2_dev" if VOX2 else "vox1_dev"
TRIAL_SETS = {t: "vox1_all" if t in VOX1_ALL_TRIALS else "vox1_test" for t in TRIALS}
# vox1_all holds every utterance of vox1_dev: the embed stage takes those embeddings instead of recomputing them
REUSE_FROM = {"vox1_all": TRAIN_SET}
ENROLL_MAPS = {}

if EMBEDDED and VOX2:
    raise WorkflowError("corpus.vox2_root adds VoxCeleb2-dev to a real VoxCeleb1 (corpus.name vox1); set it to null for the embedded corpus")
_bad = [t for t in TRIALS if t not in VOX1_CORPUS_TRIALS]
if _bad:
    raise WorkflowError(f"trials {_bad} are not VoxCeleb1 lists; corpus.name {CORPUS['name']!r} offers {VOX1_CORPUS_TRIALS}")
if VOX1_ALL_TRIALS:
    logger.warning(
        f"WARNING: trial lists {', '.join(VOX1_ALL_TRIALS)} name utterances of VoxCeleb1-dev speakers, and fine-tuning "
        f"trains on {TRAIN_SET}: those speakers were seen in training, so their EERs are optimistic and not comparable "
        "with systems trained on VoxCeleb2 only (vox1_O has no overlap)."
    )

rule prepare_target:
    input:
        meta=f"{CORPUS['root']}/vox1_meta.csv",
    output:
        dev="data/vox1_dev/wav.scp",
        test="data/vox1_test/wav.scp",
        all=["data/vox1_all/wav.scp"] if VOX1_ALL_TRIALS else [],
        trials=[f"data/{TRIAL_SETS[t]}/trials/{t}" for t in TRIALS],
    params:
        stage=f"{BASE}/local/prepare_vox1.sh",
        corpus=lambda w, input: os.path.dirname(input.meta),
        all_opts=f"--all-name vox1_all --all-trials {','.join(VOX1_ALL_TRIALS)}" if VOX1_ALL_TRIALS else "",
    resources:
        mem_mb=4000,
        runtime=120,
        cpus_per_task=1,
    log:
        "logs/prepare/vox1.log",
    benchmark:
        "benchmarks/prepare/vox1.tsv"
    conda:
        CONDA_ENV
    shell:
        "{params.stage} {params.all_opts} {params.corpus} data > {log} 2>&1"


if CORPUS["pretrain_root"]:

    rule prepare_pretrain:
        input:
            meta=f"{CORPUS['pretrain_root']}/vox1_meta.csv",
        output:
            "data/pretrain/wav.scp",
        params:
            stage=f"{BASE}/local/prepare_vox1.sh",
            corpus=lambda w, input: os.path.dirname(input.meta),
        resources:
            mem_mb=2000,
            runtime=30,
            cpus_per_task=1,
        log:
            "logs/prepare/pretrain.log",
        conda:
            CONDA_ENV
        shell:
            "{params.stage} --dev-name pretrain --test-name '' {params.corpus} data > {log} 2>&1"


if VOX2:

    rule prepare_vox2:
        """VoxCeleb2-dev; .m4a decoded through lhotse into data/vox2_dev/audio/ (ffmpeg needed)."""
        input:
            corpus=CORPUS["vox2_root"],
        output:
            "data/vox2_dev/wav.scp",
        params:
            stage=f"{BASE}/local/prepare_vox2.sh",
        threads: 8
        resources:
            mem_mb=8000,
            runtime=1440,
            cpus_per_task=8,
        log:
            "logs/prepare/vox2.log",
        benchmark:
            "benchmarks/prepare/vox2.tsv"
        conda:
            CONDA_ENV
        shell:
            "{params.stage} --nj {threads} {input.corpus} data > {log} 2>&1"

    rule combine_train:
        """VoxCeleb1-dev + VoxCeleb2-dev as one training set (Kaldi's combine_data.sh)."""
        input:
            "data/vox1_dev/wav.scp",
            "data/vox2_dev/wav.scp",
        output:
            f"data/{TRAIN_SET}/wav.scp",
        params:
            inputs=lambda w, input: " ".join(os.path.dirname(p) for p in input),
            out=lambda w, output: os.path.dirname(output[0]),
        resources:
            mem_mb=8000,
            runtime=60,
            cpus_per_task=1,
        log:
            "logs/prepare/combine_train.log",
        conda:
            CONDA_ENV
        shell:
            "spectral-combine-data {params.out} {params.inputs} > {log} 2>&1"
