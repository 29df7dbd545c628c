"""Settings of the pretrain and finetune stages, and the system name derived from them.

The pipeline config (``conf/config.yaml``, schema ``conf/config.schema.yaml``) has one
section per dataclass here: ``model`` (:class:`~spectral.models.ModelConfig`), ``backend``
(:class:`~spectral.models.BackendConfig`), ``adapter``
(:class:`~spectral.adapters.AdapterConfig`), ``pretrain`` and ``finetune``
(:class:`TrainConfig` each) and ``augment`` (:class:`AugmentConfig`); the workflow adds
``data`` (:class:`DataConfig`: the corpus and training set, from ``corpus`` and the corpus's
rule file). Every value is checked when the config is built, before any work; unknown keys
are an error naming them.

A *system* is backbone + the data it was trained on + adapter method + its hyper-parameters +
seed; :func:`system_name` derives its ``exp/`` folder name from them, e.g.
``builtin_spectralft_k64_r4_s1_3f9c2a1e`` (the last part hashes every remaining setting,
the training data included), so two configurations, or two corpora, never share a folder.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from spectral.settings import Settings, check_int as _check_int, check_number as _check_number, help_meta as _meta, strict_from_dict
from spectral.adapters.config import IGNORED_FIELDS, SPECTRAL_METHODS, AdapterConfig, matches_target
from spectral.augment import MUSAN_PARTS, RIRS_PARTS
from spectral.errors import InputError, read_utf8
from spectral.models.config import BackendConfig, ModelConfig, builtin_linear_shapes

OPTIMIZERS = ("sgd", "adam", "adamw")
PRECISIONS = ("fp32", "bf16", "fp16")  # as spectral.train.precision.PRECISIONS
DEVICES = ("auto", "cpu", "cuda")
#: Pre-training objectives of the builtin backbone (TrainConfig.objective).
OBJECTIVES = ("speaker", "masked")
#: TrainConfig fields that only the masked objective reads; with objective speaker they, and
#: objective itself, are left out of system names and fingerprints (see :func:`effective_train_dict`),
#: so the speaker objective's systems keep the names they had before the masked one existed.
OBJECTIVE_FIELDS = ("objective", "mask_prob", "mask_span")


@dataclass
class TrainConfig(Settings):
    """Optimisation of one training stage (pretrain or finetune); every field carries its help text."""

    epochs: int = field(default=4, metadata=_meta("Training epochs."))
    steps_per_epoch: int | None = field(
        default=None, metadata=_meta("Optimiser steps per epoch; null = training utterances / batch size, rounded up."))
    batch_size: int = field(default=64, metadata=_meta("Global batch size (split evenly over processes under DDP)."))
    utts_per_speaker: int = field(
        default=1, metadata=_meta("Utterances of each sampled speaker in a batch (speaker-balanced sampling); must divide batch_size."))
    crop_seconds: float = field(default=2.0, metadata=_meta("Length of the random fixed-length training crops, seconds."))
    optimizer: str = field(default="adamw", metadata=_meta("Optimiser: sgd (with momentum), adam or adamw."))
    lr: float = field(default=2e-3, metadata=_meta("Peak learning rate."))
    backbone_lr_scale: float = field(
        default=1.0,
        metadata=_meta("The backbone's trainable tensors (adapters, or the whole backbone for full) learn at lr times "
                       "this, in a parameter group of their own; the back-end and speaker head at lr."))
    momentum: float = field(default=0.9, metadata=_meta("SGD momentum (sgd only)."))
    weight_decay: float = field(default=1e-4, metadata=_meta("Weight decay."))
    lr_decay: float = field(default=0.97, metadata=_meta("Learning rate multiplied by this after every epoch (exponential schedule)."))
    warmup_steps: int = field(default=0, metadata=_meta("Linear warm-up steps from lr/warmup to lr at the start."))
    grad_clip: float = field(default=0.0, metadata=_meta("Clip the gradient norm to this value; 0 disables clipping."))
    margin_ramp: float = field(
        default=0.5,
        metadata=_meta("Share of the stage's steps over which the AAM-softmax margin rises linearly from 0 to "
                       "backend.margin; 0 applies the full margin from the first step."))
    val_utts_per_speaker: int = field(
        default=1, metadata=_meta("Utterances of each training speaker held out for validation (speakers with fewer than two keep all)."))
    dev_speakers: int = field(
        default=0,
        metadata=_meta("finetune: training speakers held out of fine-tuning for the development trial list dev_val "
                       "(stage dev_trials), on which hyper-parameters are chosen; 0 holds out none."))
    dev_trials: int = field(default=4000, metadata=_meta("finetune: trials of the development list dev_val (about half targets)."))
    checkpoint_every: int = field(default=50, metadata=_meta("Write checkpoints/last.pt every this many steps (and after every epoch)."))
    bn_recalibration_batches: int = field(
        default=20,
        metadata=_meta("After every epoch, re-estimate batch-norm statistics from this many un-augmented training batches "
                       "with the epoch's final weights (the running averages lag the weights: 10% vs 27% held-out "
                       "pre-training accuracy); 0 keeps the running averages."))
    init_backend: bool = field(
        default=True,
        metadata=_meta("finetune, builtin backbone: start the back-end (not the speaker head) from the pre-trained checkpoint's; false starts it at random "
                       "(required after pretrain.objective masked, which trains no back-end)."))
    objective: str = field(
        default="speaker",
        metadata=_meta("pretrain: what the builtin backbone learns. speaker: AAM-softmax speaker classification through "
                       "the back-end. masked: self-supervised masked prediction, as WavLM and HuBERT are pre-trained: "
                       "time spans of the input fbank are replaced by a learned mask vector and a linear head predicts "
                       "the original frames from the last hidden state (L1 loss on masked frames only); the back-end "
                       "and speaker head stay at their random initialisation, so finetune needs init_backend: false. "
                       "finetune: speaker only."))
    mask_prob: float = field(
        default=0.4,
        metadata=_meta("pretrain, objective masked: share of each crop's frames that is masked, in non-overlapping "
                       "spans of mask_span frames (round(mask_prob x frames / mask_span) spans, placed uniformly)."))
    mask_span: int = field(
        default=10, metadata=_meta("pretrain, objective masked: length of each masked span, in fbank frames (10 ms)."))
    seed: int = field(default=1, metadata=_meta("Seed of initialisation, sampling, cropping, augmentation and dropout."))
    threads: int = field(default=0, metadata=_meta("torch intra-op threads per process; 0 keeps torch's default."))
    device: str = field(default="auto", metadata=_meta("auto (cuda when available), cpu or cuda."))
    distributed: bool = field(
        default=False, metadata=_meta("Use DistributedDataParallel when started by torchrun (WORLD_SIZE > 1): gloo on CPU, nccl on GPU."))
    precision: str = field(
        default="fp32",
        metadata=_meta("fp32, bf16 or fp16: autocast precision of backbone and back-end (weights, SVD factors and the "
                       "adapted weight stay float32; fp16 adds a gradient scaler that skips overflowing steps)."))
    num_workers: int = field(
        default=0,
        metadata=_meta("DataLoader worker processes reading and augmenting crops ahead of the step (0: in the training "
                       "process); crops are the same for any value, so resuming stays exact."))

    def __post_init__(self) -> None:
        s = "train"
        _check_int(s, "epochs", self.epochs, 1)
        if self.steps_per_epoch is not None:
            _check_int(s, "steps_per_epoch", self.steps_per_epoch, 1)
        _check_int(s, "batch_size", self.batch_size, 1)
        _check_int(s, "utts_per_speaker", self.utts_per_speaker, 1)
        if self.batch_size % self.utts_per_speaker:
            raise ValueError(f"{s}.utts_per_speaker ({self.utts_per_speaker}) must divide batch_size ({self.batch_size})")
        _check_number(s, "crop_seconds", self.crop_seconds, 0.0, low_open=True)
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"{s}.optimizer must be one of {', '.join(OPTIMIZERS)}, got {self.optimizer!r}")
        _check_number(s, "lr", self.lr, 0.0, low_open=True)
        _check_number(s, "backbone_lr_scale", self.backbone_lr_scale, 0.0, low_open=True)
        _check_number(s, "margin_ramp", self.margin_ramp, 0.0, 1.0)
        _check_number(s, "momentum", self.momentum, 0.0, 1.0)
        _check_number(s, "weight_decay", self.weight_decay, 0.0)
        _check_number(s, "lr_decay", self.lr_decay, 0.0, 1.0, low_open=True)
        _check_int(s, "warmup_steps", self.warmup_steps, 0)
        _check_number(s, "grad_clip", self.grad_clip, 0.0)
        _check_int(s, "val_utts_per_speaker", self.val_utts_per_speaker, 0)
        _check_int(s, "checkpoint_every", self.checkpoint_every, 1)
        _check_int(s, "dev_speakers", self.dev_speakers, 0)
        if self.dev_speakers == 1:
            raise ValueError(f"{s}.dev_speakers must be 0 or at least 2 (a trial list needs two speakers), got 1")
        _check_int(s, "dev_trials", self.dev_trials, 2)
        _check_int(s, "bn_recalibration_batches", self.bn_recalibration_batches, 0)
        if self.objective not in OBJECTIVES:
            raise ValueError(f"{s}.objective must be one of {', '.join(OBJECTIVES)}, got {self.objective!r}")
        _check_number(s, "mask_prob", self.mask_prob, 0.0, 1.0, low_open=True)
        if self.mask_prob == 1.0:
            raise ValueError(f"{s}.mask_prob must be below 1 (some frames must stay visible), got 1.0")
        _check_int(s, "mask_span", self.mask_span, 1)
        _check_int(s, "seed", self.seed, 0)
        _check_int(s, "threads", self.threads, 0)
        if self.device not in DEVICES:
            raise ValueError(f"{s}.device must be one of {', '.join(DEVICES)}, got {self.device!r}")
        if not isinstance(self.init_backend, bool):
            raise ValueError(f"{s}.init_backend must be true or false, got {self.init_backend!r}")
        if not isinstance(self.distributed, bool):
            raise ValueError(f"{s}.distributed must be true or false, got {self.distributed!r}")
        if self.precision not in PRECISIONS:
            raise ValueError(f"{s}.precision must be one of {', '.join(PRECISIONS)}, got {self.precision!r}")
        _check_int(s, "num_workers", self.num_workers, 0)

    SECTION = "train"

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], section: str = "train") -> "TrainConfig":
        try:
            return strict_from_dict(cls, data, section)
        except ValueError as err:
            raise ValueError(str(err).replace("train.", f"{section}.", 1)) from None


@dataclass
class AugmentConfig(Settings):
    """Data augmentation of training crops; every field carries its help text."""

    noise_prob: float = field(default=0.0, metadata=_meta("Probability of adding a noise recording to a training crop."))
    reverb_prob: float = field(default=0.0, metadata=_meta("Probability of convolving a training crop with a room impulse response."))
    snr_min: float = field(default=0.0, metadata=_meta("Lowest signal-to-noise ratio of added noise, dB."))
    snr_max: float = field(default=15.0, metadata=_meta("Highest signal-to-noise ratio of added noise, dB."))
    noise_dir: str | None = field(
        default=None,
        metadata=_meta("Local noise directory, listed by the augment stage with lhotse: a MUSAN tree (music/ speech/ noise/; "
                       "parts in musan_parts) or any directory, whose .wav/.flac files below it are all used; "
                       "null = <corpus root>/noise."))
    rir_dir: str | None = field(
        default=None,
        metadata=_meta("Local room impulse response directory, listed by the augment stage with lhotse: a RIRS_NOISES tree "
                       "(simulated_rirs/ real_rirs_isotropic_noises/; parts in rirs_parts) or any directory, whose "
                       ".wav/.flac files below it are all used; null = <corpus root>/rir."))
    musan_parts: list[str] = field(
        default_factory=lambda: ["music", "noise"],
        metadata=_meta("MUSAN parts used as noise when noise_dir is a MUSAN tree: music, speech, noise. speech is left out "
                       "by default: one competing talker at these SNRs blurs the speaker label (Kaldi's recipe mixes 3-7 "
                       "talkers at 13-20 dB as babble)."))
    rirs_parts: list[str] = field(
        default_factory=lambda: ["sim_rir"],
        metadata=_meta("RIRS_NOISES parts used when rir_dir is a RIRS_NOISES tree: sim_rir (simulated rooms, as Kaldi's "
                       "VoxCeleb recipe) and real_rir (measured; of a multi-channel response the first channel is used)."))
    time_masks: int = field(default=0, metadata=_meta("SpecAugment: time masks per crop (0 disables)."))
    time_mask_width: int = field(default=10, metadata=_meta("SpecAugment: widest time mask, in backbone input frames (fbank frames or 20 ms SSL frames)."))
    freq_masks: int = field(default=0, metadata=_meta("SpecAugment: frequency masks per crop (fbank backbones only; 0 disables)."))
    freq_mask_width: int = field(default=8, metadata=_meta("SpecAugment: widest frequency mask, in mel bins."))

    def __post_init__(self) -> None:
        s = "augment"
        _check_number(s, "noise_prob", self.noise_prob, 0.0, 1.0)
        _check_number(s, "reverb_prob", self.reverb_prob, 0.0, 1.0)
        _check_number(s, "snr_min", self.snr_min, -math.inf)
        _check_number(s, "snr_max", self.snr_max, -math.inf)
        if self.snr_min > self.snr_max:
            raise ValueError(f"augment.snr_min ({self.snr_min}) must not exceed augment.snr_max ({self.snr_max})")
        for name, known in (("musan_parts", MUSAN_PARTS), ("rirs_parts", tuple(RIRS_PARTS))):
            value = getattr(self, name)
            if isinstance(value, str) or not isinstance(value, (list, tuple)) or not value or any(v not in known for v in value):
                raise ValueError(f"augment.{name} must be a non-empty list of {', '.join(known)}, got {value!r}")
            setattr(self, name, list(value))
        for name in ("time_masks", "freq_masks"):
            _check_int(s, name, getattr(self, name), 0)
        for name in ("time_mask_width", "freq_mask_width"):
            _check_int(s, name, getattr(self, name), 1)

    @property
    def waveform(self) -> bool:
        """Whether crops need the waveform (noise or reverberation are on)."""
        return self.noise_prob > 0 or self.reverb_prob > 0

    SECTION = "augment"


def effective_train_dict(tcfg: TrainConfig) -> dict[str, Any]:
    """``tcfg.to_dict()`` without the fields its objective does not read (:data:`OBJECTIVE_FIELDS` for speaker)."""
    d = tcfg.to_dict()
    if tcfg.objective == "speaker":
        for key in OBJECTIVE_FIELDS:
            d.pop(key)
    return d


#: TrainConfig fields that change how a run goes, not what it computes: in no system name or fingerprint.
RUNTIME_FIELDS = ("threads", "device", "distributed", "checkpoint_every", "num_workers")


def identity_train_dict(tcfg: TrainConfig) -> dict[str, Any]:
    """The settings of a training section that decide its result: :func:`effective_train_dict`
    without :data:`RUNTIME_FIELDS`, and without ``precision`` when it is fp32 (names and last.pt
    of before mixed precision stay valid). System names and the stages' fingerprints hash it."""
    d = effective_train_dict(tcfg)
    for key in RUNTIME_FIELDS:
        d.pop(key)
    if d["precision"] == "fp32":
        d.pop("precision")
    return d


