"""Training data of the pretrain and finetune stages: crops, speaker-balanced batches, augmentation.

Reads a Kaldi data directory (``utt2spk``; ``feats.scp`` for fbank backbones, ``wav.scp``
for waveform backbones or waveform augmentation) and, when augmentation is on, the noise and
room-impulse-response recordings: lhotse manifests written by the augment stage
(:mod:`spectral.augment`; from MUSAN and RIRS_NOISES, or the embedded corpus's ``noise/``
and ``rir/``), or directories prepared the same way in memory. Their audio is loaded through
lhotse. Writes nothing.

Everything random is a pure function of (seed, epoch, step, item): a batch is drawn from
``numpy.random.default_rng([seed, epoch, step])`` and each of its crops from
``default_rng([seed, epoch, step, item])``. So a resumed run sees exactly the batches an
uninterrupted run sees, and under DistributedDataParallel each process takes its share
of the very batch one process would have used.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

import torch
from torch import Tensor

from spectral.augment import RecordingPool
from spectral.data.audio import check_audio, read_audio
from spectral.data.kaldi import c_sorted, read_table, spk2utt_from
from spectral.errors import InputError
from spectral.train.config import AugmentConfig

log = logging.getLogger("spectral.train.data")

SAMPLE_RATE = 16000
FRAMES_PER_SECOND = 100  # fbank frame shift 10 ms


def split_validation(utt2spk: dict[str, str], per_speaker: int, seed: int) -> tuple[list[str], list[str]]:
    """(training utterances, held-out utterances): ``per_speaker`` of each speaker's held out.

    Speakers with fewer than ``per_speaker + 1`` utterances keep all of theirs for training.
    The choice depends only on ``seed`` and the data; both lists are in C order.
    """
    rng = np.random.default_rng([seed, 7919])
    train, val = [], []
    for spk, utts in sorted(spk2utt_from(utt2spk).items(), key=lambda kv: kv[0].encode()):
        if per_speaker > 0 and len(utts) > per_speaker:
            picked = set(rng.choice(len(utts), size=per_speaker, replace=False).tolist())
            val.extend(u for i, u in enumerate(utts) if i in picked)
            train.extend(u for i, u in enumerate(utts) if i not in picked)
        else:
            train.extend(utts)
    return c_sorted(train), c_sorted(val)


def _wav_path(value: str, wav_scp: Path) -> str:
    if value.rstrip().endswith("|"):
        raise InputError(wav_scp, f"piped wav.scp entries are not supported for training ({value!r})")
    return value


def _fit(x: np.ndarray, length: int, offset: int) -> np.ndarray:
    """``length`` rows of ``x`` from ``offset``, repeating ``x`` (wrapping) when it is too short."""
    n = x.shape[0]
    if n >= length:
        return x[offset : offset + length]
    reps = -(-length // n)
    return np.concatenate([x] * reps, axis=0)[:length]


@dataclass
class Item:
    """One crop of a batch: the utterance and its speaker label."""

    utt: str
    label: int


class SpeakerData:
    """The utterances of one data directory, as fixed-length crops with speaker labels.

    ``kind`` is "fbank" (matrices from ``feats.scp``, mean-normalised) or "waveform"
    (float samples in [-1, 1] from ``wav.scp``). With waveform augmentation and fbank
    input, crops are read as audio, augmented, and turned into fbank on the fly.
    ``noise`` and ``rir`` are each a recordings manifest of the augment stage or a directory
    (MUSAN, RIRS_NOISES or any directory of audio files, see :mod:`spectral.augment`);
    they are needed when ``augment.noise_prob`` or ``augment.reverb_prob`` is above 0.
    """

    FBANK_CACHE_BYTES = 1 << 30  # fbank kept in memory per data set (the embedded pre-training set: 0.35 GB)

    def __init__(
        self,
        data_dir: str | Path,
        kind: str,
        crop_seconds: float,
        augment: AugmentConfig | None = None,
        noise: str | Path | None = None,
        rir: str | Path | None = None,
        speakers: Sequence[str] | None = None,
        utts: Sequence[str] | None = None,
    ) -> None:
        self.data_dir = Path(data_dir)
        self.kind = kind
        self.augment = augment or AugmentConfig()
        need = ["utt2spk"]
        use_wave = kind == "waveform" or self.augment.waveform
        need.append("wav.scp" if use_wave else "feats.scp")
        if kind == "fbank" and self.augment.waveform:
            need.append("feats.scp")
        for name in need:
            if not (self.data_dir / name).is_file():
                raise InputError(self.data_dir / name, "missing (run the prepare and features stages first)")
        self.utt2spk = read_table(self.data_dir / "utt2spk")
        if not self.utt2spk:
            raise InputError(self.data_dir / "utt2spk", "holds no utterances")
        self.feats = read_table(self.data_dir / "feats.scp") if kind == "fbank" else {}
        self.wavs = read_table(self.data_dir / "wav.scp") if use_wave else {}
        table, name = (self.wavs, "wav.scp") if use_wave else (self.feats, "feats.scp")
        missing = [u for u in self.utt2spk if u not in table]
        if missing:
            raise InputError(self.data_dir / name, f"has no entry for {len(missing)} utterance(s) of utt2spk, e.g. {missing[0]!r}")
        self.speakers = list(speakers) if speakers is not None else c_sorted(set(self.utt2spk.values()))
        self.label_of = {s: i for i, s in enumerate(self.speakers)}
        used = self.utt2spk if utts is None else {u: self.utt2spk[u] for u in utts}
        unknown = sorted({s for s in used.values() if s not in self.label_of})
        if unknown:
            raise InputError(self.data_dir / "utt2spk", f"speaker {unknown[0]!r} is not among the model's training speakers")
        self.utts = list(utts) if utts is not None else c_sorted(self.utt2spk)
        by_spk: dict[int, list[str]] = {}
        for u in self.utts:
            by_spk.setdefault(self.label_of[self.utt2spk[u]], []).append(u)
        self.spk_utts = [by_spk[i] for i in sorted(by_spk)]
        self.spk_labels = sorted(by_spk)
        self.crop_frames = max(1, int(round(crop_seconds * FRAMES_PER_SECOND)))
        self.crop_samples = max(1, int(round(crop_seconds * SAMPLE_RATE)))
        self._lengths: dict[str, int] = {}
        self._fbank = None
        self._fbank_cache: dict[str, np.ndarray] = {}
        self._fbank_cache_bytes = 0
        self.noises = self._pool(noise, "noise") if self.augment.noise_prob > 0 else None
        self.rirs = self._pool(rir, "rir") if self.augment.reverb_prob > 0 else None

    def _pool(self, source: str | Path | None, kind: str) -> RecordingPool:
        if source is None:
            prob = "noise_prob" if kind == "noise" else "reverb_prob"
            raise InputError(f"<{kind} recordings>", f"augment.{prob} > 0 needs --{kind}-manifest (the augment "
                                                      f"stage's) or augment.{kind}_dir")
        a = self.augment
        return RecordingPool(source, kind, musan_parts=a.musan_parts, rirs_parts=a.rirs_parts)

    def __len__(self) -> int:
        return len(self.utts)

    @property
    def num_speakers(self) -> int:
        return len(self.speakers)

    # -- sampling ---------------------------------------------------------------------

    def sample_batch(self, rng: np.random.Generator, batch_size: int, utts_per_speaker: int) -> list[Item]:
        """A speaker-balanced batch: batch_size / utts_per_speaker speakers, each with that many utterances."""
        n_spk = batch_size // utts_per_speaker
        spks = rng.choice(len(self.spk_utts), size=n_spk, replace=n_spk > len(self.spk_utts))
        items = []
        for s in spks:
            utts = self.spk_utts[s]
            for j in rng.choice(len(utts), size=utts_per_speaker, replace=utts_per_speaker > len(utts)):
                items.append(Item(utts[j], self.spk_labels[s]))
        return items

    # -- loading ----------------------------------------------------------------------

    def _load_fbank(self, utt: str) -> np.ndarray:
        """The mean-normalised fbank of ``utt``; kept in memory up to FBANK_CACHE_BYTES in all.

        Every step crops about batch_size matrices; reading each from its ark again was a
        tenth of a pre-training step. The cached array is shared: callers must not modify it.
        """
        cached = self._fbank_cache.get(utt)
        if cached is not None:
            return cached
        from spectral.features import load_feats

        try:
            mat = load_feats(self.feats[utt], cmn=True)
        except Exception as err:
            raise InputError(self.data_dir / "feats.scp", f"cannot load features of {utt!r} ({err})") from None
        if self._fbank_cache_bytes + mat.nbytes <= self.FBANK_CACHE_BYTES:
            mat.setflags(write=False)
            self._fbank_cache[utt] = mat
            self._fbank_cache_bytes += mat.nbytes
        return mat

    def _wave_length(self, utt: str) -> int:
        if utt not in self._lengths:
            path = _wav_path(self.wavs[utt], self.data_dir / "wav.scp")
            self._lengths[utt] = check_audio(path, SAMPLE_RATE).num_samples
        return self._lengths[utt]

    def _read_wave(self, utt: str, start: int, length: int) -> np.ndarray:
        """``length`` samples of ``utt`` from ``start`` (all of it when shorter), on the [-1, 1] scale."""
        n = self._wave_length(utt)
        path = self.wavs[utt]
        if n >= length:
            data = read_audio(path, SAMPLE_RATE, scale="unit", start=start, frames=length)
        else:
            data = read_audio(path, SAMPLE_RATE, scale="unit")
        return _fit(data, length, 0)

    def crop(self, utt: str, rng: np.random.Generator | None, augment: bool) -> np.ndarray:
        """One fixed-length crop of ``utt``: random offset from ``rng``, or the centre when ``rng`` is None."""
        wave_input = self.kind == "waveform" or (augment and self.augment.waveform)
        if wave_input:
            n, length = self._wave_length(utt), self.crop_samples
        else:
            mat = self._load_fbank(utt)
            n, length = mat.shape[0], self.crop_frames
        room = max(n - length, 0)
        start = (room // 2) if rng is None else int(rng.integers(0, room + 1))
        if not wave_input:
            x = _fit(mat, length, start)
        else:
            x = self._read_wave(utt, start, length)
            if augment and rng is not None:
                x = self._augment_wave(x, rng)
            if self.kind == "fbank":
                x = self._wave_to_fbank(x)
        if augment and rng is not None:
            x = self._spec_augment(x, rng)
        return np.ascontiguousarray(x, dtype=np.float32)

    def batch(self, items: Sequence[Item], rngs: Sequence[np.random.Generator | None], augment: bool) -> tuple[Tensor, Tensor]:
        """(inputs, labels) tensors of ``items``, one generator (or None: centre crop) per item."""
        xs = [self.crop(it.utt, rng, augment) for it, rng in zip(items, rngs)]
        return torch.from_numpy(np.stack(xs)), torch.tensor([it.label for it in items], dtype=torch.long)

    # -- augmentation -----------------------------------------------------------------

    def _wave_to_fbank(self, wave: np.ndarray) -> np.ndarray:
        if self._fbank is None:
            from spectral.features import FbankExtractor

            self._fbank = FbankExtractor()
        feats = self._fbank(wave * 32768.0)
        feats = _fit(feats, self.crop_frames, 0)
        return feats - feats.mean(axis=0, keepdims=True)

    def _augment_wave(self, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        a = self.augment
        use_rir = a.reverb_prob > 0 and rng.random() < a.reverb_prob
        use_noise = a.noise_prob > 0 and rng.random() < a.noise_prob
        power = float(np.mean(x * x)) + 1e-10
        if use_rir:
            from scipy.signal import fftconvolve

            rir = self.rirs.whole(int(rng.integers(len(self.rirs))))
            rir = rir / (np.sqrt(np.sum(rir * rir)) + 1e-10)
            peak = int(np.argmax(np.abs(rir)))
            y = fftconvolve(x, rir)[peak : peak + len(x)]
            x = (y * np.sqrt(power / (float(np.mean(y * y)) + 1e-10))).astype(np.float32)
        if use_noise:
            index = int(rng.integers(len(self.noises)))
            n = self.noises.num_samples(index)
            start = int(rng.integers(0, max(n - len(x), 0) + 1))
            # only the crop's stretch is read: a noise corpus of any size costs no memory
            noise = self.noises.read(index, start, len(x)) if n >= len(x) else _fit(self.noises.whole(index), len(x), 0)
            snr = rng.uniform(a.snr_min, a.snr_max)
            npow = float(np.mean(noise * noise)) + 1e-10
            x = x + noise * np.sqrt(power / (npow * 10.0 ** (snr / 10.0)))
        return np.clip(x, -1.0, 1.0).astype(np.float32)

    def _spec_augment(self, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        a = self.augment
        if a.time_masks == 0 and (a.freq_masks == 0 or x.ndim == 1):
            return x
        x = x.copy()
        unit = 320 if x.ndim == 1 else 1  # waveform: masks in 20 ms SSL frames
        for _ in range(a.time_masks):
            width = int(rng.integers(0, a.time_mask_width + 1)) * unit
            start = int(rng.integers(0, max(x.shape[0] - width, 0) + 1))
            x[start : start + width] = 0.0
        if x.ndim == 2:
            for _ in range(a.freq_masks):
                width = int(rng.integers(0, a.freq_mask_width + 1))
                start = int(rng.integers(0, max(x.shape[1] - width, 0) + 1))
                x[:, start : start + width] = 0.0
        return x
