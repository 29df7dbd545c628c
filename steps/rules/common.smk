# Functions of the rule files, kept apart from the rules as snakemake --lint asks. They are
# called while rules are defined or jobs are planned, and read the globals the Snakefile and
# the rule files set (config, CORPUS, TRAIN_SET, SYSTEMS, BUILTIN, MODEL_NAME, ...).
import copy

from snakemake.exceptions import WorkflowError

from spectral.adapters.api import USES_FACTORS
from spectral.drift import DEFAULT_TOP_K, TOP_K_METHODS
from spectral.train.config import resolve_config, system_name

TRAIN_SECTIONS = ("model", "backend", "adapter", "pretrain", "finetune", "augment")
SYSTEMS = {}  # system name -> its training settings, filled by add_system (train.smk)
AUGMENT_KINDS = {"noise": ("noise_dir", "musan_parts"), "rir": ("rir_dir", "rirs_parts")}


# -- augment.smk: noise and RIR manifests


def augment_source(kind):
    """The directory the ``kind`` manifest lists: the configured one, else <corpus root>/<kind>."""
    return config["augment"][AUGMENT_KINDS[kind][0]] or f"{CORPUS['root']}/{kind}"



def augment_manifest(settings, kind):
    """data/augment/<kind>_recordings.jsonl.gz, after checking ``settings`` use the configured sources."""
    for key in AUGMENT_KINDS[kind]:
        if settings["augment"][key] != config["augment"][key]:
            raise WorkflowError(
                f"a system sets augment.{key} to {settings['augment'][key]!r}, the config to "
                f"{config['augment'][key]!r}: the {kind} recordings (data/augment/) are shared by every system"
            )
    return f"data/augment/{kind}_recordings.jsonl.gz"



def _augment_source_input(w):
    source = augment_source(w.kind)
    if EMBEDDED and not config["augment"][AUGMENT_KINDS[w.kind][0]]:
        return {"corpus": f"{CORPUS['root']}/vox1_meta.csv"}  # noise/ and rir/ come with the corpus
    return {"source": source}


# -- train.smk: systems, training inputs and options


def train_data():
    """The ``data`` section of every system: corpus, root, training set and its speakers (the corpus rules')."""
    return {"corpus": CORPUS["name"], "root": os.path.normpath(CORPUS["root"]), "train_set": TRAIN_SET,
            "speakers": TRAIN_SPEAKERS, "source": copy.deepcopy(TRAIN_SOURCE)}



def add_system(overrides=None):
    """Register the system of config + ``overrides`` ({section: {key: value}}) trained on the
    configured corpus's training set (:func:`train_data`, part of the name); return its name."""
    settings = {s: copy.deepcopy(config[s]) for s in TRAIN_SECTIONS}
    for section, values in (overrides or {}).items():
        settings[section].update(values)
    settings["data"] = train_data()
    try:  # settings that cannot work together stop `snakemake -n`, not a stage hours later
        name = system_name(resolve_config(settings, features=config["features"]))
    except ValueError as err:
        raise WorkflowError(f"config: {err}") from None
    SYSTEMS[name] = settings
    return name



def _compare_runs():
    """(label, value, seed, system) of every run the comparison may need (config['compare']).

    value is the finetune.backbone_lr_scale of compare.lr_grid the run trains with, or None
    without a grid (and for frozen, which trains nothing in the backbone)."""
    grid = config["compare"]["lr_grid"]
    if grid and not DEV_SPEAKERS:
        raise WorkflowError("compare.lr_grid chooses each method's lr on the development trials: set "
                            "finetune.dev_speakers > 0 (never on the test lists)")
    runs = []
    for method in config["compare"]["methods"]:
        overrides = {k: v for k, v in method.items() if k != "label"}
        frozen = overrides.get("adapter", {}).get("method", config["adapter"]["method"]) == "frozen"
        for value in (grid if grid and not frozen else [None]):
            for seed in config["compare"]["seeds"]:
                settings = copy.deepcopy(overrides)
                settings.setdefault("finetune", {})["seed"] = seed
                if value is not None:
                    settings["finetune"]["backbone_lr_scale"] = value
                runs.append((method["label"], value, seed, add_system(settings)))
    return runs



def _chosen_runs(selection=None):
    """(label, seed, system) of the comparison: with lr_grid, each method at the value the
    select_lr checkpoint chose on the development trials (``selection``: label -> value)."""
    chosen = []
    for label, value, seed, system in COMPARE_RUNS:
        if value is None or (selection is not None and selection.get(label) == value):
            chosen.append((label, seed, system))
    return chosen



def _selection():
    """label -> chosen value, read from the select_lr checkpoint's output (once it ran)."""
    from spectral.scoring.select import read_selection

    return read_selection(checkpoints.select_lr.get().output.tsv)



def _compare_table_runs():
    """The runs the comparison tabulates: chosen by select_lr with a grid, else every run."""
    return _chosen_runs(_selection() if config["compare"]["lr_grid"] else None)



