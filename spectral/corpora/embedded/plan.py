"""The plan of the embedded corpora: who speaks, in which sessions, for how long (stage corpus).

Reads and writes no files. :func:`plan_corpora` decides, from the config and its seed alone,
everything about both corpora except the audio: speaker ids, synthetic names, genders,
nationalities and dev/test split (``vox1_meta.csv``), each speaker's :class:`.voice.Voice`
(``speakers.tsv``), sessions with 11-character YouTube-like ids and their recording
conditions (``sessions.tsv``), and each utterance's relative path
``idNNNNN/<session>/<nnnnn>.wav`` and duration. Target speakers are ``id10001``...
as in VoxCeleb1, with the test speakers scattered among them; pre-training speakers are
``id00001``... as in VoxCeleb2.

Every random choice comes from a ``numpy.random.SeedSequence`` keyed by the global seed and
the indices of what it decides (:func:`seed_for`), so a speaker's audio does not depend on
the order or the process in which it is rendered.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from .channel import PRETRAIN_PROFILE, ChannelProfile, Session, draw_session, target_profile
from .config import CorpusConfig
from .voice import Voice, draw_voice

#: Domain codes used in seed keys.
PRETRAIN, TARGET, AUGMENT = 1, 2, 3
#: Purpose codes used in seed keys.
VOICE_KEY, SESSION_KEY, UTTERANCE_KEY, LAYOUT_KEY, ROOM_KEY, TRIALS_KEY, BABBLE_KEY = range(7)

_ID_FIRST = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
_ID_REST = _ID_FIRST + "-_"
_NATIONALITIES = (
    "USA", "UK", "Canada", "Australia", "India", "Ireland", "Germany", "France", "Italy",
    "Spain", "Mexico", "Brazil", "Norway", "Sweden", "New Zealand", "Netherlands",
)  # fmt: skip
_NATIONALITY_WEIGHTS = np.array([30, 8, 5, 4, 4, 3, 2, 2, 2, 2, 1, 1, 1, 1, 1, 1], dtype=float)
_SYLLABLES = (
    "ka", "lo", "mi", "ra", "ven", "tor", "sa", "li", "dor", "el", "an", "bre", "cor", "da",
    "fen", "gal", "ho", "is", "ja", "kel", "mar", "nor", "ol", "pet", "quin", "ros", "ste",
    "ta", "ul", "vi", "wen", "yo", "zar", "be", "ni", "ash",
)  # fmt: skip


def seed_for(seed: int, *key: int) -> np.random.Generator:
    """A generator for the decision identified by ``key`` under the global ``seed``."""
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=tuple(int(k) for k in key)))


@dataclass(frozen=True)
class UtterancePlan:
    """One utterance: where it goes, in which session, how long, and its index (seed key)."""

    rel_path: str
    session_index: int
    duration: float
    index: int


@dataclass(frozen=True)
class SpeakerPlan:
    """One speaker of one corpus and everything about them except the audio."""

    domain: int
    index: int
    speaker_id: str
    name: str
    gender: str
    nationality: str
    split: str
    voice: Voice
    sessions: tuple[Session, ...]
    utterances: tuple[UtterancePlan, ...]

    @property
    def seconds(self) -> float:
        """Total audio of this speaker, seconds."""
        return sum(u.duration for u in self.utterances)


@dataclass(frozen=True)
class CorpusPlan:
    """Both corpora: pre-training and target speakers, in id order."""

    pretrain: tuple[SpeakerPlan, ...]
    target: tuple[SpeakerPlan, ...]


def _session_id(rng: np.random.Generator) -> str:
    first = _ID_FIRST[int(rng.integers(len(_ID_FIRST)))]
    rest = "".join(_ID_REST[i] for i in rng.integers(len(_ID_REST), size=10))
    return first + rest


def _name(rng: np.random.Generator) -> str:
    def word(n: int) -> str:
        return "".join(_SYLLABLES[i] for i in rng.integers(len(_SYLLABLES), size=n)).capitalize()

    return f"{word(int(rng.integers(1, 3)))}_{word(int(rng.integers(2, 4)))}"


def _durations(rng: np.random.Generator, n: int, lo: float, hi: float) -> np.ndarray:
    """Log-uniform durations in [lo, hi], rounded to 10 ms."""
    d = np.exp(rng.uniform(np.log(lo), np.log(hi), n))
    return np.round(d, 2)


def _plan_speaker(
    cfg: CorpusConfig,
    domain: int,
    index: int,
    speaker_id: str,
    gender: str,
    split: str,
    n_utts: int,
    n_sessions: int,
    durations: tuple[float, float],
    profile: ChannelProfile,
    used_sessions: set[str],
) -> SpeakerPlan:
    rng = seed_for(cfg.seed, domain, LAYOUT_KEY, index)
    name = _name(rng)
    nationality = str(rng.choice(_NATIONALITIES, p=_NATIONALITY_WEIGHTS / _NATIONALITY_WEIGHTS.sum()))
    voice = draw_voice(seed_for(cfg.seed, domain, VOICE_KEY, index), gender)
    sessions = []
    for s in range(n_sessions):
        srng = seed_for(cfg.seed, domain, SESSION_KEY, index, s)
        sid = _session_id(srng)
        while sid in used_sessions:
            sid = _session_id(srng)
        used_sessions.add(sid)
        sessions.append(draw_session(srng, profile, sid))
    assign = np.concatenate([np.arange(n_sessions), rng.integers(n_sessions, size=n_utts - n_sessions)])
    rng.shuffle(assign)
    lengths = _durations(rng, n_utts, *durations)
    counters = [0] * n_sessions
    utts = []
    for u, (s, d) in enumerate(zip(assign.tolist(), lengths.tolist())):
        counters[s] += 1
        rel = f"{speaker_id}/{sessions[s].session_id}/{counters[s]:05d}.wav"
        utts.append(UtterancePlan(rel_path=rel, session_index=s, duration=float(d), index=u))
    return SpeakerPlan(
        domain=domain, index=index, speaker_id=speaker_id, name=name, gender=gender,
        nationality=nationality, split=split, voice=voice, sessions=tuple(sessions), utterances=tuple(utts),
    )  # fmt: skip


def _unique_names(plans: list[SpeakerPlan]) -> list[SpeakerPlan]:
    """Make VGGFace1-style names unique by appending the speaker's number where they clash."""
    seen: set[str] = set()
    out = []
    for p in plans:
        name = p.name
        if name in seen:
            name = f"{name}_{p.index + 1}"
        seen.add(name)
        out.append(p if name == p.name else dataclasses.replace(p, name=name))
    return out


