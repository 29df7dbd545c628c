"""Bad input to the embed and training stages (issue 12, item 9): a checkpoint whose config
has missing or unknown keys, a corrupt feats ark, --speaker-means without utt2spk, fbank of
another size than the backbone's input: '<command>: error: <file>[:<line>]: ...', status 1,
nothing written."""

from __future__ import annotations

import shutil

import pytest
import torch
from train_fixtures import checkpoint, tiny_cfg, tiny_data  # noqa: F401  (fixtures)

from spectral import embed
from spectral.data.kaldi import read_table
from spectral.train.config import resolve_config
from spectral.train.pretrain import pretrain


@pytest.fixture
def data_copy(tiny_data, tmp_path):  # noqa: F811
    """A copy of the data directory (feats.scp pointing at copies of the arks)."""
    dest = tmp_path / "data"
    shutil.copytree(tiny_data, dest)
    scp = (dest / "feats.scp").read_text().replace(str(tiny_data.resolve()), str(dest.resolve()))
    (dest / "feats.scp").write_text(scp)
    return dest


def _error_line(err: str, prog: str) -> str:
    assert "Traceback" not in err, err
    lines = [line for line in err.splitlines() if line.startswith(f"{prog}: error: ")]
    assert lines, err
    return lines[-1]


@pytest.mark.parametrize("edit, named", [
    (lambda c: c["config"]["model"]["builtin"].pop("d_model"), "config.model.builtin.d_model missing"),
    (lambda c: c["config"]["backend"].update(wdith=3), "config.backend.wdith unknown"),
    (lambda c: c["config"].pop("backend"), "config.backend missing"),
    (lambda c: c.pop("speakers"), "speakers"),
    (lambda c: c["config"]["model"].update(backbone="nonsense"), "bad value"),
])
def test_a_checkpoint_config_with_missing_or_unknown_keys_is_named(checkpoint, tiny_data, tmp_path, capsys,  # noqa: F811
                                                                    edit, named):
    ckpt = torch.load(checkpoint, weights_only=True)
    edit(ckpt)
    bad = tmp_path / "bad.pt"
    torch.save(ckpt, bad)
    assert embed.main([str(bad), str(tiny_data), str(tmp_path / "emb"), "--no-progress"]) == 1
    line = _error_line(capsys.readouterr().err, "spectral-embed")
    assert line.startswith(f"spectral-embed: error: {bad}: ") and named in line
    assert not (tmp_path / "emb").exists()


def test_a_corrupt_feats_ark_names_feats_scp_line_and_ark(checkpoint, data_copy, tmp_path, capsys):
    table = read_table(data_copy / "feats.scp")
    utt = sorted(table)[2]
    ark = table[utt].rsplit(":", 1)[0]
    offset = int(table[utt].rsplit(":", 1)[1])
    data = bytearray(open(ark, "rb").read())
    data[offset : offset + 16] = b"\xff" * 16
    open(ark, "wb").write(bytes(data))
    assert embed.main([str(checkpoint), str(data_copy), str(tmp_path / "emb"), "--no-progress"]) == 1
    line = _error_line(capsys.readouterr().err, "spectral-embed")
    line_no = list(table).index(utt) + 1
    assert line.startswith(f"spectral-embed: error: {data_copy / 'feats.scp'}:{line_no}: {utt}: ") and ark in line
    assert not (tmp_path / "emb" / "xvector.scp").exists()


def test_speaker_means_without_utt2spk_is_refused_before_anything_is_written(checkpoint, data_copy, tmp_path, capsys):
    (data_copy / "utt2spk").unlink()
    out = tmp_path / "emb"
    assert embed.main([str(checkpoint), str(data_copy), str(out), "--no-progress", "--speaker-means"]) == 1
    line = _error_line(capsys.readouterr().err, "spectral-embed")
    assert f"{data_copy / 'utt2spk'}: missing" in line
    assert not out.exists()


def test_speaker_means_with_an_utt2spk_that_does_not_cover_the_set_is_refused_first(checkpoint, data_copy, tmp_path,
                                                                                    capsys):
    lines = (data_copy / "utt2spk").read_text().splitlines()
    (data_copy / "utt2spk").write_text("\n".join(lines[1:]) + "\n")
    out = tmp_path / "emb"
    assert embed.main([str(checkpoint), str(data_copy), str(out), "--no-progress", "--speaker-means"]) == 1
    assert "has no speaker for 1 utterance" in _error_line(capsys.readouterr().err, "spectral-embed")
    assert not out.exists()


def test_fbank_of_another_size_than_the_backbone_input_is_refused_before_training(data_copy, tmp_path, tiny_cfg):  # noqa: F811
    from spectral.errors import InputError

    tiny_cfg["model"]["builtin"]["n_mels"] = 40
    with pytest.raises(InputError, match=r"holds 80-dimensional fbank features, but model.builtin.n_mels is 40"):
        pretrain(resolve_config(tiny_cfg), data_copy, tmp_path / "exp", progress=False)
    assert not (tmp_path / "exp" / "final.pt").exists()


def test_a_checkpoint_from_before_qk_init_scale_still_embeds_as_before(checkpoint, tiny_data, tmp_path):  # noqa: F811
    # qk_init_scale only changes the initialisation; every earlier checkpoint was made with 1.0
    ckpt = torch.load(checkpoint, weights_only=True)
    ckpt["config"]["model"]["builtin"].pop("qk_init_scale")
    old = tmp_path / "old.pt"
    torch.save(ckpt, old)
    a = embed.embed_set(old, tiny_data, tmp_path / "old", progress=False)
    b = embed.embed_set(checkpoint, tiny_data, tmp_path / "new", progress=False)
    assert a.read_text().count("\n") == b.read_text().count("\n") > 0
    assert (tmp_path / "old" / "xvector.ark").read_bytes() == (tmp_path / "new" / "xvector.ark").read_bytes()
