"""The workflow's plan: what every rule reads, derived from the config and the corpus, without torch.

The Snakefile builds one :class:`Plan` from the validated config and the corpus's
:class:`CorpusContract` (each ``local/rules/<corpus>.smk`` makes one with :func:`corpus_contract`,
checked when it is made), before any stage's rule file is included; the rule files
(``steps/rules/<stage>.smk``) read it and nothing else. So no rule file depends on another's
globals or on the order of the includes, and the logic lives here, where tests reach it
without Snakemake:

- the systems: the configured one and every run of ``config['compare']``, each with its full
  training settings (its name from :func:`spectral.train.config.system_name`);
- the input files of each stage, by name, and the options that pass them on (:func:`file_options`);
- what an adapter method needs (SVD factors at which k and bottom, the drift k) comes from
  :mod:`spectral.adapters.config`, not from the rule files.

Settings that cannot work together raise :class:`PlanError` (a ValueError) naming them; the
Snakefile turns it into a WorkflowError, so ``snakemake -n`` stops before any work. Importing
this module imports neither torch nor Snakemake (tests/test_workflow_plan.py).
"""

from __future__ import annotations

import copy
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from spectral.adapters.config import drift_top_k, svd_factors_needed
from spectral.train.config import resolve_config, system_name

#: Config sections that make up a system's training settings (its name hashes them).
TRAIN_SECTIONS = ("model", "backend", "adapter", "pretrain", "finetune", "augment")
#: Noise/RIR kind -> (its augment.* source directory key, its parts key).
AUGMENT_KINDS = {"noise": ("noise_dir", "musan_parts"), "rir": ("rir_dir", "rirs_parts")}
#: A data set's name (data/<set>/), as the Snakefile's wildcard constraint has it.
SET_NAME = re.compile(r"[A-Za-z0-9_]+")
#: The development trial list over held-out training speakers (finetune.dev_speakers > 0).
DEV_LIST = "dev_val"
#: The pretrain stage's output: the builtin backbone every builtin system starts from.
PRETRAINED_BUILTIN = "exp/pretrain/builtin/final.pt"


class PlanError(ValueError):
    """Settings the workflow cannot plan; the message names them."""


@dataclass(frozen=True)
class CorpusContract:
    """What a corpus's rule file tells the corpus-agnostic rule files.

    ``train_set``: the set fine-tuning trains on (``data/<train_set>/``); ``trial_sets``: every
    configured trial list -> the set holding ``data/<set>/trials/<list>``, whose embeddings
    score it; ``enroll_maps``: trial list -> its enroll map (models averaging several
    utterances, CN-Celeb); ``reuse_from``: set -> the set whose embeddings it may reuse (it
    holds that set's utterances); ``train_speakers``: the digest of the training speakers read
    from the corpus's lists (None where they cannot be read before the workflow runs);
    ``train_source``: any other setting that decides the training data. The last two are in
    every system's name.
    """

    train_set: str
    trial_sets: Mapping[str, str]
    enroll_maps: Mapping[str, str] = field(default_factory=dict)
    reuse_from: Mapping[str, str] = field(default_factory=dict)
    train_speakers: str | None = None
    train_source: Mapping[str, Any] = field(default_factory=dict)