@dataclass
class DataConfig(Settings):
    """What fine-tuning trains on: corpus and training set. Part of the system's identity; the
    workflow fills it in (:meth:`spectral.workflow.Plan.train_data`), a bare command line may leave it empty."""

    corpus: str | None = field(default=None, metadata=_meta("corpus.name: embedded, vox1 or cnceleb1."))
    root: str | None = field(default=None, metadata=_meta("corpus.root: the corpus directory, as configured."))
    train_set: str | None = field(default=None, metadata=_meta("The training set's name (data/<train_set>/), e.g. vox1_dev."))
    speakers: str | None = field(
        default=None,
        metadata=_meta("Digest of the training speakers (spectral.train.trainset.speakers_digest) read from the "
                       "corpus's own speaker list when the workflow starts; null where it cannot be read then "
                       "(the embedded corpus, generated by the workflow: its settings are in source)."))
    source: dict[str, Any] = field(
        default_factory=dict,
        metadata=_meta("Any other setting that decides the training data, e.g. corpus.vox2_root, or the embedded "
                       "corpus's generator settings."))

    def __post_init__(self) -> None:
        for name in ("corpus", "root", "train_set", "speakers"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, str) or not value):
                raise ValueError(f"data.{name} must be a non-empty string or null, got {value!r}")
        if not isinstance(self.source, dict):
            raise ValueError(f"data.source must be a mapping, got {self.source!r}")

    SECTION = "data"


