# Stage prepare for CN-Celeb1 (a local copy of OpenSLR 82): dev speakers for training, the
# eval set (enroll + test utterances), and per protocol an enroll map and Kaldi trials:
# cnceleb1_concat (CNC-Eval-Concat: the concatenated eval/enroll/ file of each model) and
# cnceleb1_avg (CNC-Eval-Avg: the average over eval/lists/enroll.map's utterances). Sets
# CORPUS_CONTRACT (spectral.workflow.CorpusContract), as every local/rules/<corpus>.smk does.
# Calls local/prepare_cnceleb1.sh -> spectral-prepare-cnceleb1 (spectral.corpora.cnceleb1.prepare).
from spectral.corpora.cnceleb1 import PROTOCOLS, train_speakers_digest

CNCELEB1_TRIALS = list(PROTOCOLS)
CORPUS_CONTRACT = corpus_contract(
    TRIALS,
    train_set="cnceleb1_dev",
    trial_sets={t: "cnceleb1_eval" for t in TRIALS},
    reuse_from={},  # the evaluation set shares no utterance with the training set
    enroll_maps={t: f"data/cnceleb1_eval/enroll_maps/{t}" for t in TRIALS},
    train_speakers=train_speakers_digest(CORPUS["root"]),  # dev/dev.lst, read now (null where not there yet)
    train_source={},
)

_bad = [t for t in TRIALS if t not in CNCELEB1_TRIALS]
if _bad:
    raise WorkflowError(f"trials {_bad} are not CN-Celeb1 lists; corpus.name 'cnceleb1' offers {CNCELEB1_TRIALS}")
if CORPUS["pretrain_root"] or CORPUS["vox2_root"]:
    raise WorkflowError("corpus.pretrain_root and corpus.vox2_root are VoxCeleb settings; set them to null for cnceleb1")


rule prepare_cnceleb1:
    input:
        dev_lst=f"{CORPUS['root']}/dev/dev.lst",
        trials_lst=f"{CORPUS['root']}/eval/lists/trials.lst",
    output:
        dev="data/cnceleb1_dev/wav.scp",
        eval="data/cnceleb1_eval/wav.scp",
        enroll_maps=[CORPUS_CONTRACT.enroll_maps[t] for t in TRIALS],
        trials=expand("data/cnceleb1_eval/trials/{trials}", trials=TRIALS),
    params:
        stage=f"{BASE}/local/prepare_cnceleb1.sh",
        trials=",".join(TRIALS),
        corpus=lambda w, input: os.path.dirname(os.path.dirname(input.dev_lst)),
    resources:
        mem_mb=4000,
        runtime=120,
        cpus_per_task=1,
    log:
        "logs/prepare/cnceleb1.log",
    benchmark:
        "benchmarks/prepare/cnceleb1.tsv"
    conda:
        CONDA_ENV
    shell:
        "{params.stage} --trials {params.trials} {params.corpus} data > {log} 2>&1"
