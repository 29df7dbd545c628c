"""Batched extraction: padding with masks changes no embedding; sets share embeddings; subsets spread."""

from __future__ import annotations

import logging
import os

import kaldiio
import numpy as np
import pytest
import soundfile as sf
import torch

from spectral import embed
from spectral.data.kaldi import write_table
from spectral.models import BackendConfig, BuiltinBackbone, BuiltinConfig, ModelConfig, SpeakerModel
from spectral.models.speaker import CHECKPOINT_FORMAT

BACKEND = BackendConfig(channels=16, scale=4, se_bottleneck=8, attention_channels=8, embed_dim=8)
TINY_SSL = dict(
    hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=48,
    conv_dim=(16, 16), conv_stride=(5, 4), conv_kernel=(10, 4),
    num_conv_pos_embeddings=8, num_conv_pos_embedding_groups=2,
)


def _settle_batchnorm(model: SpeakerModel, make_input) -> SpeakerModel:
    """A few training-mode passes, so the back-end's batch norms hold non-trivial statistics."""
    model.train()
    with torch.no_grad():
        for _ in range(3):
            model(make_input())
    return model.eval()


def builtin_model() -> SpeakerModel:
    torch.manual_seed(0)
    backbone = BuiltinBackbone(BuiltinConfig(d_model=16, num_layers=2, num_heads=2, ffn_dim=32))
    return _settle_batchnorm(SpeakerModel(backbone, BACKEND, 3), lambda: torch.randn(4, 120, 80))


def ssl_model(kind: str, norm: str, path) -> SpeakerModel:
    transformers = pytest.importorskip("transformers")
    os.environ["HF_HUB_OFFLINE"] = "1"
    from spectral.models import load_ssl_backbone

    torch.manual_seed(0)
    extra = dict(feat_extract_norm=norm, do_stable_layer_norm=norm == "layer", **TINY_SSL)
    if kind == "wavlm":
        raw = transformers.WavLMModel(transformers.WavLMConfig(num_buckets=16, max_bucket_distance=32, **extra))
    else:
        raw = transformers.HubertModel(transformers.HubertConfig(**extra))
    raw.save_pretrained(str(path))
    model = SpeakerModel(load_ssl_backbone(path, kind), BACKEND, 3)
    return _settle_batchnorm(model, lambda: torch.randn(4, 6000))