def corpus_contract(trials: Iterable[str], **fields: Any) -> CorpusContract:
    """A :class:`CorpusContract` from ``fields``, checked against the configured ``trials``.

    Raises PlanError naming what is missing or wrong: an unknown field, a set name that is not
    a name, a configured list without a set (or a set for a list not configured), an enroll map
    or reuse entry for an unknown list or set.
    """
    known = set(CorpusContract.__dataclass_fields__)
    if set(fields) - known or "train_set" not in fields or "trial_sets" not in fields:
        raise PlanError(f"a corpus contract takes {', '.join(sorted(known))} (train_set and trial_sets required), "
                        f"got {', '.join(sorted(fields))}")
    c = CorpusContract(**fields)
    trials = list(trials)
    sets = {c.train_set, *c.trial_sets.values(), *c.reuse_from}
    bad = sorted(s for s in sets if not isinstance(s, str) or not SET_NAME.fullmatch(s))
    if bad:
        raise PlanError(f"corpus contract: set names must match {SET_NAME.pattern}, got {bad}")
    if set(c.trial_sets) != set(trials):
        raise PlanError(f"corpus contract: trial_sets must name the set of every configured trial list {trials}, "
                        f"got {sorted(c.trial_sets)}")
    if set(c.enroll_maps) - set(trials):
        raise PlanError(f"corpus contract: enroll_maps {sorted(set(c.enroll_maps) - set(trials))} are not configured lists")
    if c.train_speakers is not None and not isinstance(c.train_speakers, str):
        raise PlanError(f"corpus contract: train_speakers must be a digest or None, got {c.train_speakers!r}")
    if not isinstance(c.train_source, Mapping):
        raise PlanError(f"corpus contract: train_source must be a mapping, got {c.train_source!r}")
    return c


def shipped_dir(path: str, base: str | None = None) -> str:
    """Where a builtin backbone's ``model.path`` (a shipped backbone directory) is: as given when it is
    absolute or exists from the work directory, else under ``base`` (the checkout, which ships
    ``models/builtin``) when it exists there."""
    if os.path.isabs(path) or os.path.isdir(path) or base is None:
        return path
    in_base = os.path.join(base, path)
    return in_base if os.path.isdir(in_base) else path


def file_options(files: Mapping[str, str], flags: Mapping[str, str]) -> str:
    """``--flag path`` for every key of ``flags`` (key -> flag) that ``files`` has, in ``flags``' order."""
    return " ".join(f"{flag} {files[key]}" for key, flag in flags.items() if key in files)


#: The training stages' options for their input files, in the order they are passed.
TRAIN_FLAGS = {"backbone": "--backbone-checkpoint", "factors": "--factors", "dev_speakers": "--exclude-speakers"}
AUGMENT_FLAGS = {"noise_manifest": "--noise-manifest", "rir_manifest": "--rir-manifest"}
SCORE_FLAGS = {"mean": "--mean-scp", "cohort": "--cohort-scp", "enroll_map": "--enroll-map"}


