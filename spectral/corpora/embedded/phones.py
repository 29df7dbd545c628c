"""Phone inventories and phone-sequence generation for the embedded corpus (stage corpus).

Two inventories with their own vowels, consonants and phonotactics, so that the
pre-training domain and the target domain differ in phonetic content as well as channel:

* ``TARGET`` — English-like: the ten Peterson & Barney (1952) vowels plus three diphthongs,
  aspirated and voiced plosives, /s z ʃ f v θ h/, /m n ŋ/, /l r w j/; (C)(C)V(C) syllables,
  word-initial stress.
* ``PRETRAIN`` — a different, made-up language: seven vowels that the target lacks
  (/y ø ɯ ɤ e ɐ o/), unaspirated /p t k q/, /x ç ɸ ʂ/, /m ɲ/, /ɾ ʎ ɥ/; CV(N) syllables,
  penultimate stress, long vowels.

Formants are given for an adult male reference tract (17.5 cm) and scaled per speaker by
:mod:`.synth`. Durations follow ``VOICE_MODEL.md``: plosive closure 50-100 ms and burst
5-20 ms, 10-15 phones a second, pauses of 150-500 ms between phrases.

:func:`phone_segments` turns an inventory, a duration and a speaking rate into a segment
table (one row per acoustic segment, columns :data:`COLUMNS`) that :mod:`.synth` renders.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Columns of the segment table returned by :func:`phone_segments`.
COLUMNS = (
    "dur",  # seconds
    "f1", "f2", "f3",  # formant targets at segment start (male reference, Hz; NaN: interpolate)
    "f1_end", "f2_end", "f3_end",  # targets at segment end (diphthongs)
    "voice",  # voiced source amplitude
    "asp",  # aspiration (noise through the vocal tract) amplitude
    "fric",  # frication / burst noise amplitude (own resonance)
    "fric_hz", "fric_sigma", "fric_floor",  # frication spectrum: peak, width, flat floor
    "nasal",  # nasal coupling weight 0..1
    "zero_hz",  # nasal anti-resonance
    "accent",  # pitch-accent height 0..1 (vowels)
    "phrase",  # phrase index (-1 for pauses)
    "vowel",  # index into the voice's idiolect table (-1 for non-vowels)
)  # fmt: skip
COL = {name: i for i, name in enumerate(COLUMNS)}

_NAN3 = (np.nan, np.nan, np.nan)


@dataclass(frozen=True)
class Phone:
    """One phone of an inventory.

    Attributes:
        symbol: IPA symbol (for readability only).
        kind: ``vowel``, ``plosive``, ``fricative``, ``nasal`` or ``approximant``.
        formants: F1-F3 target (vowels) or locus (consonants), male reference, Hz.
        formants_end: end target of a diphthong, else ``None``.
        duration_ms: mean duration at 12.5 phones a second (plosives: closure).
        voice: voiced-source amplitude (voice bar of voiced plosives, voicing of fricatives).
        aspiration: amplitude of noise through the vocal tract (/h/, plosive release).
        frication: amplitude of frication or burst noise.
        fric_hz, fric_sigma, fric_floor: the noise's spectral peak, width and flat floor.
        zero_hz: nasal anti-resonance frequency.
        vot_ms: voice-onset time after a plosive burst.
    """

    symbol: str
    kind: str
    formants: tuple[float, float, float]
    formants_end: tuple[float, float, float] | None = None
    duration_ms: float = 80.0
    voice: float = 1.0
    aspiration: float = 0.0
    frication: float = 0.0
    fric_hz: float = 0.0
    fric_sigma: float = 1.0
    fric_floor: float = 0.0
    zero_hz: float = 0.0
    vot_ms: float = 0.0


@dataclass(frozen=True)
class Inventory:
    """A phone inventory with its phonotactics and prosody.

    Attributes:
        name: short name.
        vowels: vowel phones (index in this tuple selects the speaker's idiolect offsets).
        onsets: possible syllable onsets, each a tuple of consonants.
        codas: possible syllable codas.
        onset_prob, coda_prob: probability that a syllable has an onset, a coda.
        syllables: inclusive range of syllables per word.
        stress: ``initial`` or ``penultimate``.
        long_vowel_prob: probability that a vowel is phonemically long (x1.6).
    """

    name: str
    vowels: tuple[Phone, ...]
    onsets: tuple[tuple[Phone, ...], ...]
    codas: tuple[tuple[Phone, ...], ...]
    onset_prob: float
    coda_prob: float
    syllables: tuple[int, int]
    stress: str
    long_vowel_prob: float = 0.0


def _vowel(symbol: str, f: tuple[float, float, float], ms: float, end=None) -> Phone:
    return Phone(symbol, "vowel", f, end, ms)


def _plosive(symbol, locus, voiced, burst_hz, burst_sigma, vot_ms, asp) -> Phone:
    return Phone(
        symbol, "plosive", locus, duration_ms=75.0, voice=0.07 if voiced else 0.0, aspiration=asp,
        frication=0.4, fric_hz=burst_hz, fric_sigma=burst_sigma, fric_floor=0.25, vot_ms=vot_ms,
    )  # fmt: skip


def _fricative(symbol, locus, level, hz, sigma, floor, voiced=False, ms=95.0) -> Phone:
    return Phone(
        symbol, "fricative", locus, duration_ms=ms, voice=0.35 if voiced else 0.0,
        frication=level, fric_hz=hz, fric_sigma=sigma, fric_floor=floor,
    )  # fmt: skip


def _nasal(symbol, f, zero_hz) -> Phone:
    return Phone(symbol, "nasal", f, duration_ms=65.0, voice=0.55, zero_hz=zero_hz)


def _approximant(symbol, f, ms=60.0) -> Phone:
    return Phone(symbol, "approximant", f, duration_ms=ms, voice=0.75)


_LABIAL = (300.0, 900.0, 2200.0)
_ALVEOLAR = (350.0, 1750.0, 2700.0)
_VELAR = (300.0, 2000.0, 2300.0)

# ---------------------------------------------------------------- target (English-like)
_T = {
    "i": _vowel("i", (270, 2290, 3010), 115),
    "ɪ": _vowel("ɪ", (390, 1990, 2550), 75),
    "ɛ": _vowel("ɛ", (530, 1840, 2480), 80),
    "æ": _vowel("æ", (660, 1720, 2410), 120),
    "ɑ": _vowel("ɑ", (730, 1090, 2440), 120),
    "ɔ": _vowel("ɔ", (570, 840, 2410), 115),
    "ʊ": _vowel("ʊ", (440, 1020, 2240), 75),
    "u": _vowel("u", (300, 870, 2240), 110),
    "ʌ": _vowel("ʌ", (640, 1190, 2390), 75),
    "ɝ": _vowel("ɝ", (490, 1350, 1690), 110),
    "aɪ": _vowel("aɪ", (730, 1090, 2440), 160, (390, 1990, 2550)),
    "eɪ": _vowel("eɪ", (530, 1840, 2480), 150, (270, 2290, 3010)),
    "oʊ": _vowel("oʊ", (570, 840, 2410), 150, (440, 1020, 2240)),
    "p": _plosive("p", _LABIAL, False, 900, 900, 55, 0.35),
    "t": _plosive("t", _ALVEOLAR, False, 4200, 1500, 60, 0.35),
    "k": _plosive("k", _VELAR, False, 2300, 700, 65, 0.35),
    "b": _plosive("b", _LABIAL, True, 900, 900, 10, 0.1),
    "d": _plosive("d", _ALVEOLAR, True, 4200, 1500, 12, 0.1),
    "g": _plosive("g", _VELAR, True, 2300, 700, 15, 0.1),
    "s": _fricative("s", _ALVEOLAR, 0.45, 5800, 1300, 0.05),
    "z": _fricative("z", _ALVEOLAR, 0.3, 5800, 1300, 0.05, voiced=True, ms=80),
    "ʃ": _fricative("ʃ", (300, 1900, 2500), 0.5, 3200, 700, 0.05),
    "f": _fricative("f", _LABIAL, 0.035, 4000, 3000, 0.8),
    "v": _fricative("v", _LABIAL, 0.025, 4000, 3000, 0.8, voiced=True, ms=70),
    "θ": _fricative("θ", (350, 1500, 2600), 0.03, 6500, 2000, 0.6),
    "h": Phone("h", "fricative", _NAN3, duration_ms=70, voice=0.0, aspiration=0.35),
    "m": _nasal("m", (250, 1100, 2300), 1000),
    "n": _nasal("n", (250, 1500, 2500), 1700),
    "ŋ": _nasal("ŋ", (250, 2000, 2400), 3000),
    "l": _approximant("l", (360, 1300, 2800)),
    "r": _approximant("r", (350, 1100, 1600)),
    "w": _approximant("w", (300, 650, 2200), 55),
    "j": _approximant("j", (270, 2200, 3000), 55),
}


def _single(*symbols: str, table: dict) -> tuple[tuple[Phone, ...], ...]:
    return tuple((table[s],) for s in symbols)


TARGET = Inventory(
    name="target",
    vowels=tuple(_T[s] for s in ("i", "ɪ", "ɛ", "æ", "ɑ", "ɔ", "ʊ", "u", "ʌ", "ɝ", "aɪ", "eɪ", "oʊ")),
    onsets=_single(*"p t k b d g s z ʃ f v θ h m n l r w j".split(), table=_T)
    + tuple((_T[a], _T[b]) for a, b in ("st", "sp", "sk", "pl", "pr", "tr", "kl", "kr", "bl", "br", "gr", "fl")),
    codas=_single(*"t d k s z n m ŋ l r f v θ".split(), table=_T)
    + tuple((_T[a], _T[b]) for a, b in ("nt", "st", "ks", "nd", "lt")),
    onset_prob=0.85,
    coda_prob=0.45,
    syllables=(1, 3),
    stress="initial",
)

# ---------------------------------------------------------------- pre-training (made-up language)
_DENTAL = (350.0, 1600.0, 2600.0)
_UVULAR = (450.0, 1100.0, 2400.0)
_P = {
    "y": _vowel("y", (260, 1850, 2150), 90),
    "ø": _vowel("ø", (380, 1550, 2250), 90),
    "ɯ": _vowel("ɯ", (330, 1350, 2400), 90),
    "ɤ": _vowel("ɤ", (470, 1250, 2450), 90),
    "e": _vowel("e", (420, 2050, 2650), 90),
    "ɐ": _vowel("ɐ", (760, 1400, 2550), 95),
    "o": _vowel("o", (430, 780, 2450), 90),
    "p": _plosive("p", _LABIAL, False, 1000, 800, 15, 0.15),
    "t": _plosive("t", _DENTAL, False, 3800, 1400, 15, 0.15),
    "k": _plosive("k", _VELAR, False, 2000, 700, 20, 0.15),
    "q": _plosive("q", _UVULAR, False, 1300, 500, 20, 0.15),
    "x": _fricative("x", _UVULAR, 0.3, 1700, 600, 0.1),
    "ç": _fricative("ç", (280, 2200, 2900), 0.35, 4000, 1000, 0.05),
    "ɸ": _fricative("ɸ", _LABIAL, 0.03, 2000, 3000, 0.9),
    "ʂ": _fricative("ʂ", (350, 1500, 2000), 0.45, 2800, 900, 0.05),
    "m": _nasal("m", (250, 1100, 2300), 1000),
    "ɲ": _nasal("ɲ", (250, 2100, 2800), 2400),
    "ɾ": _approximant("ɾ", (380, 1500, 2500), 28),
    "ʎ": _approximant("ʎ", (300, 2000, 2800)),
    "ɥ": _approximant("ɥ", (270, 1900, 2200), 55),
}

PRETRAIN = Inventory(
    name="pretrain",
    vowels=tuple(_P[s] for s in ("y", "ø", "ɯ", "ɤ", "e", "ɐ", "o")),
    onsets=_single(*"p t k q x ç ɸ ʂ m ɲ ɾ ʎ ɥ".split(), table=_P),
    codas=_single("m", "ɲ", table=_P),
    onset_prob=0.9,
    coda_prob=0.12,
    syllables=(2, 4),
    stress="penultimate",
    long_vowel_prob=0.2,
)

INVENTORIES = {"target": TARGET, "pretrain": PRETRAIN}


def _row(**values: float) -> list[float]:
    row = [0.0] * len(COLUMNS)
    row[COL["phrase"]] = -1.0
    row[COL["vowel"]] = -1.0
    for key, value in values.items():
        row[COL[key]] = value
    return row


def _pause(dur: float) -> list[float]:
    return _row(dur=dur, f1=np.nan, f2=np.nan, f3=np.nan, f1_end=np.nan, f2_end=np.nan, f3_end=np.nan)


def _formants(f: tuple[float, float, float], end: tuple[float, float, float] | None = None) -> dict:
    e = f if end is None else end
    return dict(f1=f[0], f2=f[1], f3=f[2], f1_end=e[0], f2_end=e[1], f3_end=e[2])


def _consonant_rows(p: Phone, scale: float, rng: np.random.Generator) -> list[list[float]]:
    jitter = float(np.exp(0.15 * rng.standard_normal()))
    if p.kind == "plosive":
        closure = rng.uniform(0.05, 0.10) * np.sqrt(scale)
        burst = rng.uniform(0.005, 0.020)
        vot = p.vot_ms / 1000 * jitter
        noise = dict(fric_hz=p.fric_hz, fric_sigma=p.fric_sigma, fric_floor=p.fric_floor)
        rows = [
            _row(dur=closure, voice=p.voice, **_formants(p.formants)),
            _row(dur=burst, fric=p.frication, asp=0.3 * p.aspiration, **noise, **_formants(p.formants)),
        ]
        if vot > 0:
            rows.append(
                _row(dur=vot, asp=p.aspiration, voice=0.25 if p.voice > 0 else 0.0, **_formants(_NAN3))
            )
        return rows
    dur = p.duration_ms / 1000 * scale * jitter
    common = dict(dur=dur, voice=p.voice, **_formants(p.formants))
    if p.kind == "fricative":
        return [
            _row(
                asp=p.aspiration, fric=p.frication, fric_hz=p.fric_hz, fric_sigma=p.fric_sigma,
                fric_floor=p.fric_floor, **common,
            )
        ]  # fmt: skip
    if p.kind == "nasal":
        return [_row(nasal=1.0, zero_hz=p.zero_hz, **common)]
    return [_row(**common)]


def _word(
    inv: Inventory, scale: float, final: bool, rng: np.random.Generator
) -> list[list[float]]:
    n_syl = int(rng.integers(inv.syllables[0], inv.syllables[1] + 1))
    if inv.stress == "initial":
        stressed = 0 if rng.random() < 0.75 or n_syl == 1 else 1
    else:
        stressed = max(0, n_syl - 2)
    accent = float(rng.uniform(0.5, 1.0)) if rng.random() < 0.65 else 0.0
    rows: list[list[float]] = []
    for s in range(n_syl):
        last = final and s == n_syl - 1
        if rng.random() < inv.onset_prob:
            for p in inv.onsets[int(rng.integers(len(inv.onsets)))]:
                rows += _consonant_rows(p, scale, rng)
        v_index = int(rng.integers(len(inv.vowels)))
        v = inv.vowels[v_index]
        dur = v.duration_ms / 1000 * scale * float(np.exp(0.15 * rng.standard_normal()))
        loud = 1.0
        if s == stressed:
            dur *= 1.35
            loud = 1.25
        if last:
            dur *= 1.4
        if inv.long_vowel_prob and rng.random() < inv.long_vowel_prob:
            dur *= 1.6
        rows.append(
            _row(
                dur=dur, voice=loud, accent=accent if s == stressed else 0.0, vowel=v_index,
                **_formants(v.formants, v.formants_end),
            )
        )  # fmt: skip
        if rng.random() < inv.coda_prob:
            for p in inv.codas[int(rng.integers(len(inv.codas)))]:
                rows += _consonant_rows(p, scale * (1.3 if last else 1.0), rng)
    return rows


def phone_segments(
    inventory: Inventory, duration: float, rate: float, rng: np.random.Generator
) -> np.ndarray:
    """A random phone sequence of phrases and pauses that covers ``duration`` seconds.

    Like a VoxCeleb segment cut from continuous speech, the utterance starts after a short
    silence (0-0.25 s) and ends wherever ``duration`` falls, often inside a word: the table
    runs past ``duration`` and :mod:`.synth` renders only the first ``duration`` seconds.

    Args:
        inventory: which phones and phonotactics to use.
        duration: length of the utterance, seconds.
        rate: speaking rate, phones a second (12.5 is the reference).
        rng: random generator (the only source of randomness).

    Returns:
        Float array of shape (n_segments, len(COLUMNS)); see :data:`COLUMNS`. Pause rows
        carry NaN formants and phrase index -1. There is at least one phrase.
    """
    scale = 12.5 / rate
    lead = float(rng.uniform(0.0, 0.25))
    rows = [_pause(lead)]
    t = lead
    phrase = 0
    while True:
        n_words = int(rng.integers(2, 7))
        for w in range(n_words):
            word = _word(inventory, scale, w == n_words - 1, rng)
            for r in word:
                r[COL["phrase"]] = float(phrase)
            rows += word
            t += sum(r[0] for r in word)
        phrase += 1
        if t >= duration:
            break
        pause = float(rng.uniform(0.15, 0.5))
        rows.append(_pause(pause))
        t += pause
    return np.asarray(rows, dtype=np.float64)
