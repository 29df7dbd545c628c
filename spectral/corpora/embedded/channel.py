"""Recording sessions of the embedded corpus: room, noise, microphone, line and level.

Stage corpus; reads and writes no files. A :class:`Session` (one "video") fixes the
conditions under which all of a speaker's utterances in it were recorded: whether the talker
is in a reverberant room (RT60, direct-to-reverberant ratio), the background noise kind and
SNR, the microphone's response (band limits, tilt, a resonance or dip), whether the signal
went through a telephone line (300-3,400 Hz and G.711 mu-law, mu = 255), and the recording
level (+-10 dB). Utterances within a session vary a little (SNR +-2 dB, level +-1 dB);
sessions vary a lot, which is what makes two sessions of one speaker hard to match.

The chain is linear up to the telephone line, so it is applied where it is cheapest: the
microphone response (:func:`channel_response`) inside the synthesiser's frequency-domain
pass and once per session on its background (:func:`session_background`); :func:`record`
then adds the room, the background at the utterance's SNR, the line and the level.

A :class:`ChannelProfile` holds the ranges one domain draws its sessions from:
:data:`PRETRAIN_PROFILE` is clean (wideband, high SNR, stationary noise, few small rooms);
:func:`target_profile` is VoxCeleb-like and takes the difficulty knobs of the config.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import scipy.fft

from .noise import NOISE_KINDS, noise_of_kind
from .synth import SAMPLE_RATE

MU = 255.0
_REFERENCE_DBFS = -26.0  # active-speech level of a session at level_db = 0
_GRID = np.linspace(0.0, SAMPLE_RATE / 2, 2049)  # responses are smooth: evaluate here, interpolate
_TELEPHONE_LOWPASS = 1.0 / np.sqrt(1.0 + (_GRID / 3700.0) ** 24)


@dataclass(frozen=True)
class ChannelProfile:
    """Ranges from which one domain draws its sessions (all ranges inclusive).

    Attributes:
        snr_db: additive-noise SNR range.
        noise_kinds: which of :data:`.noise.NOISE_KINDS` may occur (equally likely).
        noise_prob: probability that a session has background noise beyond the noise floor.
        reverb_prob: probability of a reverberant room.
        rt60: reverberation-time range, seconds.
        drr_db: direct-to-reverberant ratio range.
        telephone_prob: probability of a telephone line (300-3,400 Hz, mu-law).
        low_cut_hz, high_cut_hz: microphone/codec band-edge ranges (non-telephone sessions).
        tilt_db_per_octave: largest absolute microphone tilt.
        eq_db: largest absolute gain of the microphone resonance (or dip).
        level_db: recording-level range around -26 dBFS active speech.
    """

    snr_db: tuple[float, float]
    noise_kinds: tuple[str, ...]
    noise_prob: float
    reverb_prob: float
    rt60: tuple[float, float]
    drr_db: tuple[float, float]
    telephone_prob: float
    low_cut_hz: tuple[float, float]
    high_cut_hz: tuple[float, float]
    tilt_db_per_octave: float
    eq_db: float
    level_db: tuple[float, float]

    def __post_init__(self) -> None:
        for name in ("snr_db", "rt60", "drr_db", "low_cut_hz", "high_cut_hz", "level_db"):
            lo, hi = getattr(self, name)
            if lo > hi:
                raise ValueError(f"{name}: minimum {lo!r} exceeds maximum {hi!r}")
        for name in ("noise_prob", "reverb_prob", "telephone_prob"):
            p = getattr(self, name)
            if not 0.0 <= p <= 1.0:
                raise ValueError(f"{name} must lie in [0, 1], got {p!r}")
        unknown = set(self.noise_kinds) - set(NOISE_KINDS)
        if unknown or not self.noise_kinds:
            raise ValueError(f"noise_kinds must be a non-empty subset of {NOISE_KINDS}, got {self.noise_kinds!r}")


#: The pre-training domain: close-talk, wideband, mostly clean.
PRETRAIN_PROFILE = ChannelProfile(
    snr_db=(20.0, 40.0),
    noise_kinds=("stationary",),
    noise_prob=0.5,
    reverb_prob=0.15,
    rt60=(0.15, 0.35),
    drr_db=(6.0, 14.0),
    telephone_prob=0.0,
    low_cut_hz=(40.0, 80.0),
    high_cut_hz=(7200.0, 7900.0),
    tilt_db_per_octave=0.5,
    eq_db=1.5,
    level_db=(-4.0, 4.0),
)


def target_profile(
    snr_db_min: float = 0.0,
    snr_db_max: float = 30.0,
    reverb_prob: float = 0.6,
    telephone_prob: float = 0.2,
) -> ChannelProfile:
    """The target (VoxCeleb-like) domain with the config's difficulty knobs."""
    return ChannelProfile(
        snr_db=(snr_db_min, snr_db_max),
        noise_kinds=NOISE_KINDS,
        noise_prob=0.9,
        reverb_prob=reverb_prob,
        rt60=(0.2, 1.0),
        drr_db=(0.0, 12.0),
        telephone_prob=telephone_prob,
        low_cut_hz=(50.0, 250.0),
        high_cut_hz=(4500.0, 7900.0),
        tilt_db_per_octave=1.0,
        eq_db=4.0,
        level_db=(-10.0, 10.0),
    )


