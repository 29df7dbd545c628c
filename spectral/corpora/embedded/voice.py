"""Speaker physiology of the embedded corpus (stage corpus; reads and writes no files).

A :class:`Voice` holds what makes one synthetic speaker sound like themselves: vocal-tract
length (all formants scale with 1/L), a per-speaker offset of each formant, formant
bandwidths, f0 mean and range, the glottal pulse (open and speed quotient, LF-style return
phase), spectral tilt, breathiness, jitter, shimmer, speaking rate and articulation speed.
Ranges follow ``VOICE_MODEL.md`` (adult men 17-18 cm and 85-155 Hz, women 14-15 cm and
165-255 Hz, open quotient 0.4-0.7, jitter 0.2-1 %, shimmer 1-4 %, aspiration 15-30 dB
below voicing, 10-15 phones a second, 30-60 ms formant transitions).

:func:`draw_voice` draws a speaker, :func:`vary_voice` one utterance's small departure from
the speaker, and :func:`voice_features` the vector that the H-style trial list uses to find
each speaker's nearest same-gender neighbours.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

#: Tract length (cm) at which the male reference formant tables hold unscaled.
REFERENCE_TRACT_CM = 17.5
#: Number of idiolect entries (per-vowel formant offsets) a voice carries.
N_IDIOLECT = 32

# Per-gender population figures: (mean, sd, low, high).
_TRACT_CM = {"m": (17.5, 0.55, 16.3, 18.8), "f": (14.6, 0.5, 13.4, 15.9)}
_F0_HZ = {"m": (120.0, 16.0, 85.0, 155.0), "f": (210.0, 21.0, 165.0, 255.0)}
_OPEN_QUOTIENT = {"m": (0.52, 0.06, 0.40, 0.66), "f": (0.60, 0.06, 0.46, 0.70)}
_BREATH_DB = {"m": (-25.0, 3.5, -30.0, -15.0), "f": (-21.0, 3.5, -30.0, -15.0)}


@dataclass(frozen=True)
class Voice:
    """One speaker's (or one utterance's) voice parameters.

    Attributes:
        gender: ``"m"`` or ``"f"``.
        tract_cm: vocal-tract length; formants scale with ``REFERENCE_TRACT_CM / tract_cm``.
        formant_offsets: multiplicative offsets of F1..F5 (about +-3 %), vowel-independent.
        bandwidth_scale: multiplies the reference formant bandwidths.
        f0_hz: mean fundamental frequency.
        f0_range: intonation excursion as a fraction of f0 (0.12-0.30).
        open_quotient: open fraction of the glottal cycle (0.4-0.7).
        speed_quotient: opening over closing duration of the glottal pulse.
        return_ms: LF-style return-phase time constant (extra tilt above 1/(2 pi Ta)).
        tilt_db_per_octave: remaining spectral tilt around 1 kHz.
        breath_db: aspiration noise level relative to the voiced source.
        jitter: cycle-to-cycle relative f0 perturbation (standard deviation).
        shimmer: cycle-to-cycle relative amplitude perturbation (standard deviation).
        rate: speaking rate, phones a second.
        transition_ms: duration of formant transitions between phones.
        nasal_murmur_hz: frequency of the nasal murmur formant.
        fricative_scale: multiplies the centre frequencies of fricative noise.
        idiolect: per-vowel multiplicative offsets of F1..F3, shape (N_IDIOLECT, 3).
    """

    gender: str
    tract_cm: float
    formant_offsets: tuple[float, float, float, float, float]
    bandwidth_scale: float
    f0_hz: float
    f0_range: float
    open_quotient: float
    speed_quotient: float
    return_ms: float
    tilt_db_per_octave: float
    breath_db: float
    jitter: float
    shimmer: float
    rate: float
    transition_ms: float
    nasal_murmur_hz: float
    fricative_scale: float
    idiolect: np.ndarray = dataclasses.field(repr=False, compare=False)

    @property
    def formant_scale(self) -> float:
        """Factor applied to the male reference formant tables (1/L scaling)."""
        return REFERENCE_TRACT_CM / self.tract_cm


def _clipped_normal(rng: np.random.Generator, spec: tuple[float, float, float, float]) -> float:
    mean, sd, low, high = spec
    return float(np.clip(mean + sd * rng.standard_normal(), low, high))


def draw_voice(rng: np.random.Generator, gender: str) -> Voice:
    """Draw one speaker of ``gender`` (``"m"`` or ``"f"``) from the population ranges.

    f0 is mildly correlated with tract length (longer tract, lower voice) so that the two
    strongest cues are not independent, as in people.
    """
    if gender not in ("m", "f"):
        raise ValueError(f"gender must be 'm' or 'f', got {gender!r}")
    tract = _clipped_normal(rng, _TRACT_CM[gender])
    t_mean, t_sd = _TRACT_CM[gender][:2]
    f_mean, f_sd, f_low, f_high = _F0_HZ[gender]
    z_tract = (tract - t_mean) / t_sd
    z_f0 = -0.35 * z_tract + np.sqrt(1 - 0.35**2) * rng.standard_normal()
    f0 = float(np.clip(f_mean + f_sd * z_f0, f_low, f_high))
    offsets = np.exp(0.03 * rng.standard_normal(5))
    return Voice(
        gender=gender,
        tract_cm=tract,
        formant_offsets=tuple(float(o) for o in offsets),
        bandwidth_scale=float(np.exp(0.18 * rng.standard_normal())),
        f0_hz=f0,
        f0_range=float(rng.uniform(0.12, 0.30)),
        open_quotient=_clipped_normal(rng, _OPEN_QUOTIENT[gender]),
        speed_quotient=float(rng.uniform(1.4, 3.5)),
        return_ms=float(rng.uniform(0.06, 0.3)),
        tilt_db_per_octave=float(rng.uniform(-3.0, 1.5)),
        breath_db=_clipped_normal(rng, _BREATH_DB[gender]),
        jitter=float(rng.uniform(0.002, 0.010)),
        shimmer=float(rng.uniform(0.01, 0.04)),
        rate=float(rng.uniform(10.0, 15.0)),
        transition_ms=float(rng.uniform(30.0, 60.0)),
        nasal_murmur_hz=float(rng.uniform(250.0, 300.0)),
        fricative_scale=float(np.exp(0.05 * rng.standard_normal())),
        idiolect=np.exp(0.025 * rng.standard_normal((N_IDIOLECT, 3))),
    )


def vary_voice(voice: Voice, rng: np.random.Generator) -> Voice:
    """One utterance's realisation of ``voice``: small departures in pitch, rate and effort.

    Physiology (tract length, formant offsets, idiolect) stays fixed; f0 moves by about 4 %,
    rate by about 6 %, and vocal effort shifts tilt, open quotient and breathiness together.
    """
    effort = rng.standard_normal()  # > 0: louder, pressed; < 0: softer, breathier
    return dataclasses.replace(
        voice,
        f0_hz=float(voice.f0_hz * np.exp(0.04 * rng.standard_normal() + 0.02 * effort)),
        f0_range=float(np.clip(voice.f0_range * np.exp(0.1 * rng.standard_normal()), 0.08, 0.4)),
        open_quotient=float(np.clip(voice.open_quotient - 0.015 * effort, 0.35, 0.75)),
        tilt_db_per_octave=float(voice.tilt_db_per_octave + 0.6 * effort),
        breath_db=float(voice.breath_db - 1.5 * effort + 0.5 * rng.standard_normal()),
        jitter=float(voice.jitter * np.exp(0.15 * rng.standard_normal())),
        shimmer=float(voice.shimmer * np.exp(0.15 * rng.standard_normal())),
        rate=float(voice.rate * np.exp(0.06 * rng.standard_normal())),
    )


#: Names of the columns of :func:`voice_features` (and of ``speakers.tsv``'s voice columns).
FEATURE_NAMES = (
    "tract_cm",
    "f1_offset",
    "f2_offset",
    "f3_offset",
    "f4_offset",
    "f5_offset",
    "bandwidth_scale",
    "f0_hz",
    "f0_range",
    "open_quotient",
    "speed_quotient",
    "return_ms",
    "tilt_db_per_octave",
    "breath_db",
    "jitter",
    "shimmer",
    "rate",
    "transition_ms",
    "nasal_murmur_hz",
    "fricative_scale",
)


def voice_features(voice: Voice) -> np.ndarray:
    """The voice as a float vector in the order of :data:`FEATURE_NAMES`."""
    return np.array(
        [
            voice.tract_cm,
            *voice.formant_offsets,
            voice.bandwidth_scale,
            voice.f0_hz,
            voice.f0_range,
            voice.open_quotient,
            voice.speed_quotient,
            voice.return_ms,
            voice.tilt_db_per_octave,
            voice.breath_db,
            voice.jitter,
            voice.shimmer,
            voice.rate,
            voice.transition_ms,
            voice.nasal_murmur_hz,
            voice.fricative_scale,
        ],
        dtype=np.float64,
    )


def voice_distances(voices: list[Voice]) -> np.ndarray:
    """Pairwise distances between voices, shape (n, n).

    Each feature is standardised over ``voices`` (f0 in log scale); the physiological cues
    that carry most identity (tract length, formant offsets, f0) weigh double.
    """
    feats = np.stack([voice_features(v) for v in voices])
    feats[:, FEATURE_NAMES.index("f0_hz")] = np.log(feats[:, FEATURE_NAMES.index("f0_hz")])
    sd = feats.std(axis=0)
    z = (feats - feats.mean(axis=0)) / np.where(sd > 0, sd, 1.0)
    weights = np.ones(len(FEATURE_NAMES))
    for name in ("tract_cm", "f1_offset", "f2_offset", "f3_offset", "f4_offset", "f5_offset", "f0_hz"):
        weights[FEATURE_NAMES.index(name)] = 2.0
    z = z * np.sqrt(weights)
    diff = z[:, None, :] - z[None, :, :]
    return np.sqrt((diff**2).sum(axis=-1))