#: Defaults of the pretrain section where they differ from TrainConfig's (sized for a 2-core CPU).
PRETRAIN_DEFAULTS: dict[str, Any] = dict(
    epochs=6, steps_per_epoch=64, batch_size=32, crop_seconds=2.0, lr=1e-3, lr_decay=0.9, warmup_steps=40, grad_clip=5.0,
)
#: Defaults of the finetune section where they differ from TrainConfig's.
FINETUNE_DEFAULTS: dict[str, Any] = dict(
    epochs=3, steps_per_epoch=50, batch_size=32, crop_seconds=2.0, lr=2e-3, lr_decay=0.8, warmup_steps=10, grad_clip=5.0,
)

#: Sections of the pipeline config that the training stages read (``data`` the workflow adds).
SECTIONS = ("model", "backend", "adapter", "pretrain", "finetune", "augment", "data")


@dataclass
class RunConfig:
    """Every setting of the training stages, resolved and checked."""

    model: ModelConfig = field(default_factory=ModelConfig)
    backend: BackendConfig = field(default_factory=BackendConfig)
    adapter: AdapterConfig = field(default_factory=lambda: AdapterConfig(rank=4, top_k=64))
    pretrain: TrainConfig = field(default_factory=lambda: TrainConfig(**PRETRAIN_DEFAULTS))
    finetune: TrainConfig = field(default_factory=lambda: TrainConfig(**FINETUNE_DEFAULTS))
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    data: DataConfig = field(default_factory=DataConfig)

    def to_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name).to_dict() for name in SECTIONS}