class Plan:
    """Everything the rule files read, from the validated ``config`` and the corpus's ``contract``."""

    def __init__(self, config: Mapping[str, Any], contract: CorpusContract, base: str | None = None) -> None:
        if not isinstance(contract, CorpusContract):
            raise PlanError(f"the corpus rule file must set CORPUS_CONTRACT = corpus_contract(...), got {contract!r}")
        self.config, self.contract = config, contract
        self.corpus = config["corpus"]
        self.embedded = self.corpus["name"] == "embedded"
        self.train_set = contract.train_set
        self.trials = list(config["trials"])
        self.dev_speakers = config["finetune"]["dev_speakers"]
        self.trial_sets = dict(contract.trial_sets)
        self.trials_files = {t: f"data/{self.trial_sets[t]}/trials/{t}" for t in self.trials}
        if self.dev_speakers:
            self.trial_sets[DEV_LIST] = self.train_set
            self.trials_files[DEV_LIST] = f"data/{self.train_set}/trials/{DEV_LIST}"
            if config["embed"]["cohort_utts"] is not None:
                raise PlanError("finetune.dev_speakers scores dev_val from the training set's embeddings, which "
                                "embed.cohort_utts would cut to a subset: leave embed.cohort_utts null")
        self.scored = self.trials + ([DEV_LIST] if self.dev_speakers else [])
        # the training set's Kaldi directory, passed as --train-data-dir: its wav.scp is what the prepare
        # rules declare (utt2spk, which the check reads, is written beside it)
        self.train_wav_scp = f"data/{self.train_set}/wav.scp"
        self.eval_sets = sorted(set(contract.trial_sets.values()))
        self.sets = [self.train_set] + self.eval_sets + (["pretrain"] if self.corpus["pretrain_root"] else [])
        model = config["model"]
        self.builtin = model["backbone"] == "builtin"
        self.model_name = "builtin" if self.builtin else os.path.basename(os.path.normpath(model["path"]))
        # the checkpoint the svd and drift stages decompose: our pretrain output (pre-trained here or
        # installed from a shipped backbone), or the transformers dir
        self.pretrained = PRETRAINED_BUILTIN if self.builtin else model["path"]
        self.shipped = shipped_dir(model["path"], base) if self.builtin and model["path"] else None
        if self.builtin and not self.shipped and not self.corpus["pretrain_root"]:
            raise PlanError("model.backbone builtin needs a pre-trained backbone: model.path (a shipped backbone "
                            "directory, e.g. models/builtin) or corpus.pretrain_root (a pre-training corpus to "
                            "pre-train on here)")
        self.systems: dict[str, dict[str, Any]] = {}
        self.system = self._add_system()
        self.compare_runs = self._compare_runs()

    # -- systems

    def train_data(self) -> dict[str, Any]:
        """The ``data`` section of every system: corpus, root, training set and its speakers."""
        c = self.contract
        return {"corpus": self.corpus["name"], "root": os.path.normpath(self.corpus["root"]), "train_set": c.train_set,
                "speakers": c.train_speakers, "source": copy.deepcopy(dict(c.train_source))}

    def _add_system(self, overrides: Mapping[str, Mapping[str, Any]] | None = None) -> str:
        """Register the system of config + ``overrides`` ({section: {key: value}}); return its name."""
        settings = {s: copy.deepcopy(self.config[s]) for s in TRAIN_SECTIONS}
        for section, values in (overrides or {}).items():
            settings[section].update(values)
        settings["data"] = self.train_data()
        try:  # settings that cannot work together stop `snakemake -n`, not a stage hours later
            name = system_name(resolve_config(settings, features=self.config["features"]))
        except ValueError as err:
            raise PlanError(f"config: {err}") from None
        self.systems[name] = settings
        return name

    def _compare_runs(self) -> list[tuple[str, float | None, int, str]]:
        """(label, value, seed, system) of every run the comparison may need (config['compare']).

        value is the finetune.backbone_lr_scale of compare.lr_grid the run trains with, or None
        without a grid (and for frozen, which trains nothing in the backbone)."""
        compare = self.config["compare"]
        grid = compare["lr_grid"]
        if grid and not self.dev_speakers:
            raise PlanError("compare.lr_grid chooses each method's lr on the development trials: set "
                            "finetune.dev_speakers > 0 (never on the test lists), or compare.lr_grid: [] to train "
                            "every method at its configured finetune.backbone_lr_scale")
        runs = []
        for method in compare["methods"]:
            overrides = {k: v for k, v in method.items() if k != "label"}
            frozen = overrides.get("adapter", {}).get("method", self.config["adapter"]["method"]) == "frozen"
            for value in (grid if grid and not frozen else [None]):
                for seed in compare["seeds"]:
                    settings = copy.deepcopy(overrides)
                    settings.setdefault("finetune", {})["seed"] = seed
                    if value is not None:
                        settings["finetune"]["backbone_lr_scale"] = value
                    runs.append((method["label"], value, seed, self._add_system(settings)))
        return runs

    def system_pattern(self) -> str:
        """The wildcard constraint of {system}: exactly the known systems."""
        return "|".join(re.escape(s) for s in self.systems)

    def lr_grid_runs(self) -> list[tuple[str, float, str]]:
        """(label, value, system) of the lr grid's runs that select_lr compares (the first seed only)."""
        first = self.config["compare"]["seeds"][0]
        return [(label, value, system) for label, value, seed, system in self.compare_runs
                if value is not None and seed == first]

    def compare_table_runs(self, selection: Mapping[str, float] | None = None) -> list[tuple[str, int, str]]:
        """(label, seed, system) of the comparison: with lr_grid, each method at the value select_lr
        chose on the development trials (``selection``: label -> value), else every run."""
        return [(label, seed, system) for label, value, seed, system in self.compare_runs
                if value is None or (selection is not None and selection.get(label) == value)]

    def compare_inputs(self, selection: Mapping[str, float] | None = None) -> dict[str, list[str]]:
        runs = self.compare_table_runs(selection)
        return {
            "results": [f"exp/{system}/results.txt" for _, _, system in runs],
            "logs": [f"exp/{system}/train_log.tsv" for _, _, system in runs],
            "scores": [f"exp/{system}/scores/{t}.score" for _, _, system in runs for t in self.scored],
            "trials": list(self.trials_files.values()),
            "drift": [f"exp/{system}/drift/drift.json" for _, _, system in runs],
        }

    def compare_run_options(self, selection: Mapping[str, float] | None = None) -> str:
        return " ".join(f"--run {label} {seed} exp/{system}" for label, seed, system in self.compare_table_runs(selection))

    # -- the input files of each stage

    def gpus(self, section: str) -> int:
        """GPUs a job of ``section`` (pretrain, finetune, embed) asks the scheduler for."""
        return 1 if self.config[section]["device"] == "cuda" else 0

    def augment_source(self, kind: str) -> str:
        """The directory the ``kind`` manifest lists: the configured one, else <corpus root>/<kind>."""
        return self.config["augment"][AUGMENT_KINDS[kind][0]] or f"{self.corpus['root']}/{kind}"

    def augment_source_input(self, kind: str) -> dict[str, str]:
        if self.embedded and not self.config["augment"][AUGMENT_KINDS[kind][0]]:
            return {"corpus": f"{self.corpus['root']}/vox1_meta.csv"}  # noise/ and rir/ come with the corpus
        return {"source": self.augment_source(kind)}

    def augment_inputs(self, settings: Mapping[str, Any]) -> dict[str, str]:
        """The augment stage's manifests that training with ``settings`` reads (shared by every system)."""
        a, inputs = settings["augment"], {}
        for kind, prob, key in (("noise", "noise_prob", "noise_manifest"), ("rir", "reverb_prob", "rir_manifest")):
            if a[prob] > 0:
                for setting in AUGMENT_KINDS[kind]:
                    if a[setting] != self.config["augment"][setting]:
                        raise PlanError(
                            f"a system sets augment.{setting} to {a[setting]!r}, the config to "
                            f"{self.config['augment'][setting]!r}: the {kind} recordings (data/augment/) are shared "
                            "by every system")
                inputs[key] = f"data/augment/{kind}_recordings.jsonl.gz"
        return inputs

    def pretrain_inputs(self) -> dict[str, str]:
        # wav.scp stands for the Kaldi directory data/pretrain/ (the prepare rule's declared output)
        return {**self.augment_inputs(self.config), "feats": "data/pretrain/feats.scp",
                "wav_scp": "data/pretrain/wav.scp"}

    def pretrain_options(self) -> str:
        return file_options(self.pretrain_inputs(), AUGMENT_FLAGS)

    def factors(self, top_k: int, bottom: int = 0) -> str:
        """The svd stage's factors.pt of the configured backbone at ``top_k`` (and ``bottom``)."""
        return f"exp/svd/{self.model_name}/k{top_k}_b{bottom}/factors.pt"

    def finetune_inputs(self, system: str) -> dict[str, str]:
        settings = self.systems[system]
        inputs = {"wav_scp": f"data/{self.train_set}/wav.scp", **self.augment_inputs(settings)}
        if settings["model"]["backbone"] == "builtin":
            inputs["feats"] = f"data/{self.train_set}/feats.scp"  # wavlm/hubert read wav.scp only
            inputs["backbone"] = PRETRAINED_BUILTIN
        dev = settings["finetune"]["dev_speakers"]
        if dev != self.dev_speakers:
            raise PlanError(
                f"system {system} sets finetune.dev_speakers to {dev}, the config to {self.dev_speakers}: the "
                "held-out development speakers (data/<train set>/dev_speakers) are shared by every system")
        if dev:
            inputs["dev_speakers"] = f"data/{self.train_set}/dev_speakers"
        a = settings["adapter"]
        needed = svd_factors_needed(a["method"], a["top_k"], a["rank"])
        if needed:
            inputs["factors"] = self.factors(*needed)
        return inputs

    def finetune_options(self, system: str) -> str:
        inputs = self.finetune_inputs(system)
        train, augment = file_options(inputs, TRAIN_FLAGS), file_options(inputs, AUGMENT_FLAGS)
        return f"{train} {augment}" if train else augment

    def embed_inputs(self, system: str, data_set: str) -> dict[str, str]:
        inputs = {"model": f"exp/{system}/final.pt",
                  "table": f"data/{data_set}/feats.scp" if self.builtin else f"data/{data_set}/wav.scp",
                  "train": self.train_wav_scp}  # final.pt must have been trained on this set
        source = self.contract.reuse_from.get(data_set)
        score = self.config["score"]
        if source is not None and (score["mean_subtraction"] or score["asnorm"]):
            # the training set's embeddings, reused by a trial set holding its utterances
            inputs["reuse"] = f"exp/{system}/embeddings/{source}/xvector.scp"
        return inputs

    def embed_options(self, system: str, data_set: str) -> str:
        inputs, opts = self.embed_inputs(system, data_set), []
        if "reuse" in inputs:
            opts += ["--reuse", os.path.dirname(inputs["reuse"])]  # spectral-embed reads the directory's xvector.scp
        if data_set == self.train_set and self.config["embed"]["cohort_utts"] is not None:
            opts += ["--subset", str(self.config["embed"]["cohort_utts"])]
        return " ".join(opts)

    def score_inputs(self, system: str, trials: str) -> dict[str, str]:
        score = self.config["score"]
        inputs = {
            "test": f"exp/{system}/embeddings/{self.trial_sets[trials]}/xvector.scp",
            "trials": self.trials_files[trials],
            "model": f"exp/{system}/final.pt",  # checked against the configured training set
            "train": self.train_wav_scp,
        }
        if score["mean_subtraction"]:
            inputs["mean"] = f"exp/{system}/embeddings/{self.train_set}/xvector.scp"
        if score["asnorm"]:
            inputs["cohort"] = f"exp/{system}/embeddings/{self.train_set}/spk_xvector.scp"
        if trials in self.contract.enroll_maps:  # enrollment models average their utterances (CN-Celeb)
            inputs["enroll_map"] = self.contract.enroll_maps[trials]
        return inputs

    def score_options(self, system: str, trials: str) -> str:
        inputs = self.score_inputs(system, trials)
        opts = ["--checkpoint", inputs["model"], "--train-data-dir", os.path.dirname(inputs["train"])]
        for key, flag in SCORE_FLAGS.items():
            if key in inputs:
                opts += [flag, inputs[key]]
                if key == "cohort":
                    opts += ["--top-n", str(self.config["score"]["asnorm_top_n"])]
        return " ".join(opts)

    def drift_top_k(self, system: str) -> int:
        """k of a system's drift (:func:`spectral.adapters.config.drift_top_k`)."""
        settings = self.systems[system]
        a = settings["adapter"]
        return drift_top_k(a["method"], a["top_k"], settings["model"]["backbone"], self.config["drift"]["top_k"])

    def drift_inputs(self, system: str) -> dict[str, str]:
        return {"finetuned": f"exp/{system}/final.pt", "pretrained": self.pretrained,
                "factors": self.factors(self.drift_top_k(system))}

    def export_inputs(self, system: str) -> dict[str, str]:
        """final.pt and, for peft/, the pre-trained backbone and factors.pt the system was fine-tuned from."""
        finetune = self.finetune_inputs(system)
        return {"model": f"exp/{system}/final.pt", **{k: finetune[k] for k in ("backbone", "factors") if k in finetune}}

    def export_options(self, system: str) -> str:
        return file_options(self.export_inputs(system), TRAIN_FLAGS)
