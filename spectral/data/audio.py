"""Audio input of every stage: one header check and one reader (prepare, features, training, embed).

:func:`check_audio` reads only headers (fast on VoxCeleb's 150k files; the prepare stage
calls it for every file) and refuses, naming the file: missing, non-audio or empty files,
WAV files whose data chunk is cut short, more than one channel, and a sample rate other
than the one expected. :func:`read_audio` runs the same check and then decodes, refusing
a file that decodes to fewer samples than its header declares or to NaN/inf samples.

Every PCM and float subtype libsndfile reads (8/16/24/32-bit PCM, u-law, A-law, 32/64-bit
float, FLAC, ...) is decoded to float and then scaled: ``scale="int16"`` gives Kaldi's
16-bit range (-32768..32767; a 16-bit PCM file gives exactly its sample values, a float
file its [-1, 1] values times 32768), ``scale="unit"`` the [-1, 1] range the SSL
backbones take. (Reading as ``dtype="int16"`` would not do: libsndfile does not rescale
float files, so every float sample became 0.)
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from spectral.errors import InputError


@dataclass(frozen=True)
class AudioInfo:
    """What the header of one audio file says."""

    path: str
    sampling_rate: int
    num_samples: int
    channels: int

    @property
    def duration(self) -> float:
        return self.num_samples / self.sampling_rate


def _wav_declared_data_end(path: str, size: int) -> tuple[int, int] | None:
    """(offset of the end of the data chunk as declared, bytes per frame), or None if
    this is not a RIFF/WAVE file whose chunks can be walked."""
    with open(path, "rb") as f:
        head = f.read(12)
        if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
            return None
        block_align = 0
        pos = 12
        while pos + 8 <= size:
            f.seek(pos)
            cid, csize = struct.unpack("<4sI", f.read(8))
            if cid == b"fmt ":
                fmt = f.read(min(csize, 16))
                if len(fmt) >= 14:
                    block_align = struct.unpack("<H", fmt[12:14])[0]
            if cid == b"data":
                return pos + 8 + csize, max(block_align, 1)
            pos += 8 + csize + (csize & 1)
    return None


def check_audio(path: str | Path, sampling_rate: int = 16000, mono: bool = True) -> AudioInfo:
    """Validate one audio file from its header and return what it holds.

    Raises :class:`InputError` naming ``path`` when the file is missing, empty, not
    audio, truncated (a WAV data chunk longer than the file), has more than one
    channel (when ``mono``), or is not at ``sampling_rate`` Hz.
    """
    path = str(path)
    try:
        size = os.path.getsize(path)
    except OSError as e:
        raise InputError(path, f"cannot read audio file ({e.strerror})") from None
    if size == 0:
        raise InputError(path, "empty file (0 bytes)")
    try:
        info = sf.info(path)
    except Exception as e:  # libsndfile's own message says what it found
        raise InputError(path, f"not a readable audio file ({e})") from None
    declared = _wav_declared_data_end(path, size)
    if declared is not None:
        end, block = declared
        if end > size:
            raise InputError(
                path,
                f"truncated WAV: header declares {end - size} more bytes of audio "
                f"than the file holds ({size} bytes)",
            )
    if info.frames <= 0:
        raise InputError(path, "holds no audio samples")
    if mono and info.channels != 1:
        raise InputError(path, f"expected mono audio, found {info.channels} channels")
    if info.samplerate != sampling_rate:
        raise InputError(path, f"expected {sampling_rate} Hz audio, found {info.samplerate} Hz")
    return AudioInfo(path, int(info.samplerate), int(info.frames), int(info.channels))


SCALES = {"int16": 32768.0, "unit": 1.0}


def read_audio(path: str | Path, sampling_rate: int = 16000, scale: str = "int16", start: int = 0,
               frames: int | None = None) -> np.ndarray:
    """Check and decode a mono audio file; returns float32 samples on ``scale``.

    ``scale``: ``"int16"`` (Kaldi's 16-bit range) or ``"unit"`` ([-1, 1]). ``start`` and
    ``frames`` select a segment (all of it by default). Raises :class:`InputError` naming
    ``path`` for everything :func:`check_audio` refuses, a file that decodes to fewer
    samples than its header declares, and NaN or infinite samples.
    """
    if scale not in SCALES:
        raise ValueError(f"scale must be one of {', '.join(SCALES)}, got {scale!r}")
    info = check_audio(path, sampling_rate)
    want = max(0, info.num_samples - start if frames is None else min(frames, info.num_samples - start))
    try:
        data, _ = sf.read(str(path), start=start, frames=want, dtype="float64", always_2d=True)
    except Exception as e:
        raise InputError(path, f"cannot decode audio ({e})") from None
    if data.shape[0] < want:
        raise InputError(path, f"truncated audio: decoded {start + data.shape[0]} of the "
                               f"{info.num_samples} samples its header declares")
    samples = data[:, 0]
    bad = ~np.isfinite(samples)
    if bad.any():
        raise InputError(path, f"holds a non-finite sample ({samples[bad][0]}) at sample {start + int(np.argmax(bad))}")
    return (samples * SCALES[scale]).astype(np.float32)


def read_int16_scale(path: str | Path, sampling_rate: int = 16000) -> np.ndarray:
    """A mono file as float32 samples on Kaldi's 16-bit scale (-32768..32767).

    Kaldi's feature extractors see raw 16-bit sample values; lhotse works on
    [-1, 1] floats, so features agree with Kaldi only on this scale.
    """
    return read_audio(path, sampling_rate, scale="int16")
