"""What a system was trained on: the record final.pt keeps, and embed/score refusing another training set."""

from __future__ import annotations

from pathlib import Path

import pytest

from spectral.errors import InputError
from spectral.scoring.score import main as score_main
from spectral.train import trainset


def _set(path: Path, utt2spk: dict[str, str]) -> Path:
    path.mkdir(parents=True)
    (path / "utt2spk").write_text("".join(f"{u} {s}\n" for u, s in sorted(utt2spk.items())))
    return path


@pytest.fixture
def sets(tmp_path):
    vox = _set(tmp_path / "data" / "vox1_dev", {"id10001-a-00001": "id10001", "id10001-a-00002": "id10001",
                                                "id10002-b-00001": "id10002"})
    cnc = _set(tmp_path / "data" / "cnceleb1_dev", {"id00000-speech-01-001": "id00000", "id00001-speech-01-001": "id00001"})
    return vox, cnc


def test_the_speakers_digest_ignores_order_and_repeats_but_not_membership():
    assert trainset.speakers_digest(["b", "a", "a"]) == trainset.speakers_digest(["a", "b"])
    assert trainset.speakers_digest(["a", "b"]) != trainset.speakers_digest(["a", "c"])
    assert len(trainset.speakers_digest(["a"])) == 16


def test_the_record_holds_the_config_data_and_what_the_directory_holds(sets):
    vox, _ = sets
    rec = trainset.record(vox, {"corpus": "vox1", "root": "corpus/VoxCeleb1", "train_set": "vox1_dev"})
    assert rec == {"corpus": "vox1", "root": "corpus/VoxCeleb1", "train_set": "vox1_dev", "data_dir": str(vox),
                   "set": "vox1_dev", "num_speakers": 2, "num_utts": 3,
                   "speakers_sha256": trainset.speakers_digest(["id10001", "id10002"])}


def test_a_checkpoint_of_another_training_set_is_refused_naming_both(sets, tmp_path):
    vox, cnc = sets
    ckpt = {"train_data": trainset.record(cnc, {"corpus": "cnceleb1", "root": "corpus/CN-Celeb"})}
    trainset.check_trained_on(ckpt, "exp/s/final.pt", cnc)  # its own: fine
    with pytest.raises(InputError) as err:
        trainset.check_trained_on(ckpt, "exp/s/final.pt", vox)
    msg = str(err.value)
    assert msg.startswith("exp/s/final.pt: was trained on cnceleb1_dev (corpus cnceleb1 at corpus/CN-Celeb, 2 speakers")
    assert "but the configured training set is vox1_dev (2 speakers, 3 utterances" in msg


def test_the_same_set_name_with_other_speakers_is_refused(sets, tmp_path):
    vox, _ = sets
    other = _set(tmp_path / "other" / "vox1_dev", {"id10009-a-00001": "id10009", "id10002-b-00001": "id10002"})
    with pytest.raises(InputError, match="was trained on vox1_dev .* but the configured training set is vox1_dev"):
        trainset.check_trained_on({"train_data": trainset.record(other)}, "final.pt", vox)


def test_a_checkpoint_recording_no_training_set_is_refused(sets):
    vox, _ = sets
    with pytest.raises(InputError, match=r"final\.pt: records no training set .* fine-tune again"):
        trainset.check_trained_on({"system": "old"}, "final.pt", vox)


def test_score_refuses_embeddings_of_a_model_trained_on_another_set(sets, tmp_path, caplog):
    import torch

    vox, cnc = sets
    ckpt = tmp_path / "final.pt"
    torch.save({"format": "spectral-model/1", "model": {"w": torch.zeros(2)}, "config": {},
                "train_data": trainset.record(cnc, {"corpus": "cnceleb1", "root": "corpus/CN-Celeb"})}, ckpt)
    assert trainset.read_checkpoint_record(ckpt)["train_data"]["set"] == "cnceleb1_dev"
    args = ["--checkpoint", str(ckpt), "--train-data-dir", str(vox), "no.scp", "no_trials", str(tmp_path / "out.score")]
    assert score_main(args) == 1
    assert not (tmp_path / "out.score").exists()
    with pytest.raises(SystemExit):
        score_main(["--checkpoint", str(ckpt), "no.scp", "no_trials", str(tmp_path / "out.score")])