def _compare_inputs(w):
    runs = _compare_table_runs()
    return {
        "results": [f"exp/{system}/results.txt" for _, _, system in runs],
        "logs": [f"exp/{system}/train_log.tsv" for _, _, system in runs],
        "scores": [f"exp/{system}/scores/{t}.score" for _, _, system in runs for t in SCORED],
        "trials": list(TRIALS_FILES.values()),
        "drift": [f"exp/{system}/drift/drift.json" for _, _, system in runs],
    }



def _compare_run_options(w, input):
    return " ".join(f"--run {label} {seed} exp/{system}" for label, seed, system in _compare_table_runs())



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



def _finetune_inputs(w):
    settings = SYSTEMS[w.system]
    inputs = {"wav_scp": f"data/{TRAIN_SET}/wav.scp", **_augment_inputs(settings)}
    if settings["model"]["backbone"] == "builtin":
        inputs["feats"] = f"data/{TRAIN_SET}/feats.scp"  # wavlm/hubert read wav.scp only
        inputs["backbone"] = "exp/pretrain/builtin/final.pt"
    dev = settings["finetune"]["dev_speakers"]
    if dev != DEV_SPEAKERS:
        raise WorkflowError(
            f"system {w.system} sets finetune.dev_speakers to {dev}, the config to {DEV_SPEAKERS}: the held-out "
            "development speakers (data/<train set>/dev_speakers) are shared by every system"
        )
    if dev:
        inputs["dev_speakers"] = f"data/{TRAIN_SET}/dev_speakers"
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
    if "dev_speakers" in input.keys():
        opts += ["--exclude-speakers", input.dev_speakers]
    return " ".join(opts + [_augment_options(input)])


# -- evaluate.smk: svd source, scoring inputs and options


def _svd_source():
    """The checkpoint the svd stage decomposes: our pretrain output, or the transformers dir."""
    return "exp/pretrain/builtin/final.pt" if BUILTIN else config["model"]["path"]



def _embed_reuse(w):
    """The training set's embeddings, reused by a trial set holding its utterances (REUSE_FROM)."""
    source = REUSE_FROM.get(w.set)
    if source is None or not (config["score"]["mean_subtraction"] or config["score"]["asnorm"]):
        return {}
    return {"reuse": f"exp/{w.system}/embeddings/{source}/xvector.scp"}


def _embed_options(w, input):
    opts = []
    if "reuse" in input.keys():
        opts += ["--reuse", os.path.dirname(input.reuse)]
    if w.set == TRAIN_SET and config["embed"]["cohort_utts"] is not None:
        opts += ["--subset", str(config["embed"]["cohort_utts"])]
    return " ".join(opts)


def _score_inputs(w):
    inputs = {
        "test": f"exp/{w.system}/embeddings/{TRIAL_SETS[w.trials]}/xvector.scp",
        "trials": TRIALS_FILES[w.trials],
        "model": f"exp/{w.system}/final.pt",  # checked against the configured training set
        "train": f"data/{TRAIN_SET}/wav.scp",
    }
    if config["score"]["mean_subtraction"]:
        inputs["mean"] = f"exp/{w.system}/embeddings/{TRAIN_SET}/xvector.scp"
    if config["score"]["asnorm"]:
        inputs["cohort"] = f"exp/{w.system}/embeddings/{TRAIN_SET}/spk_xvector.scp"
    if w.trials in ENROLL_MAPS:  # enrollment models average their utterances (CN-Celeb)
        inputs["enroll_map"] = ENROLL_MAPS[w.trials]
    return inputs



def _score_options(w, input):
    opts = ["--checkpoint", input.model, "--train-data-dir", os.path.dirname(input.train)]
    if "mean" in input.keys():
        opts += ["--mean-scp", input.mean]
    if "cohort" in input.keys():
        opts += ["--cohort-scp", input.cohort, "--top-n", str(config["score"]["asnorm_top_n"])]
    if "enroll_map" in input.keys():
        opts += ["--enroll-map", input.enroll_map]
    return " ".join(opts)


# -- export.smk: what the peft conversion reads beside final.pt


def _export_inputs(w):
    """final.pt and, for peft/, the pre-trained backbone and factors.pt the system was fine-tuned from."""
    inputs = {"model": f"exp/{w.system}/final.pt"}
    finetune = _finetune_inputs(w)
    for key in ("backbone", "factors"):
        if key in finetune:
            inputs[key] = finetune[key]
    return inputs



def _export_options(w, input):
    opts = []
    if "backbone" in input.keys():
        opts += ["--backbone-checkpoint", input.backbone]
    if "factors" in input.keys():
        opts += ["--factors", input.factors]
    return " ".join(opts)



# -- drift.smk: k and inputs of the drift stage


def drift_top_k(system):
    """k of a system's drift: its adapter.top_k (spectral methods), else drift.top_k, else by backbone."""
    settings = SYSTEMS[system]
    if settings["adapter"]["method"] in TOP_K_METHODS:
        return settings["adapter"]["top_k"]
    return config["drift"]["top_k"] or DEFAULT_TOP_K[settings["model"]["backbone"]]



def _drift_inputs(w):
    return {
        "finetuned": f"exp/{w.system}/final.pt",
        "pretrained": _svd_source(),
        "factors": f"exp/svd/{MODEL_NAME}/k{drift_top_k(w.system)}_b0/factors.pt",
    }