@dataclass(frozen=True)
class Session:
    """The recording conditions of one session (all utterances of one speaker in one video)."""

    session_id: str
    telephone: bool
    low_cut_hz: float
    high_cut_hz: float
    band_order: int
    tilt_db_per_octave: float
    eq_hz: float
    eq_db: float
    eq_octaves: float
    rt60: float  # 0: no room
    drr_db: float
    noise_kind: str  # "none" or one of NOISE_KINDS
    snr_db: float
    level_db: float

    def as_row(self) -> dict:
        """The session as a flat dict (for ``sessions.tsv``)."""
        return asdict(self)


def draw_session(rng: np.random.Generator, profile: ChannelProfile, session_id: str) -> Session:
    """Draw one session's conditions from ``profile``."""
    telephone = bool(rng.random() < profile.telephone_prob)
    reverb = bool(rng.random() < profile.reverb_prob)
    noisy = bool(rng.random() < profile.noise_prob)
    kind = str(profile.noise_kinds[int(rng.integers(len(profile.noise_kinds)))])
    low = float(rng.uniform(*profile.low_cut_hz))
    high = float(rng.uniform(*profile.high_cut_hz))
    return Session(
        session_id=session_id,
        telephone=telephone,
        low_cut_hz=300.0 if telephone else low,
        high_cut_hz=3400.0 if telephone else high,
        band_order=8 if telephone else int(rng.integers(2, 7)),
        tilt_db_per_octave=float(rng.uniform(-1, 1) * profile.tilt_db_per_octave),
        eq_hz=float(np.exp(rng.uniform(np.log(800.0), np.log(5000.0)))),
        eq_db=float(rng.uniform(-1, 1) * profile.eq_db),
        eq_octaves=float(rng.uniform(0.3, 1.0)),
        rt60=float(rng.uniform(*profile.rt60)) if reverb else 0.0,
        drr_db=float(rng.uniform(*profile.drr_db)),
        noise_kind=kind if noisy else "none",
        snr_db=float(rng.uniform(*profile.snr_db)),
        level_db=float(rng.uniform(*profile.level_db)),
    )


def channel_response(session: Session, freqs: np.ndarray) -> np.ndarray:
    """Magnitude response of the session's microphone and line at ``freqs`` (Hz)."""
    f = np.maximum(freqs, 1.0)
    log_f = np.log2(f / 1000.0)
    order = 2 * session.band_order
    h = 1.0 + np.exp2(order * (np.log2(session.low_cut_hz / 1000.0) - log_f))
    h *= 1.0 + np.exp2(order * (log_f - np.log2(session.high_cut_hz / 1000.0)))
    bell = np.exp(-0.5 * ((log_f - np.log2(session.eq_hz / 1000.0)) / session.eq_octaves) ** 2)
    gain_db = session.tilt_db_per_octave * np.clip(log_f, -4.0, 3.0) + session.eq_db * bell
    return np.exp2(gain_db * (np.log2(10.0) / 20.0)) / np.sqrt(h)


def active_level(x: np.ndarray, frame: int = 320) -> float:
    """Mean power of the frames of ``x`` within 35 dB of its loudest frame (speech activity)."""
    n = x.size // frame * frame
    if n == 0:
        return float(np.mean(x**2)) if x.size else 0.0
    power = np.mean(x[:n].reshape(-1, frame) ** 2, axis=1)
    top = float(power.max())
    if top <= 0:
        return 0.0
    return float(power[power >= top * 10 ** (-3.5)].mean())


