"""Training data: held-out split, fixed-length crops, speaker-balanced batches, augmentation."""

from __future__ import annotations

import numpy as np
import pytest
from train_fixtures import tiny_cfg, tiny_data  # noqa: F401  (fixtures)

from spectral.data.kaldi import read_table
from spectral.errors import InputError
from spectral.train.config import AugmentConfig
from spectral.train.data import SpeakerData, split_validation


def test_validation_holds_out_utterances_of_every_training_speaker(tiny_data):
    utt2spk = read_table(tiny_data / "utt2spk")
    train, val = split_validation(utt2spk, 1, seed=1)
    assert sorted(train + val) == sorted(utt2spk) and not set(train) & set(val)
    assert sorted(utt2spk[u] for u in val) == sorted(set(utt2spk.values()))
    assert split_validation(utt2spk, 1, seed=1) == (train, val)


def test_crops_have_a_fixed_length_and_short_utterances_wrap(tiny_data):
    data = SpeakerData(tiny_data, "fbank", crop_seconds=0.5)
    rng = np.random.default_rng(0)
    assert data.crop(data.utts[0], rng, augment=False).shape == (50, 80)
    long = SpeakerData(tiny_data, "fbank", crop_seconds=2.5)  # utterances are 1 s
    assert long.crop(long.utts[0], None, augment=False).shape == (250, 80)
    wave = SpeakerData(tiny_data, "waveform", crop_seconds=0.25)
    x = wave.crop(wave.utts[0], rng, augment=False)
    assert x.shape == (4000,) and np.abs(x).max() <= 1.0


def test_batches_are_speaker_balanced_and_reproducible(tiny_data):
    data = SpeakerData(tiny_data, "fbank", crop_seconds=0.3)
    items = data.sample_batch(np.random.default_rng([1, 0, 0]), 8, 2)
    labels = [it.label for it in items]
    assert len(items) == 8 and all(labels.count(l) == 2 for l in set(labels))
    again = data.sample_batch(np.random.default_rng([1, 0, 0]), 8, 2)
    assert [it.utt for it in items] == [it.utt for it in again]


def test_noise_reverb_and_specaugment_change_the_crop(tiny_data):
    root = tiny_data.parents[1] / "vox1"
    aug = AugmentConfig(noise_prob=1.0, reverb_prob=1.0, snr_min=5, snr_max=5, time_masks=1, freq_masks=1)
    data = SpeakerData(tiny_data, "fbank", crop_seconds=0.5, augment=aug, noise=root / "noise", rir=root / "rir")
    clean = SpeakerData(tiny_data, "fbank", crop_seconds=0.5)
    utt = data.utts[0]
    a = data.crop(utt, np.random.default_rng(3), augment=True)
    b = clean.crop(utt, np.random.default_rng(3), augment=False)
    assert a.shape == b.shape == (50, 80) and not np.allclose(a, b)
    np.testing.assert_array_equal(a, data.crop(utt, np.random.default_rng(3), augment=True))


def test_missing_noise_directory_is_named(tiny_data, tmp_path):
    with pytest.raises(InputError, match="no such noise manifest or directory"):
        SpeakerData(tiny_data, "fbank", 0.5, augment=AugmentConfig(noise_prob=0.5), noise=tmp_path / "none")


def test_cached_fbank_gives_the_crops_of_reading_the_ark_and_is_never_modified(tiny_data):
    aug = AugmentConfig(time_masks=2, freq_masks=2)  # masks write zeros into the crop
    cached = SpeakerData(tiny_data, "fbank", crop_seconds=0.5, augment=aug)
    uncached = SpeakerData(tiny_data, "fbank", crop_seconds=0.5, augment=aug)
    uncached.FBANK_CACHE_BYTES = 0
    for epoch in range(2):
        items = cached.sample_batch(np.random.default_rng([epoch]), 8, 1)
        rngs = lambda: [np.random.default_rng([epoch, i]) for i in range(8)]  # noqa: E731
        a, _ = cached.batch(items, rngs(), augment=True)
        b, _ = uncached.batch(items, rngs(), augment=True)
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    assert cached._fbank_cache and not uncached._fbank_cache
    for utt, mat in cached._fbank_cache.items():
        np.testing.assert_array_equal(mat, uncached._load_fbank(utt))  # the masks did not reach the cache
