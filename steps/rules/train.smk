# Stages pretrain and finetune: the built-in backbone on the pre-training corpus, then the
# configured adapter method + speaker back-end on the training speakers.
#
# Targets:  exp/pretrain/builtin/final.pt       (only where model.backbone is builtin)
#           exp/{system}/final.pt               (SYSTEM: the configured system; others via add_system)
# A system's name comes from spectral.train.config.system_name, so two configurations never
# share an exp/ folder; SYSTEMS maps every known name to its full training settings, and the
# finetune rule reads them back by wildcard, so each setting is a param of that system only.
import copy
import json
import re

from spectral.adapters.api import USES_FACTORS
from spectral.train.config import resolve_config, system_name

TRAIN_SECTIONS = ("model", "backend", "adapter", "pretrain", "finetune", "augment")
SYSTEMS = {}


def add_system(overrides=None):
    """Register the system of config + ``overrides`` ({section: {key: value}}); return its name."""
    settings = {s: copy.deepcopy(config[s]) for s in TRAIN_SECTIONS}
    for section, values in (overrides or {}).items():
        settings[section].update(values)
    name = system_name(resolve_config(settings))
    SYSTEMS[name] = settings
    return name


SYSTEM = add_system()


def _compare_runs():
    """(label, seed, system) of every run of the comparison (config['compare'])."""
    runs = []
    for method in config["compare"]["methods"]:
        overrides = {k: v for k, v in method.items() if k != "label"}
        for seed in config["compare"]["seeds"]:
            settings = copy.deepcopy(overrides)
            settings.setdefault("finetune", {})["seed"] = seed
            runs.append((method["label"], seed, add_system(settings)))
    return runs


COMPARE_RUNS = _compare_runs()  # registered here: the finetune rule's wildcard takes every system
BUILTIN = config["model"]["backbone"] == "builtin"
MODEL_NAME = "builtin" if BUILTIN else os.path.basename(os.path.normpath(config["model"]["path"]))


def _augment_inputs(settings):
    """The augment stage's manifests (steps/rules/augment.smk) that training with ``settings`` reads."""
    a, inputs = settings["augment"], {}
    if a["noise_prob"] > 0:
        inputs["noise_manifest"] = augment_manifest(settings, "noise")
    if a["reverb_prob"] > 0:
        inputs["rir_manifest"] = augment_manifest(settings, "rir")
    return inputs


def _augment_options(input):
    """--noise-manifest/--rir-manifest options of the training stages, from their inputs."""
    keys = [k for k in ("noise_manifest", "rir_manifest") if k in input.keys()]
    return " ".join(f"--{k.replace('_', '-')} {getattr(input, k)}" for k in keys)


def _gpu(section):
    return 1 if config[section]["device"] == "cuda" else 0


if BUILTIN:

    rule pretrain:
        input:
            unpack(lambda w: _augment_inputs(config)),
            feats="data/pretrain/feats.scp",
            utt2spk="data/pretrain/wav.scp",
        output:
            final="exp/pretrain/builtin/final.pt",
        params:
            stage=f"{BASE}/steps/pretrain.sh",
            config=json.dumps({s: config[s] for s in ("model", "backend", "pretrain", "augment")}, sort_keys=True),
            augment=lambda w, input: _augment_options(input),
            nproc=1,
            data="data/pretrain",
            exp_dir=lambda w, output: os.path.dirname(output.final),
        threads: max(1, config["pretrain"]["threads"] or 2)
        resources:
            mem_mb=3000,
            runtime=60,
            cpus_per_task=lambda w, threads: threads,
            gpu=_gpu("pretrain"),
        log:
            "logs/pretrain/builtin.log",
        benchmark:
            "benchmarks/pretrain/builtin.tsv"
        shell:
            "{params.stage} --nproc {params.nproc} --config {params.config:q} {params.augment}"
            " {params.data} {params.exp_dir} > {log} 2>&1"


def _finetune_inputs(w):
    settings = SYSTEMS[w.system]
    inputs = {"wav_scp": f"data/{TRAIN_SET}/wav.scp", **_augment_inputs(settings)}
    if settings["model"]["backbone"] == "builtin":
        inputs["feats"] = f"data/{TRAIN_SET}/feats.scp"  # wavlm/hubert read wav.scp only
        inputs["backbone"] = "exp/pretrain/builtin/final.pt"
    if settings["adapter"]["method"] in USES_FACTORS:
        a = settings["adapter"]
        bottom = a["rank"] if a["method"] == "milora" else 0
        inputs["factors"] = f"exp/svd/{MODEL_NAME}/k{a['top_k']}_b{bottom}/factors.pt"
    return inputs


def _finetune_options(w, input):
    opts = []
    if "backbone" in input.keys():
        opts += ["--backbone-checkpoint", input.backbone]
    if "factors" in input.keys():
        opts += ["--factors", input.factors]
    return " ".join(opts + [_augment_options(input)])


rule finetune:
    input:
        unpack(_finetune_inputs),
    output:
        final="exp/{system}/final.pt",
        log_tsv="exp/{system}/train_log.tsv",
    wildcard_constraints:
        system="|".join(re.escape(s) for s in SYSTEMS) if SYSTEMS else "NONE",
    params:
        stage=f"{BASE}/steps/finetune.sh",
        config=lambda w: json.dumps(SYSTEMS[w.system], sort_keys=True),
        options=_finetune_options,
        nproc=1,
        data=f"data/{TRAIN_SET}",
        exp_dir=lambda w, output: os.path.dirname(output.final),
    threads: max(1, config["finetune"]["threads"] or 2)
    resources:
        mem_mb=3000,
        runtime=60,
        cpus_per_task=lambda w, threads: threads,
        gpu=_gpu("finetune"),
    log:
        "logs/finetune/{system}.log",
    benchmark:
        "benchmarks/finetune/{system}.tsv"
    shell:
        "{params.stage} --nproc {params.nproc} --config {params.config:q} {params.options}"
        " {params.data} {params.exp_dir} > {log} 2>&1"
