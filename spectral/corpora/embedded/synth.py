"""Source-filter synthesis of one utterance (stage corpus; reads and writes no files).

The source is a Rosenberg glottal pulse train (open and speed quotient from the voice) with
per-cycle jitter and shimmer, differentiated for lip radiation, plus aspiration noise gated
by the glottal cycle (breathiness) and by the phones (/h/, plosive release). A second noise
source carries frication and plosive bursts. Prosody: phrase declination, pitch accents on
stressed vowels, final falls or question rises and a slow random wander, all scaled by the
speaker's f0 range.

Filtering is frame-wise in the frequency domain (256-sample Hann frames, hop 128, FFT 512):
each frame's vocal-tract magnitude response is a cascade of second-order resonators at the
smoothed formant tracks (F1-F3 per frame; F4-F7, spectral tilt and the LF-style return
phase constant per utterance), with a nasal murmur and anti-resonance blended in during
nasals; the frication source gets its own resonance. The product of the three time-varying
resonator denominators is a degree-6 polynomial in cos(omega), evaluated for all frames by
one matrix product, which keeps the synthesiser at a few milliseconds per second of audio.
"""

from __future__ import annotations

import numpy as np
import scipy.fft
from numpy.lib.stride_tricks import sliding_window_view

from .phones import COL, Inventory, phone_segments
from .voice import Voice

#: Sample rate of everything the corpus generator writes.
SAMPLE_RATE = 16000
HOP = 128
WIN = 256
NFFT = 512
# periodic Hann: overlapping copies at hop WIN/2 sum to one
_WINDOW = (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(WIN) / WIN)).astype(np.float32)
#: Frequencies (Hz) of the bins of the synthesis frames; a ``channel`` response is given on these.
FRAME_FREQS = np.fft.rfftfreq(NFFT, 1 / SAMPLE_RATE)
_COS = np.cos(2 * np.pi * FRAME_FREQS / SAMPLE_RATE)
_COS_POWERS = np.stack([_COS**j for j in range(7)])  # (7, bins)
_PULSE_TABLE = 16384
_FRIC_GAIN = 3.4  # frication filter gain relative to the tract filter: /s/ about 10 dB below vowels
_BASE_BANDWIDTH = ((40.0, 0.05), (50.0, 0.03), (80.0, 0.03))  # B_i = a + b * F_i, Hz
_HIGH_FORMANTS = (3500.0, 4500.0, 5500.0, 6500.0)  # F4-F7, male reference


def _smooth_samples(x: np.ndarray, width: int) -> np.ndarray:
    """Centred moving average of ``x`` over ``width`` samples (edges hold their value)."""
    if width <= 1:
        return x
    half = width // 2
    padded = np.concatenate([np.full(half, x[0]), x, np.full(width - half, x[-1])])
    c = np.cumsum(padded, dtype=np.float64)
    return ((c[width:] - c[:-width])[: x.size] * (1.0 / width)).astype(x.dtype)


def _hann_kernel(width: int) -> np.ndarray:
    """Hann smoothing kernel of ``width`` taps, summing to one."""
    k = np.hanning(width + 2)[1:-1]
    return k / k.sum()


def _smooth_frames(x: np.ndarray, width: int) -> np.ndarray:
    """Hann-weighted centred smoothing along axis 0 of a frame track (edges hold their value)."""
    if width <= 1:
        return x
    if x.ndim == 2:
        return np.stack([_smooth_frames(x[:, i], width) for i in range(x.shape[1])], axis=1)
    half = width // 2
    padded = np.concatenate([np.full(half, x[0]), x, np.full(width - 1 - half, x[-1])])
    return np.convolve(padded, _hann_kernel(width), mode="valid")


def _fill_nan(track: np.ndarray, default: float) -> np.ndarray:
    """Linear interpolation across NaN frames; ``default`` if the track has no value at all."""
    ok = ~np.isnan(track)
    if not ok.any():
        return np.full_like(track, default)
    idx = np.arange(track.size)
    return np.interp(idx, idx[ok], track[ok])