def mu_law(x: np.ndarray) -> np.ndarray:
    """G.711 mu-law (mu = 255) compression to 8 bits and expansion back; input in [-1, 1]."""
    y = np.sign(x) * np.log1p(MU * np.minimum(np.abs(x), 1.0)) / np.log1p(MU)
    q = np.round(y * 127.0) / 127.0
    return np.sign(q) * np.expm1(np.abs(q) * np.log1p(MU)) / MU


def _through(x: np.ndarray, response_on_grid: np.ndarray) -> np.ndarray:
    """``x`` filtered by a zero-phase magnitude response given on :data:`_GRID`."""
    n_fft = scipy.fft.next_fast_len(x.size + 2048, real=True)
    freqs = np.arange(n_fft // 2 + 1) * (SAMPLE_RATE / n_fft)
    return scipy.fft.irfft(scipy.fft.rfft(x, n_fft) * np.interp(freqs, _GRID, response_on_grid), n_fft)[: x.size]


def session_background(
    session: Session, n: int, rng: np.random.Generator, babble: np.ndarray | None
) -> np.ndarray:
    """The session's background as its microphone hears it, ``n`` samples.

    Noise of the session's kind at ``snr_db`` and a white noise floor 45-60 dB down, both
    through the microphone/line response and both relative to an active-speech power of 1
    (:func:`record` scales them to the speech it is added to).
    """
    n_fft = scipy.fft.next_fast_len(n + 2048, real=True)
    n_bins = n_fft // 2 + 1
    response = np.interp(np.arange(n_bins) * (SAMPLE_RATE / n_fft), _GRID, channel_response(session, _GRID))
    weight = np.full(n_bins, 2.0)  # Parseval weights of a one-sided spectrum
    weight[0] = 1.0
    if n_fft % 2 == 0:
        weight[-1] = 1.0
    floor = (rng.standard_normal(n_bins) + 1j * rng.standard_normal(n_bins)) * response  # white, drawn as a spectrum
    floor_power = float(np.sum(weight * np.abs(floor) ** 2)) / n_fft**2
    spec = floor * (10 ** (-float(rng.uniform(45.0, 60.0)) / 20) / np.sqrt(max(floor_power, 1e-30)))
    if session.noise_kind != "none":
        noise = scipy.fft.rfft(noise_of_kind(session.noise_kind, rng, n, babble), n_fft) * response
        noise_power = float(np.sum(weight * np.abs(noise) ** 2)) / (n_fft * n)
        spec += noise * (10 ** (-session.snr_db / 20) / np.sqrt(max(noise_power, 1e-30)))
    return scipy.fft.irfft(spec, n_fft)[:n]


def record(
    speech: np.ndarray,
    session: Session,
    rir: np.ndarray | None,
    background: np.ndarray,
    rng: np.random.Generator,
) -> np.ndarray:
    """Record ``speech`` in ``session``'s room with its background; return 16-bit PCM samples.

    Args:
        speech: speech at :data:`.synth.SAMPLE_RATE`, already through the session's
            microphone (see ``channel`` of :func:`.synth.synthesize`; the room and the
            microphone are linear, so their order does not matter).
        session: the session's conditions.
        rir: the session room's impulse response, or ``None`` for a dry room.
        background: a stretch of :func:`session_background` as long as ``speech``.
        rng: random generator for this utterance's departures from the session.

    Returns:
        int16 array: reverberation, the background at the session's SNR (+-2 dB) relative
        to the (reverberant) active speech, mu-law if a telephone line, the session's level
        (+-1 dB).
    """
    n = speech.size
    x = speech
    if rir is not None:
        n_fft = scipy.fft.next_fast_len(n + rir.size, real=True)
        x = scipy.fft.irfft(scipy.fft.rfft(x, n_fft) * scipy.fft.rfft(rir, n_fft), n_fft)[:n]
    gain = np.sqrt(active_level(x)) * 10 ** (2.0 * float(rng.uniform(-1, 1)) / 20)
    x = x + background * gain
    if session.telephone:  # an 8 kHz G.711 line: its companding noise stays below 4 kHz
        x = mu_law(x * (10 ** (-20.0 / 20) / np.sqrt(max(active_level(x), 1e-20))))
        x = _through(x, _TELEPHONE_LOWPASS)
    level = _REFERENCE_DBFS + session.level_db + float(rng.uniform(-1, 1))
    x = x * (10 ** (level / 20) / np.sqrt(max(active_level(x), 1e-20)))
    return np.clip(np.round(x * 32767.0), -32768, 32767).astype(np.int16)
