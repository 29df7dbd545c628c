"""Development trials: held-out training speakers, their trial list, and fine-tuning without them."""

from __future__ import annotations

import pytest
from train_fixtures import tiny_cfg, tiny_data  # noqa: F401  (fixtures)
import torch

from spectral.corpora.dev_trials import main, make_trials, pick_speakers, read_speaker_list
from spectral.errors import InputError
from spectral.train.config import resolve_config, system_name
from spectral.train.finetune import finetune
from spectral.train.pretrain import pretrain


def _utt2spk(n_spk=10, sessions=3, per=4):
    return {f"id{10001 + s}-sess{j}-{k:05d}": f"id{10001 + s}"
            for s in range(n_spk) for j in range(sessions) for k in range(per)}


def test_trials_cover_only_the_held_out_speakers_half_targets_cross_session_no_repeats():
    u2s = _utt2spk()
    held = pick_speakers(sorted(set(u2s.values())), 4, seed=1)
    rows = make_trials(u2s, held, 200, seed=1)
    assert len(rows) == 200 and sum(t for _, _, t in rows) == 100
    assert all(u2s[e] in held and u2s[t] in held for e, t, _ in rows)
    assert all((u2s[e] == u2s[t]) == lab for e, t, lab in rows)
    # 4 speakers x 3 sessions x 4 utterances: 4 x 48 = 192 cross-session target pairs, so all 100 are
    assert all(e.split("-")[1] != t.split("-")[1] for e, t, lab in rows if lab)
    keys = [frozenset((e, t)) for e, t, _ in rows]
    assert len(set(keys)) == len(keys)
    assert rows == sorted(rows, key=lambda r: (r[0].encode(), r[1].encode()))


def test_speaker_choice_is_seeded_and_refuses_too_many():
    spk = [f"s{i}" for i in range(10)]
    assert pick_speakers(spk, 3, 1) == pick_speakers(spk, 3, 1)
    assert pick_speakers(spk, 3, 1) != pick_speakers(spk, 3, 2) or pick_speakers(spk, 3, 3) != pick_speakers(spk, 3, 1)
    with pytest.raises(ValueError, match="below the 10 speakers"):
        pick_speakers(spk, 10, 1)


def test_cli_writes_the_list_and_the_speakers(tmp_path, capsys):
    data = tmp_path / "vox1_dev"
    data.mkdir()
    data.joinpath("utt2spk").write_text("".join(f"{u} {s}\n" for u, s in sorted(_utt2spk().items())))
    assert main(["--speakers", "3", "--trials", "50", str(data), str(data / "trials" / "dev_val"), str(data / "dev_speakers")]) == 0
    held = read_speaker_list(data / "dev_speakers")
    lines = (data / "trials" / "dev_val").read_text().splitlines()
    assert len(held) == 3 and len(lines) == 50
    assert all(line.split()[2] in ("target", "nontarget") for line in lines)
    assert main(["--speakers", "30", str(data), str(tmp_path / "t"), str(tmp_path / "s")]) == 1
    assert f"{data / 'utt2spk'}: --speakers must be" in capsys.readouterr().err
    assert not (tmp_path / "t").exists()


def test_finetune_leaves_the_development_speakers_out(tiny_data, tiny_cfg, tmp_path):
    tiny_cfg["finetune"].update(dev_speakers=2, epochs=1)
    cfg = resolve_config(tiny_cfg)
    pre = pretrain(cfg, tiny_data, tmp_path / "pre", progress=False)
    held = tmp_path / "dev_speakers"
    held.write_text("id10001\nid10003\n")
    with pytest.raises(InputError, match="--exclude-speakers"):
        finetune(cfg, tiny_data, tmp_path / "a", backbone_checkpoint=str(pre), progress=False)
    out = finetune(cfg, tiny_data, tmp_path / system_name(cfg), backbone_checkpoint=str(pre), progress=False,
                   exclude_speakers=str(held))
    ckpt = torch.load(out, map_location="cpu", weights_only=True)
    assert ckpt["speakers"] == ["id10002", "id10004"]
    assert ckpt["model"]["head.weight"].shape[0] == 2
    held.write_text("id10001\n")
    with pytest.raises(InputError, match="holds 1 speakers, finetune.dev_speakers says 2"):
        finetune(cfg, tiny_data, tmp_path / "b", backbone_checkpoint=str(pre), progress=False, exclude_speakers=str(held))
    held.write_text("id10001\nid99999\n")
    with pytest.raises(InputError, match="'id99999' is not in"):
        finetune(cfg, tiny_data, tmp_path / "c", backbone_checkpoint=str(pre), progress=False, exclude_speakers=str(held))
