"""Stage embed: one float32 embedding per utterance in Kaldi ark/scp, crops averaged, speaker means."""

from __future__ import annotations

import kaldiio
import numpy as np
import pytest
import torch
from train_fixtures import checkpoint, tiny_cfg, tiny_data  # noqa: F401  (fixtures)

from spectral import embed
from spectral.data.kaldi import read_table
from spectral.features import load_feats
from spectral.models.speaker import load_model_checkpoint


def test_crops_spread_evenly_and_fit():
    assert embed.crop_starts(1000, 300, 5) == [0, 175, 350, 525, 700]
    assert embed.crop_starts(1000, 300, 1) == [350]
    assert embed.crop_starts(200, 300, 3) == [0, 0, 0]  # shorter than a crop: the whole utterance
    assert embed.crop_starts(1000, 300, 0) == []


def test_every_utterance_gets_a_float32_embedding_and_speakers_their_mean(checkpoint, tiny_data, tmp_path):
    scp = embed.embed_set(checkpoint, tiny_data, tmp_path / "emb", speaker_means=True, threads=1, progress=False)
    vectors = dict(kaldiio.load_scp(str(scp)))
    utt2spk = read_table(tiny_data / "utt2spk")
    assert sorted(vectors) == sorted(utt2spk)
    for v in vectors.values():
        assert v.dtype == np.float32 and v.shape == (8,) and np.isfinite(v).all()
        assert np.linalg.norm(v) == pytest.approx(1.0, abs=1e-5)  # whole utterance only: one unit vector
    means = dict(kaldiio.load_scp(str(tmp_path / "emb" / "spk_xvector.scp")))
    spk = utt2spk[next(iter(utt2spk))]
    own = [vectors[u] for u, s in utt2spk.items() if s == spk]
    np.testing.assert_allclose(means[spk], np.mean(own, axis=0), atol=1e-6)


def test_crops_are_averaged_with_the_whole_utterance(checkpoint, tiny_data, tmp_path):
    scp = embed.embed_set(checkpoint, tiny_data, tmp_path / "emb", crops=2, crop_seconds=0.5, threads=1, progress=False)
    utt, value = next(iter(read_table(tiny_data / "feats.scp").items()))
    model, _ = load_model_checkpoint(checkpoint)
    x = torch.from_numpy(load_feats(value))
    starts = embed.crop_starts(x.shape[0], 50, 2)
    with torch.inference_mode():
        parts = [model(x[None])[0]] + [model(x[s : s + 50][None])[0] for s in starts]
    expected = torch.nn.functional.normalize(torch.stack(parts), dim=-1).mean(0).numpy()
    np.testing.assert_allclose(dict(kaldiio.load_scp(str(scp)))[utt], expected, atol=1e-5)


def test_missing_checkpoint_is_named(tiny_data, tmp_path, capsys):
    assert embed.main([str(tmp_path / "nope.pt"), str(tiny_data), str(tmp_path / "emb"), "--no-progress"]) == 1
    assert "nope.pt" in capsys.readouterr().err
    assert not (tmp_path / "emb" / "xvector.scp").exists()
