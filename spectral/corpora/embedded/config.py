"""Sizes, seed and difficulty of the embedded corpus (stage corpus; reads and writes no files).

:class:`CorpusConfig` holds every setting of ``spectral-make-corpus`` and checks it, quoting
the bad value, before any work starts. :func:`resolve_config` fills the settings left
unset (``None``) from a size preset (:data:`PRESETS`: ``tiny`` for tests, ``small``,
``default``, ``benchmark``). The keys mirror ``embedded:`` in ``conf/config.schema.yaml``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from math import comb


@dataclass(frozen=True)
class CorpusConfig:
    """Every setting of the embedded corpus generator.

    Attributes:
        seed: seed of everything generated (non-negative); same seed, same bytes.
        n_pretrain_speakers: speakers of the pre-training corpus.
        pretrain_utts_per_speaker: utterances per pre-training speaker.
        pretrain_sessions_per_speaker: sessions per pre-training speaker.
        pretrain_min_duration, pretrain_max_duration: pre-training utterance lengths, s.
        n_dev_speakers: dev (training) speakers of the target corpus.
        n_test_speakers: test speakers of the target corpus (half of each gender).
        utts_per_speaker: utterances per target speaker.
        sessions_per_speaker: sessions (videos) per target speaker.
        min_duration, max_duration: target utterance lengths, s (log-uniform between).
        snr_db_min, snr_db_max: SNR range of the target corpus's background noise.
        reverb_prob: probability of a reverberant room per target session.
        telephone_prob: probability of a telephone line per target session.
        n_trials_o: trials of ``veri_test2.txt`` (O-style).
        n_trials_h: trials of ``list_test_hard2.txt`` (H-style).
        n_noise_files: noise recordings written to ``noise/`` (kinds in turn).
        noise_seconds: length of each noise recording.
        n_rir_files: room impulse responses written to ``rir/``.
        babble_voices, babble_seconds: size of the pool of background talkers.
        nj: parallel processes.
    """

    seed: int = 20250107
    n_pretrain_speakers: int = 300
    pretrain_utts_per_speaker: int = 15
    pretrain_sessions_per_speaker: int = 3
    pretrain_min_duration: float = 2.0
    pretrain_max_duration: float = 3.0
    n_dev_speakers: int = 120
    n_test_speakers: int = 100
    utts_per_speaker: int = 10
    sessions_per_speaker: int = 4
    min_duration: float = 2.0
    max_duration: float = 8.0
    snr_db_min: float = 0.0
    snr_db_max: float = 30.0
    reverb_prob: float = 0.6
    telephone_prob: float = 0.2
    n_trials_o: int = 7000
    n_trials_h: int = 7000
    n_noise_files: int = 12
    noise_seconds: float = 10.0
    n_rir_files: int = 24
    babble_voices: int = 8
    babble_seconds: float = 8.0
    nj: int = 2

    def __post_init__(self) -> None:
        if not isinstance(self.seed, int) or self.seed < 0:
            raise ValueError(f"seed must be a non-negative integer, got {self.seed!r}")
        minimum = {
            "n_pretrain_speakers": 2,
            "pretrain_utts_per_speaker": 2,
            "pretrain_sessions_per_speaker": 1,
            "n_dev_speakers": 2,
            "n_test_speakers": 4,
            "utts_per_speaker": 2,
            "sessions_per_speaker": 1,
            "n_trials_o": 2,
            "n_trials_h": 2,
            "n_noise_files": 1,
            "n_rir_files": 1,
            "babble_voices": 1,
            "nj": 1,
        }
        why = {
            "n_test_speakers": " (the H-style list needs two test speakers of each gender)",
            "n_trials_o": " (a list needs a target and a non-target trial)",
            "n_trials_h": " (a list needs a target and a non-target trial)",
        }
        for name, low in minimum.items():
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < low:
                raise ValueError(f"{name} must be an integer >= {low}{why.get(name, '')}, got {value!r}")
        if self.n_pretrain_speakers > 10000:
            raise ValueError(
                f"n_pretrain_speakers must be <= 10000 (ids id00001-id10000), got {self.n_pretrain_speakers!r}"
            )
        if self.n_target_speakers > 89999:
            raise ValueError(
                f"n_dev_speakers + n_test_speakers must be <= 89999 (ids id10001-id99999), "
                f"got {self.n_target_speakers!r}"
            )
        if self.sessions_per_speaker > self.utts_per_speaker:
            raise ValueError(
                f"sessions_per_speaker ({self.sessions_per_speaker!r}) exceeds utts_per_speaker "
                f"({self.utts_per_speaker!r}): every session needs at least one utterance"
            )
        if self.pretrain_sessions_per_speaker > self.pretrain_utts_per_speaker:
            raise ValueError(
                f"pretrain_sessions_per_speaker ({self.pretrain_sessions_per_speaker!r}) exceeds "
                f"pretrain_utts_per_speaker ({self.pretrain_utts_per_speaker!r})"
            )
        for lo_name, hi_name in (
            ("min_duration", "max_duration"),
            ("pretrain_min_duration", "pretrain_max_duration"),
        ):
            lo, hi = getattr(self, lo_name), getattr(self, hi_name)
            if not 1.0 <= lo <= 60.0:
                raise ValueError(f"{lo_name} must lie in [1, 60] seconds, got {lo!r}")
            if not 1.0 <= hi <= 60.0:
                raise ValueError(f"{hi_name} must lie in [1, 60] seconds, got {hi!r}")
            if lo > hi:
                raise ValueError(f"{lo_name} ({lo!r}) exceeds {hi_name} ({hi!r})")
        if not -20.0 <= self.snr_db_min <= 100.0 or not -20.0 <= self.snr_db_max <= 100.0:
            raise ValueError(
                f"SNR limits must lie in [-20, 100] dB, got snr_db_min={self.snr_db_min!r}, "
                f"snr_db_max={self.snr_db_max!r}"
            )
        if self.snr_db_min > self.snr_db_max:
            raise ValueError(f"snr_db_min ({self.snr_db_min!r}) exceeds snr_db_max ({self.snr_db_max!r})")
        for name in ("reverb_prob", "telephone_prob"):
            p = getattr(self, name)
            if not 0.0 <= p <= 1.0:
                raise ValueError(f"{name} must lie in [0, 1], got {p!r}")
        for name in ("noise_seconds", "babble_seconds"):
            if not 1.0 <= getattr(self, name) <= 120.0:
                raise ValueError(f"{name} must lie in [1, 120] seconds, got {getattr(self, name)!r}")
        n_utts = self.n_test_speakers * self.utts_per_speaker
        for name in ("n_trials_o", "n_trials_h"):
            if getattr(self, name) > comb(n_utts, 2):
                raise ValueError(
                    f"{name} ({getattr(self, name)!r}) exceeds the {comb(n_utts, 2)} distinct pairs of the "
                    f"{n_utts} test utterances; add test speakers or utterances, or ask for fewer trials"
                )

    @property
    def n_target_speakers(self) -> int:
        """Dev plus test speakers of the target corpus."""
        return self.n_dev_speakers + self.n_test_speakers


#: Size presets (and, for ``benchmark``, the channel); ``benchmark`` is the workflow's embedded default.
PRESETS: dict[str, dict] = {
    "tiny": dict(
        n_pretrain_speakers=6, pretrain_utts_per_speaker=4, pretrain_sessions_per_speaker=2,
        pretrain_min_duration=2.0, pretrain_max_duration=3.0,
        n_dev_speakers=4, n_test_speakers=4, utts_per_speaker=4, sessions_per_speaker=2,
        min_duration=2.0, max_duration=3.0, n_trials_o=40, n_trials_h=40,
        n_noise_files=3, noise_seconds=3.0, n_rir_files=3, babble_voices=3, babble_seconds=4.0,
    ),
    "small": dict(
        n_pretrain_speakers=60, pretrain_utts_per_speaker=8, pretrain_sessions_per_speaker=2,
        n_dev_speakers=30, n_test_speakers=20, utts_per_speaker=8, sessions_per_speaker=3,
        n_trials_o=1500, n_trials_h=1500, n_noise_files=6, noise_seconds=6.0, n_rir_files=8,
        babble_voices=6, babble_seconds=6.0,
    ),
    "default": {},
    # the benchmark of docs/benchmark.md (the workflow's default since E14): 400 training and 400
    # test speakers, 30,000 trials per list, 4-10 s utterances (E9) on a clean channel (E12):
    # the target differs from the pre-training corpus in its language, not in noise
    "benchmark": dict(
        n_dev_speakers=400, n_test_speakers=400, utts_per_speaker=8, sessions_per_speaker=4,
        min_duration=4.0, max_duration=10.0, n_trials_o=30000, n_trials_h=30000,
        snr_db_min=30.0, snr_db_max=40.0, reverb_prob=0.0, telephone_prob=0.0,
    ),
}  # fmt: skip


def resolve_config(size: str = "default", **settings) -> CorpusConfig:
    """A validated :class:`CorpusConfig`: ``size``'s preset, overridden by non-``None`` settings.

    Raises:
        ValueError: unknown size or setting, or a value :class:`CorpusConfig` refuses.
    """
    if size not in PRESETS:
        raise ValueError(f"unknown size {size!r}; expected one of {sorted(PRESETS)}")
    known = {f.name for f in dataclasses.fields(CorpusConfig)}
    unknown = sorted(set(settings) - known)
    if unknown:
        raise ValueError(f"unknown setting(s) {unknown}; expected some of {sorted(known)}")
    values = dict(PRESETS[size])
    values.update({k: v for k, v in settings.items() if v is not None})
    return CorpusConfig(**values)