def _merged(defaults: Mapping[str, Any], data: Any, where: str) -> dict[str, Any]:
    """``data`` laid over ``defaults``, nested sections merged key by key (a key given alone
    keeps its siblings' defaults); a section that is not a mapping is a ValueError."""
    if not isinstance(data, Mapping):
        raise ValueError(f"{where} must be a mapping of settings, got {type(data).__name__} {data!r}")
    out = dict(defaults)
    for key, value in data.items():
        if isinstance(out.get(key), Mapping) and isinstance(value, Mapping):
            out[key] = _merged(out[key], value, f"{where}.{key}")
        else:
            out[key] = value
    return out


def pipeline_sections() -> tuple[str, ...]:
    """Top-level sections of the pipeline config: those ``conf/config.schema.yaml`` knows
    (the training sections alone when the schema is not beside the package)."""
    schema = Path(__file__).resolve().parents[2] / "conf" / "config.schema.yaml"
    if not schema.is_file():
        return SECTIONS
    import yaml

    return tuple(yaml.safe_load(schema.read_text(encoding="utf-8")).get("properties", {})) or SECTIONS


def resolve_config(data: Mapping[str, Any] | None, features: Mapping[str, Any] | None = None) -> RunConfig:
    """Build a :class:`RunConfig` from a pipeline config dict, every section given laid over
    the defaults (those of ``conf/config.schema.yaml``, which a test keeps equal to these).

    Other pipeline sections (corpus, features, ...) are ignored, a section the pipeline does
    not know is refused; then the settings that must agree with each other are checked
    (:func:`check_settings`, with ``features`` or the data's own ``features`` section).
    Raises ValueError naming an unknown section or key or a bad value.
    """
    data = dict(data or {})
    unknown = sorted(set(data) - set(SECTIONS))
    if unknown:
        known = pipeline_sections()
        bad = [s for s in unknown if s not in known]
        if bad:
            raise ValueError(f"unknown config section(s) {', '.join(map(repr, bad))}; known: {', '.join(known)}")
    defaults = RunConfig().to_dict()
    given = {s: _merged(defaults[s], data[s], s) for s in SECTIONS if s in data}
    cfg = RunConfig()
    if "model" in given:
        cfg.model = ModelConfig.from_dict(given["model"])
    if "backend" in given:
        cfg.backend = BackendConfig.from_dict(given["backend"])
    if "adapter" in given:
        cfg.adapter = AdapterConfig.from_dict(given["adapter"])
    for section in ("pretrain", "finetune"):
        if section in given:
            setattr(cfg, section, TrainConfig.from_dict(given[section], section))
    if "augment" in given:
        cfg.augment = AugmentConfig.from_dict(given["augment"])
    if "data" in given:
        cfg.data = DataConfig.from_dict(given["data"])
    check_settings(cfg, features if features is not None else data.get("features"))
    if cfg.finetune.objective != "speaker":
        raise ValueError(f"finetune.objective must be speaker (fine-tuning trains the speaker model), got "
                         f"{cfg.finetune.objective!r}; masked is an objective of the pretrain section")
    # a stage given only its own sections (pretrain: model, backend, pretrain, augment) is not checked here
    if ("pretrain" in given and "finetune" in given and cfg.model.backbone == "builtin"
            and cfg.pretrain.objective != "speaker" and cfg.finetune.init_backend):
        raise ValueError(f"pretrain.objective {cfg.pretrain.objective!r} trains no speaker back-end, so "
                         "finetune.init_backend must be false (the back-end then starts at random)")
    return cfg