def padded(xs: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    lengths = torch.tensor([x.shape[0] for x in xs])
    out = torch.zeros((len(xs), int(lengths.max())) + tuple(xs[0].shape[1:]))
    for i, x in enumerate(xs):
        out[i, : x.shape[0]] = x
    return out, lengths


def test_padding_changes_no_builtin_embedding():
    model = builtin_model()
    xs = [torch.randn(n, 80) for n in (7, 400, 37, 101, 2)]  # 2 to 400 frames in one batch
    with torch.no_grad():
        alone = torch.stack([model(x[None])[0] for x in xs])
        batch = model(*padded(xs))
    torch.testing.assert_close(batch, alone, atol=1e-4, rtol=0)


@pytest.mark.parametrize("front_end", [None, 1, 8000, 10**9], ids=["padded", "by-row", "grouped", "all-at-once"])
@pytest.mark.parametrize("kind,norm", [("wavlm", "group"), ("wavlm", "layer"), ("hubert", "group")])
def test_padding_changes_no_ssl_embedding(kind, norm, front_end, tmp_path):
    """Whether the front end takes the padded batch with masked statistics (None, as on a GPU) or
    the rows' real samples in groups of equal length (CPU), every row comes out as it does alone."""
    model = ssl_model(kind, norm, tmp_path / kind)
    model.backbone.front_end_samples = front_end
    xs = [torch.randn(n) for n in (900, 24000, 4000, 3333, 4000, 4000)]  # 56 ms to 1.5 s in one batch
    with torch.no_grad():
        alone = torch.stack([model(x[None])[0] for x in xs])
        batch = model(*padded(xs))
        equal = model(torch.stack([xs[2], xs[4], xs[5]]), torch.tensor([4000] * 3))  # no padding at all
    torch.testing.assert_close(batch, alone, atol=1e-4, rtol=0)
    torch.testing.assert_close(equal, alone[[2, 4, 5]], atol=1e-4, rtol=0)


def test_the_cpu_front_end_takes_rows_of_equal_length_together_in_groups(tmp_path):
    model = ssl_model("wavlm", "group", tmp_path / "w")
    model.backbone.front_end_samples = 8000
    shapes: list[tuple[int, ...]] = []
    model.backbone.model.feature_extractor.register_forward_pre_hook(lambda mod, args: shapes.append(tuple(args[0].shape)))
    xs = [torch.randn(n) for n in (5000, 3000, 3000, 3000, 1000)]
    with torch.no_grad():
        model(*padded(xs))
    # the real samples only, two rows of 3000 a call (8000 // 3000), then the transformers model's own call
    assert sorted(shapes[:-1]) == [(1, 1000), (1, 3000), (1, 5000), (2, 3000)]


def test_a_part_shared_by_the_whole_utterance_and_its_crops_is_computed_once(wave_set, tmp_path, monkeypatch):
    """An utterance no longer than a crop is its whole part and every crop: one row, not 1 + crops."""
    ckpt, data = wave_set
    from spectral.models.speaker import SpeakerModel

    rows: list[int] = []
    real_forward = SpeakerModel.forward
    monkeypatch.setattr(SpeakerModel, "forward", lambda self, x, lengths=None: rows.append(x.shape[0]) or real_forward(self, x, lengths))
    embed.embed_set(ckpt, data, tmp_path / "b", crops=3, crop_seconds=1.0, threads=1, progress=False, batch_seconds=6.0)
    # 8 utterances of 0.2-4 s, each whole and 3 crops of 1 s; those of 0.2, 0.5 and 0.35 s are one row each
    assert sum(rows) == 8 * 4 - 3 * 3


def test_group_norm_statistics_count_only_real_frames(tmp_path):
    """Without the length-aware group norm the zero padding would shift the first layer's statistics."""
    from spectral.models.ssl import LengthAwareGroupNorm

    model = ssl_model("wavlm", "group", tmp_path / "w")
    norms = [m for m in model.modules() if isinstance(m, LengthAwareGroupNorm)]
    assert len(norms) == 1
    x = torch.randn(2, 16, 50)
    norms[0].lengths = torch.tensor([50, 20])
    masked = norms[0](x)
    norms[0].lengths = None
    torch.testing.assert_close(masked[1, :, :20], norms[0](x[1:, :, :20])[0], atol=1e-5, rtol=0)


def test_batches_are_sorted_by_length_and_kept_within_the_budget():
    lengths = [5, 50, 20, 50, 7, 300]
    batches = embed.plan_batches(lengths, budget=100)
    assert sorted(i for b in batches for i in b) == list(range(6))
    assert batches[0] == [5]  # longer than the budget: alone
    for b in batches:
        assert [lengths[i] for i in b] == sorted((lengths[i] for i in b), reverse=True)
        assert len(b) == 1 or len(b) * lengths[b[0]] <= 100
    assert batches[1] == [1, 3]


def _write_checkpoint(model: SpeakerModel, model_cfg: ModelConfig, path, ssl_config=None) -> None:
    torch.save({"format": CHECKPOINT_FORMAT, "model": model.state_dict(),
                "config": {"model": model_cfg.to_dict(), "backend": BACKEND.to_dict(), "ssl_config": ssl_config},
                "speakers": ["a", "b", "c"], "system": "test"}, path)


@pytest.fixture(scope="module")
def wave_set(tmp_path_factory):
    """A WavLM final.pt and a data set of 8 utterances from 0.2 s to 4 s, 4 speakers."""
    root = tmp_path_factory.mktemp("wave")
    model = ssl_model("wavlm", "group", root / "wavlm")
    ckpt = root / "final.pt"
    _write_checkpoint(model, ModelConfig(backbone="wavlm", path=str(root / "wavlm")), ckpt,
                      ssl_config=model.backbone.model.config.to_dict())
    rng = np.random.default_rng(1)
    wavs, utt2spk = {}, {}
    for i, seconds in enumerate((0.2, 4.0, 1.1, 0.5, 2.7, 0.35, 1.6, 3.2)):
        utt = f"s{i % 4}-u{i}"
        path = root / f"{utt}.wav"
        sf.write(path, (0.1 * rng.standard_normal(int(seconds * 16000))).astype(np.float32), 16000)
        wavs[utt], utt2spk[utt] = str(path), f"s{i % 4}"
    data = root / "data"
    data.mkdir()
    write_table(data / "wav.scp", wavs)
    write_table(data / "utt2spk", utt2spk)
    return ckpt, data


def test_batched_extraction_equals_one_at_a_time(wave_set, tmp_path):
    ckpt, data = wave_set
    kwargs = dict(crops=3, crop_seconds=1.0, max_seconds=3.0, threads=1, progress=False)
    one = embed.embed_set(ckpt, data, tmp_path / "one", batch_seconds=0, **kwargs)
    batched = embed.embed_set(ckpt, data, tmp_path / "batched", batch_seconds=6.0, **kwargs)
    a, b = dict(kaldiio.load_scp(str(one))), dict(kaldiio.load_scp(str(batched)))
    assert sorted(a) == sorted(b) and len(a) == 8
    for utt in a:
        assert b[utt].dtype == np.float32
        np.testing.assert_allclose(b[utt], a[utt], atol=1e-4, rtol=0)


def test_builtin_batched_extraction_equals_one_at_a_time(tmp_path):
    model = builtin_model()
    ckpt = tmp_path / "final.pt"
    _write_checkpoint(model, ModelConfig(backbone="builtin", builtin=BuiltinConfig(d_model=16, num_layers=2, num_heads=2, ffn_dim=32)), ckpt)
    data = tmp_path / "data"
    data.mkdir()
    rng = np.random.default_rng(2)
    utt2spk = {}
    with kaldiio.WriteHelper(f"ark,scp:{data / 'feats.ark'},{data / 'feats.scp'}") as writer:
        for i, frames in enumerate((15, 420, 60, 233, 90, 8)):
            utt = f"s{i % 3}-u{i}"
            writer(utt, rng.standard_normal((frames, 80)).astype(np.float32))
            utt2spk[utt] = f"s{i % 3}"
    write_table(data / "utt2spk", utt2spk)
    kwargs = dict(crops=2, crop_seconds=0.5, threads=1, progress=False)
    a = dict(kaldiio.load_scp(str(embed.embed_set(ckpt, data, tmp_path / "one", batch_seconds=0, **kwargs))))
    b = dict(kaldiio.load_scp(str(embed.embed_set(ckpt, data, tmp_path / "bat", batch_seconds=3.0, **kwargs))))
    for utt in a:
        np.testing.assert_allclose(b[utt], a[utt], atol=1e-4, rtol=0)


def test_an_utterance_in_two_sets_is_embedded_once(wave_set, tmp_path, monkeypatch):
    ckpt, data = wave_set
    table = dict(line.split(" ", 1) for line in (data / "wav.scp").read_text().splitlines())
    dev = tmp_path / "dev"
    dev.mkdir()
    dev_utts = sorted(table)[:5]
    write_table(dev / "wav.scp", {u: table[u] for u in dev_utts})
    write_table(dev / "utt2spk", {u: u.split("-")[0] for u in dev_utts})
    kwargs = dict(threads=1, progress=False, batch_seconds=6.0)
    dev_scp = embed.embed_set(ckpt, dev, tmp_path / "emb_dev", **kwargs)
    loaded: list[str] = []
    real_load = embed._Reader.load
    monkeypatch.setattr(embed._Reader, "load", lambda self, utt: loaded.append(utt) or real_load(self, utt))
    all_scp = embed.embed_set(ckpt, data, tmp_path / "emb_all", reuse=tmp_path / "emb_dev", **kwargs)
    assert sorted(loaded) == sorted(set(table) - set(dev_utts))
    a, b = dict(kaldiio.load_scp(str(dev_scp))), dict(kaldiio.load_scp(str(all_scp)))
    assert sorted(b) == sorted(table)
    for utt in dev_utts:
        np.testing.assert_array_equal(b[utt], a[utt])


def test_nothing_is_reused_from_other_settings(wave_set, tmp_path, monkeypatch, caplog):
    ckpt, data = wave_set
    embed.embed_set(ckpt, data, tmp_path / "a", threads=1, progress=False, crops=1, crop_seconds=0.5)
    loaded: list[str] = []
    real_load = embed._Reader.load
    monkeypatch.setattr(embed._Reader, "load", lambda self, utt: loaded.append(utt) or real_load(self, utt))
    with caplog.at_level(logging.WARNING):
        embed.embed_set(ckpt, data, tmp_path / "b", threads=1, progress=False, reuse=tmp_path / "a")
    assert len(loaded) == 8 and "nothing reused" in caplog.text


def test_a_subset_spreads_over_the_speakers(wave_set, tmp_path):
    ckpt, data = wave_set
    scp = embed.embed_set(ckpt, data, tmp_path / "sub", subset=4, threads=1, progress=False)
    utts = list(dict(kaldiio.load_scp(str(scp))))
    assert len(utts) == 4 and len({u.split("-")[0] for u in utts}) == 4
    assert embed.pick_subset({f"u{i}": f"s{i % 2}" for i in range(6)}, 4) == embed.pick_subset({f"u{i}": f"s{i % 2}" for i in range(6)}, 4)


def test_bf16_extraction_writes_float32_close_to_fp32(wave_set, tmp_path):
    ckpt, data = wave_set
    a = dict(kaldiio.load_scp(str(embed.embed_set(ckpt, data, tmp_path / "fp32", threads=1, progress=False))))
    b = dict(kaldiio.load_scp(str(embed.embed_set(ckpt, data, tmp_path / "bf16", threads=1, progress=False, precision="bf16"))))
    for utt in a:
        assert b[utt].dtype == np.float32
        cos = float(a[utt] @ b[utt] / (np.linalg.norm(a[utt]) * np.linalg.norm(b[utt])))
        assert cos > 0.98


@pytest.mark.parametrize("option", [["--batch-seconds", "-1"], ["--subset", "0"], ["--precision", "fp8"]])
def test_bad_extraction_options_are_refused(option, capsys):
    with pytest.raises(SystemExit) as exit_info:
        embed.main(["ckpt.pt", "data", "out", *option])
    assert exit_info.value.code == 2
    assert option[0] in capsys.readouterr().err