def _resonator_polys(freq: np.ndarray, bw: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Quadratics in cos(omega) of second-order resonator denominators, and their DC values.

    For a pole pair r*exp(+-j*theta), |(1 - p z^-1)(1 - p* z^-1)|^2 on the unit circle equals
    a - b cos(w) + c cos(w)^2. Returns coefficients of shape (..., 3) (constant first) and
    the DC magnitude 1 + r^2 - 2 r cos(theta), used to normalise each resonator to 0 dB at DC.
    """
    r = np.exp(-np.pi * bw / SAMPLE_RATE)
    theta = 2 * np.pi * freq / SAMPLE_RATE
    c = 1 + r * r
    k = 2 * r
    cos_t = np.cos(theta)
    sin_t = np.sin(theta)
    coefs = np.stack([c * c - k * k * sin_t * sin_t, -2 * c * k * cos_t, k * k], axis=-1)
    return coefs, c - k * cos_t


def _constant_response(voice: Voice) -> np.ndarray:
    """Per-utterance part of the tract response: F4-F7, spectral tilt and LF return phase."""
    scale = voice.formant_scale
    out = np.ones_like(FRAME_FREQS)
    offsets = (voice.formant_offsets[3], voice.formant_offsets[4], 1.0, 1.0)
    for f_ref, off in zip(_HIGH_FORMANTS, offsets):
        f = f_ref * scale * off
        if f >= 0.47 * SAMPLE_RATE:
            continue
        coefs, dc = _resonator_polys(np.array(f), np.array(voice.bandwidth_scale * (100 + 0.04 * f)))
        den = coefs[0] + _COS * (coefs[1] + coefs[2] * _COS)
        out *= dc / np.sqrt(den)
    f = np.maximum(FRAME_FREQS, 100.0)
    out *= 10 ** (voice.tilt_db_per_octave * np.log2(f / 1000.0) / 20)
    fa = 1.0 / (2 * np.pi * voice.return_ms / 1000)
    out /= np.sqrt(1 + (FRAME_FREQS / fa) ** 2)
    return out


def _f0_track(voice: Voice, seg: np.ndarray, starts: np.ndarray, n_frames: int, rng) -> np.ndarray:
    """Frame-rate f0 (Hz): declination, accents, final fall/rise and slow wander."""
    t = np.arange(n_frames) * HOP / SAMPLE_RATE
    phrase = seg[:, COL["phrase"]]
    ends = starts + seg[:, COL["dur"]]
    spoken = np.flatnonzero(phrase >= 0)  # phrases are contiguous runs of segments, in order
    change = phrase[spoken][1:] != phrase[spoken][:-1]
    p_start = starts[spoken[np.concatenate([[True], change])]]
    p_end = ends[spoken[np.concatenate([change, [True]])]]
    which = np.clip(np.searchsorted(p_start, t, side="right") - 1, 0, p_start.size - 1)
    pos = np.clip((t - p_start[which]) / np.maximum(p_end[which] - p_start[which], 1e-3), 0.0, 1.0)
    question = rng.random(p_start.size) < 0.15
    r = voice.f0_range
    log_f0 = np.log(voice.f0_hz) + 0.7 * r * (0.5 - pos)
    tail = np.clip((pos - 0.75) / 0.25, 0.0, 1.0) ** 2
    log_f0 += np.where(question[which], 1.5 * r, -0.6 * r) * tail
    seg_idx = np.clip(np.searchsorted(ends, t, side="right"), 0, len(seg) - 1)
    accent = seg[seg_idx, COL["accent"]]
    log_f0 += 1.2 * r * _smooth_frames(accent, 15)
    wander = _smooth_frames(rng.standard_normal(n_frames), 25)
    log_f0 += 0.04 * wander / np.sqrt((_hann_kernel(25) ** 2).sum())
    return np.exp(log_f0)


def _glottal_source(voice: Voice, f0: np.ndarray, rng) -> tuple[np.ndarray, np.ndarray]:
    """Differentiated Rosenberg pulses with jitter and shimmer, and the glottal flow itself."""
    phase = np.cumsum(f0 * (1.0 / SAMPLE_RATE))
    n_periods = int(phase[-1]) + 3
    jitter = np.exp(voice.jitter * rng.standard_normal(n_periods))
    phase = np.cumsum(f0 * (jitter * (1.0 / SAMPLE_RATE))[phase.astype(np.int64)])
    period = phase.astype(np.int64)
    shimmer = (1 + voice.shimmer * rng.standard_normal(n_periods + 1)).astype(np.float32)
    oq = voice.open_quotient
    tp = oq * voice.speed_quotient / (1 + voice.speed_quotient)
    tn = oq - tp
    # one cycle of the Rosenberg pulse, tabulated finely enough (-48 dB) to index by phase
    u = np.arange(_PULSE_TABLE) / _PULSE_TABLE
    table = np.where(
        u < tp,
        0.5 - 0.5 * np.cos(np.pi * np.minimum(u / tp, 1.0)),
        np.cos(0.5 * np.pi * np.clip((u - tp) / tn, 0.0, 1.0)),
    ).astype(np.float32)
    flow = table[((phase - period) * _PULSE_TABLE).astype(np.int32)] * shimmer[period]
    return np.diff(flow, prepend=0.0), flow


def _frication_params(seg: np.ndarray, bounds: np.ndarray, frames: np.ndarray) -> np.ndarray:
    """Frication spectrum (peak Hz, width Hz, floor) of each frame in ``frames``, shape (n, 3).

    Each frame takes the average over the frication segments its window overlaps (widened
    by the gain smoothing), weighted by overlap times frication level; bursts shorter than a
    hop are therefore never missed.
    """
    fric = np.flatnonzero(seg[:, COL["fric"]] > 0)
    ends = bounds[fric].astype(np.float64)
    starts = np.concatenate([[0], bounds[:-1]])[fric].astype(np.float64)
    lo = frames[:, None] * HOP - HOP - 32.0
    hi = frames[:, None] * HOP + HOP + 32.0
    weight = np.maximum(np.minimum(hi, ends[None]) - np.maximum(lo, starts[None]), 0.0) * seg[fric, COL["fric"]]
    weight[weight.sum(axis=1) == 0] = 1.0
    values = seg[fric][:, [COL["fric_hz"], COL["fric_sigma"], COL["fric_floor"]]]
    return (weight @ values) / weight.sum(axis=1, keepdims=True)


def _stft_frames(x: np.ndarray, n_frames: int, rows: np.ndarray | None = None) -> np.ndarray:
    """Hann-windowed frames of ``x`` centred in NFFT-long buffers, as rfft spectra (complex64).

    ``rows`` selects frames (all when ``None``).
    """
    padded = np.zeros(n_frames * HOP + WIN, dtype=np.float32)
    padded[HOP : HOP + x.size] = x
    frames = sliding_window_view(padded, WIN)[::HOP][:n_frames]
    if rows is not None:
        frames = frames[rows]
    buf = np.zeros((frames.shape[0], NFFT), dtype=np.float32)
    lead = (NFFT - WIN) // 2
    np.multiply(frames, _WINDOW, out=buf[:, lead : lead + WIN])
    return scipy.fft.rfft(buf, axis=1)


def _overlap_add(spec: np.ndarray, n_samples: int) -> np.ndarray:
    """Inverse of :func:`_stft_frames` after filtering: irfft and overlap-add at hop HOP."""
    frames = scipy.fft.irfft(spec, n=NFFT, axis=1)
    n_frames = frames.shape[0]
    k = NFFT // HOP
    out = np.zeros((n_frames + k - 1, HOP), dtype=np.float32)
    for j in range(k):
        out[j : j + n_frames] += frames[:, j * HOP : (j + 1) * HOP]
    lead = HOP + (NFFT - WIN) // 2
    return out.reshape(-1)[lead : lead + n_samples]


def synthesize_segments(
    voice: Voice,
    seg: np.ndarray,
    n_samples: int,
    rng: np.random.Generator,
    channel: np.ndarray | None = None,
) -> np.ndarray:
    """Render a segment table (see :func:`.phones.phone_segments`) with ``voice``.

    Args:
        voice: the (utterance-varied) voice.
        seg: segment table, shape (n_segments, len(COLUMNS)); time past its end is silence.
        n_samples: length of the output at :data:`SAMPLE_RATE`.
        rng: random generator for the noise sources, jitter, shimmer and prosody.
        channel: optional magnitude response at :data:`FRAME_FREQS` (a microphone, a line)
            applied in the same frequency-domain pass, which costs nothing extra.

    Returns:
        float64 signal of ``n_samples``, active-speech RMS 0.1 (silence stays silent).
    """
    # ---- segment timing: per-sample and per-frame segment index (index len(seg) = silence)
    dur = seg[:, COL["dur"]]
    starts = np.concatenate([[0.0], np.cumsum(dur)[:-1]])
    bounds = np.minimum(np.round(np.cumsum(dur) * SAMPLE_RATE).astype(np.int64), n_samples)
    lengths = np.diff(np.concatenate([[0], bounds]))
    silence = np.zeros((1, seg.shape[1]))
    silence[0, COL["f1"] : COL["f3_end"] + 1] = np.nan
    seg_all = np.vstack([seg, silence])
    lengths_all = np.concatenate([lengths, [n_samples - bounds[-1]]])
    n_frames = n_samples // HOP + 2
    centres = np.minimum(np.arange(n_frames) * HOP, n_samples - 1)
    seg_of_frame = np.searchsorted(bounds, centres, side="right")

    # ---- sample-rate gains
    voice_g = _smooth_samples(np.repeat(seg_all[:, COL["voice"]].astype(np.float32), lengths_all), 80)
    asp_g = _smooth_samples(np.repeat(seg_all[:, COL["asp"]].astype(np.float32), lengths_all), 64)
    fric_g = _smooth_samples(np.repeat(seg_all[:, COL["fric"]].astype(np.float32), lengths_all), 32)

    # ---- source
    f0_frames = _f0_track(voice, seg, starts, n_frames, rng)
    # f0 per sample, linear between frame centres (which lie exactly HOP samples apart)
    ramp = np.arange(HOP) / HOP
    f0 = (f0_frames[:-1, None] + np.diff(f0_frames)[:, None] * ramp).reshape(-1)[:n_samples]
    dflow, flow = _glottal_source(voice, f0, rng)
    voiced = voice_g > 0.5
    rms = np.sqrt(np.mean(dflow[voiced] ** 2)) if voiced.any() else np.sqrt(np.mean(dflow**2)) + 1e-12
    dflow /= rms
    noise = rng.standard_normal(n_samples, dtype=np.float32)
    breath = np.float32(10 ** (voice.breath_db / 20) / 0.6) * voice_g * (0.3 + flow)
    tract_src = voice_g * dflow + noise * (asp_g + breath)

    # ---- formant tracks (frame rate)
    frame_seg = seg_all[seg_of_frame]
    t = np.arange(n_frames) * HOP / SAMPLE_RATE
    starts_all = np.concatenate([starts, [starts[-1] + dur[-1]]])
    dur_all = np.concatenate([dur, [1.0]])
    rho = np.clip((t - starts_all[seg_of_frame]) / np.maximum(dur_all[seg_of_frame], 1e-3), 0.0, 1.0)
    start, end = frame_seg[:, COL["f1"] : COL["f1"] + 3], frame_seg[:, COL["f1_end"] : COL["f1_end"] + 3]
    form = start * (1 - rho[:, None]) + end * rho[:, None]
    vowel = frame_seg[:, COL["vowel"]].astype(np.int64)
    form = form * np.where(vowel[:, None] >= 0, voice.idiolect[np.maximum(vowel, 0)], 1.0)
    form = np.stack([_fill_nan(form[:, i], d) for i, d in enumerate((500.0, 1500.0, 2500.0))], axis=1)
    form = form * (voice.formant_scale * np.asarray(voice.formant_offsets[:3]))
    nasal = _smooth_frames(frame_seg[:, COL["nasal"]], 3)
    form[:, 0] = form[:, 0] * (1 - nasal) + voice.nasal_murmur_hz * nasal
    width = max(1, int(round(voice.transition_ms / 1000 * SAMPLE_RATE / HOP)))
    form = _smooth_frames(form, width)
    f4 = _HIGH_FORMANTS[0] * voice.formant_scale * voice.formant_offsets[3]
    form[:, 0] = np.clip(form[:, 0], 150.0, 1100.0)
    form[:, 1] = np.clip(form[:, 1], form[:, 0] + 200.0, f4 - 600.0)
    form[:, 2] = np.clip(form[:, 2], form[:, 1] + 250.0, f4 - 200.0)
    breath_widen = 1 + 0.02 * (voice.breath_db + 30.0)
    bw = np.stack([a + b * form[:, i] for i, (a, b) in enumerate(_BASE_BANDWIDTH)], axis=1)
    bw = bw * (voice.bandwidth_scale * breath_widen)
    bw[:, 0] += 60.0 * nasal

    # ---- tract response: product of three resonators as one degree-6 polynomial in cos(w)
    coefs, dc = _resonator_polys(form, bw)  # (frames, 3, 3), (frames, 3)
    p = coefs[:, 0]
    for i in (1, 2):
        q = coefs[:, i]
        prod = np.zeros((n_frames, p.shape[1] + 2))
        for j in range(3):
            prod[:, j : j + p.shape[1]] += p * q[:, j : j + 1]
        p = prod
    den = p @ _COS_POWERS  # (frames, bins)
    root = den.astype(np.float32)
    np.sqrt(np.maximum(root, np.float32(1e-30), out=root), out=root)
    tract = np.divide(dc.prod(axis=1).astype(np.float32)[:, None], root, out=root)
    tract *= _constant_response(voice).astype(np.float32)
    nasal_frames = np.flatnonzero(nasal > 0.01)
    if nasal_frames.size:
        zero_hz = _fill_nan(np.where(frame_seg[:, COL["zero_hz"]] > 0, frame_seg[:, COL["zero_hz"]], np.nan), 1500.0)
        zero_freq = zero_hz[nasal_frames] * voice.formant_scale**0.5
        zc, zdc = _resonator_polys(zero_freq, np.full(nasal_frames.size, 150.0))
        zden = zc[:, :1] + _COS * (zc[:, 1:2] + zc[:, 2:3] * _COS)
        w = nasal[nasal_frames, None]
        tract[nasal_frames] *= 1 - w + w * np.sqrt(zden) / zdc[:, None]

    spec = _stft_frames(tract_src, n_frames) * tract

    # ---- frication: its own resonance, only in frames that carry any
    block = np.concatenate([fric_g, np.zeros(n_frames * HOP + HOP - n_samples)])
    block_energy = block.reshape(-1, HOP).sum(axis=1)
    frame_energy = block_energy[:n_frames] + block_energy[1 : n_frames + 1]
    active = np.flatnonzero(frame_energy > 1e-6)
    if active.size:
        fric_src = np.zeros(n_samples, dtype=np.float32)
        on = fric_g > 1e-6
        fric_src[on] = fric_g[on] * rng.standard_normal(int(on.sum()), dtype=np.float32)
        fc, sigma, floor = _frication_params(seg, bounds, active).T
        fscale = voice.fricative_scale * voice.formant_scale**0.7
        fc = fc * fscale
        sigma = sigma * fscale
        shape = floor[:, None] + np.exp(-0.5 * ((FRAME_FREQS - fc[:, None]) / sigma[:, None]) ** 2)
        spec[active] += _stft_frames(fric_src, n_frames, active) * (_FRIC_GAIN * shape).astype(np.float32)

    if channel is not None:
        spec *= channel.astype(np.float32)
    out = _overlap_add(spec, n_samples).astype(np.float64)
    active_speech = (voice_g + asp_g + fric_g) > 0.05
    level = np.sqrt(np.mean(out[active_speech] ** 2)) if active_speech.any() else 0.0
    return out * (0.1 / level) if level > 0 else out


def synthesize(
    voice: Voice,
    inventory: Inventory,
    duration: float,
    rng: np.random.Generator,
    channel: np.ndarray | None = None,
) -> np.ndarray:
    """Speak a random phone sequence of ``inventory`` with ``voice`` for ``duration`` seconds.

    ``channel`` is an optional magnitude response at :data:`FRAME_FREQS` applied on the way.
    Returns a float64 signal at :data:`SAMPLE_RATE` of exactly ``round(duration * 16000)``
    samples with active-speech RMS 0.1; deterministic given ``rng``'s state.
    """
    n_samples = int(round(duration * SAMPLE_RATE))
    seg = phone_segments(inventory, duration, voice.rate, rng)
    return synthesize_segments(voice, seg, n_samples, rng, channel)
