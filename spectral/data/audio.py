"""Audio file checks shared by the prepare and features stages.

Reads only headers (fast on VoxCeleb's 150k files) and refuses, naming the file:
non-audio or empty files, WAV files whose data chunk is cut short, more than one
channel, and a sample rate other than the one expected.
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


def read_int16_scale(path: str | Path, sampling_rate: int = 16000) -> np.ndarray:
    """Read a mono file as float32 samples on Kaldi's 16-bit scale (-32768..32767).

    Kaldi's feature extractors see raw 16-bit sample values; lhotse works on
    [-1, 1] floats, so features agree with Kaldi only on this scale.
    """
    try:
        data, sr = sf.read(str(path), dtype="int16", always_2d=True)
    except Exception as e:
        raise InputError(path, f"cannot decode audio ({e})") from None
    if sr != sampling_rate:
        raise InputError(path, f"expected {sampling_rate} Hz audio, found {sr} Hz")
    if data.shape[1] != 1:
        raise InputError(path, f"expected mono audio, found {data.shape[1]} channels")
    if data.shape[0] == 0:
        raise InputError(path, "holds no audio samples")
    return data[:, 0].astype(np.float32)