def plan_corpora(cfg: CorpusConfig) -> CorpusPlan:
    """Plan both corpora from ``cfg`` (deterministic in ``cfg.seed``)."""
    used: set[str] = set()
    rng = seed_for(cfg.seed, TARGET, LAYOUT_KEY, 2**31)
    n_target = cfg.n_target_speakers
    test = np.zeros(n_target, dtype=bool)
    test[rng.choice(n_target, size=cfg.n_test_speakers, replace=False)] = True
    test_genders = np.array(["m", "f"] * ((cfg.n_test_speakers + 1) // 2))[: cfg.n_test_speakers]
    rng.shuffle(test_genders)
    dev_genders = np.where(rng.random(cfg.n_dev_speakers) < 0.55, "m", "f")
    if cfg.n_dev_speakers >= 2:  # both genders among dev speakers too
        dev_genders[:2] = ["m", "f"]
        rng.shuffle(dev_genders)
    target_profile_ = target_profile(cfg.snr_db_min, cfg.snr_db_max, cfg.reverb_prob, cfg.telephone_prob)
    target = []
    it_test, it_dev = iter(test_genders.tolist()), iter(dev_genders.tolist())
    for i in range(n_target):
        gender = next(it_test) if test[i] else next(it_dev)
        target.append(
            _plan_speaker(
                cfg, TARGET, i, f"id{10001 + i}", gender, "test" if test[i] else "dev",
                cfg.utts_per_speaker, cfg.sessions_per_speaker, (cfg.min_duration, cfg.max_duration),
                target_profile_, used,
            )
        )  # fmt: skip
    prng = seed_for(cfg.seed, PRETRAIN, LAYOUT_KEY, 2**31)
    pre_genders = np.where(prng.random(cfg.n_pretrain_speakers) < 0.5, "m", "f")
    pre_genders[:2] = ["m", "f"]
    pretrain = [
        _plan_speaker(
            cfg, PRETRAIN, i, f"id{1 + i:05d}", str(pre_genders[i]), "dev",
            cfg.pretrain_utts_per_speaker, cfg.pretrain_sessions_per_speaker,
            (cfg.pretrain_min_duration, cfg.pretrain_max_duration), PRETRAIN_PROFILE, used,
        )
        for i in range(cfg.n_pretrain_speakers)
    ]  # fmt: skip
    return CorpusPlan(
        pretrain=tuple(_unique_names(pretrain)),
        target=tuple(_unique_names(target)),
    )