def _ssl_linear_shapes(path: str, backbone: str) -> dict[str, tuple[int, int]] | None:
    """(out, in) of every nn.Linear of a WavLM/HuBERT model from its config.json, as
    transformers names them; None when the directory holds no readable config.json."""
    cfg_file = Path(path) / "config.json"
    try:
        c = json.loads(cfg_file.read_text(encoding="utf-8"))
        hidden, inter, layers = int(c["hidden_size"]), int(c["intermediate_size"]), int(c["num_hidden_layers"])
        heads, conv_out = int(c["num_attention_heads"]), int(list(c["conv_dim"])[-1])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    shapes = {"feature_projection.projection": (hidden, conv_out)}
    for i in range(layers):
        base = f"encoder.layers.{i}"
        for proj in ("k_proj", "v_proj", "q_proj", "out_proj"):
            shapes[f"{base}.attention.{proj}"] = (hidden, hidden)
        if backbone == "wavlm":
            shapes[f"{base}.attention.gru_rel_pos_linear"] = (8, hidden // heads)
        shapes[f"{base}.feed_forward.intermediate_dense"] = (inter, hidden)
        shapes[f"{base}.feed_forward.output_dense"] = (hidden, inter)
    return shapes


def linear_shapes(model: ModelConfig) -> dict[str, tuple[int, int]] | None:
    """(out, in) of every nn.Linear of the backbone ``model`` describes, by the module names
    adapters use, from its settings alone (no torch, no weights). None when it cannot be known
    before the stage runs (an SSL model directory that is not there yet)."""
    if model.backbone != "builtin":
        return _ssl_linear_shapes(model.path, model.backbone) if model.path else None
    return builtin_linear_shapes(model.builtin)


def check_settings(cfg: RunConfig, features: Mapping[str, Any] | None = None) -> None:
    """Refuse settings that are each valid but cannot work together, before any work:
    fbank bins other than the builtin backbone's input size, adapter targets that match no
    layer of the backbone, and top_k or rank above min(m, n) of a target matrix."""
    if features is not None and cfg.model.backbone == "builtin":
        bins = dict(features).get("num_mel_bins", 80)
        if bins != cfg.model.builtin.n_mels:
            raise ValueError(f"features.num_mel_bins ({bins}) must equal model.builtin.n_mels "
                             f"({cfg.model.builtin.n_mels}): the builtin backbone reads those fbank features")
    a = cfg.adapter
    if a.method in ("full", "frozen"):
        return
    shapes = linear_shapes(cfg.model)
    if shapes is None:
        return
    hits = {name: shape for name, shape in shapes.items() if matches_target(name, a.targets)}
    if not hits:
        examples = ", ".join(list(shapes)[:4])
        raise ValueError(f"adapter.targets {a.targets} match no linear layer of the {cfg.model.backbone} backbone "
                         f"(its layers are e.g. {examples})")
    name, (m, n) = min(hits.items(), key=lambda item: min(item[1]))
    checks = [("top_k", a.top_k)] if a.method in SPECTRAL_METHODS else []
    if a.method != "spectralft_rot":
        checks.append(("rank", a.rank))
    for key, value in checks:
        if value > min(m, n):
            raise ValueError(f"adapter.{key} ({value}) exceeds min(m, n) = {min(m, n)} of target matrix "
                             f"{name!r} ({m}x{n}) of the {cfg.model.backbone} backbone")


def load_config_arg(value: str | None) -> dict[str, Any]:
    """A ``--config`` value: an inline JSON object (starting with ``{``) or a YAML/JSON file path.

    A file that is missing, not UTF-8 or not YAML, or that is not a mapping of sections, is
    an :class:`InputError` naming the file and, for a syntax error, the line.
    """
    if not value:
        return {}
    if value.lstrip().startswith("{"):
        try:
            data = json.loads(value)
        except json.JSONDecodeError as err:
            raise InputError("--config", f"inline JSON is not valid: {err.msg}", err.lineno) from None
        where = "--config"
    else:
        import yaml

        if Path(value).is_dir():
            raise InputError(value, "is a directory, not a config file")
        text = read_utf8(value)
        try:
            data = yaml.safe_load(text) or {}
        except yaml.YAMLError as err:
            mark = getattr(err, "problem_mark", None)
            problem = getattr(err, "problem", None) or str(err)
            raise InputError(value, f"not valid YAML: {problem}", mark.line + 1 if mark else None) from None
        where = value
    if not isinstance(data, dict):
        raise InputError(where, f"the config must be a mapping of sections, got {type(data).__name__}")
    return data


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply ``section.key=value`` (value parsed as YAML; ``model.builtin.d_model=96`` nests)."""
    import yaml

    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or "." not in key:
            raise ValueError(f"--set expects section.key=value, got {item!r}")
        parts = key.split(".")
        node = data
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ValueError(f"--set {item!r}: {part!r} is not a section")
        try:
            node[parts[-1]] = yaml.safe_load(raw)
        except yaml.YAMLError as err:
            raise ValueError(f"--set {item!r}: the value is not valid YAML ({getattr(err, 'problem', err)})") from None
    return data


def _short_hash(obj: Any) -> str:
    text = json.dumps(obj, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:8]


def system_name(cfg: RunConfig) -> str:
    """The exp/ folder name of the fine-tuned system ``cfg`` describes.

    ``<backbone>_<method>[_k<top_k>][_r<rank>]_s<seed>_<hash>``: k for the spectral methods,
    r for every method with a rank, and an 8-hex-digit hash of all remaining settings
    (model shape, back-end, the adapter's other fields, the finetune and pretrain settings
    that matter (no pretrain settings for a shipped builtin backbone, ``model.path``, whose
    directory is in the hash instead), augmentation, and the training data: corpus, root, training set and its
    speakers, ``cfg.data``), so two configurations never share a folder, nor do two corpora;
    ``num_workers`` does not change the result and is left out, and so is ``precision`` when it
    is fp32 (names stay those of before mixed precision existed). Adapter fields
    the method ignores (:data:`~spectral.adapters.config.IGNORED_FIELDS`: targets, rank,
    top_k, alpha and dropout of ``full``) are left out, so they do not split one system.
    """
    a = cfg.adapter
    parts = [cfg.model.backbone, a.method]
    if a.method in SPECTRAL_METHODS:
        parts.append(f"k{a.top_k}")
    if a.method in ("spectralft", "lora", "pissa", "milora", "dora"):
        parts.append(f"r{a.rank}")
    if not a.keep_residual:
        parts.append("nores")
    parts.append(f"s{cfg.finetune.seed}")
    rest = cfg.to_dict()
    rest["pretrain"], rest["finetune"] = identity_train_dict(cfg.pretrain), identity_train_dict(cfg.finetune)
    for key in IGNORED_FIELDS.get(a.method, ()):
        rest["adapter"].pop(key)
    if cfg.model.backbone != "builtin":
        rest.pop("pretrain")
        rest["model"].pop("builtin")
    else:
        if cfg.model.path:  # a shipped backbone: its directory, not this config's pretrain section, made it
            rest.pop("pretrain")
        if rest["model"]["builtin"].get("qk_init_scale") == 1.0:  # names as before the option existed
            rest["model"]["builtin"].pop("qk_init_scale")
    parts.append(_short_hash(rest))
    return "_".join(parts)
