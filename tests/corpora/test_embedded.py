"""Stage corpus (embedded): determinism, VoxCeleb1 layout, trial lists, physiology, refusals."""

from __future__ import annotations

import re
import subprocess
from itertools import combinations
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from spectral.corpora.embedded import cli, generate
from spectral.corpora.embedded.config import resolve_config
from spectral.corpora.embedded.phones import PRETRAIN, TARGET
from spectral.corpora.embedded.plan import plan_corpora
from spectral.corpora.embedded.synth import SAMPLE_RATE, synthesize
from spectral.corpora.embedded.trials import h_trials, nearest_same_gender
from spectral.corpora.embedded.voice import draw_voice, voice_distances

REPO = Path(__file__).resolve().parents[2]
META_HEADER = "VoxCeleb1 ID\tVGGFace1 ID\tGender\tNationality\tSet"
WAV_RE = re.compile(r"^id\d{5}/[A-Za-z0-9][A-Za-z0-9_-]{10}/\d{5}\.wav$")
TRIAL_RE = re.compile(r"^[01] id\d{5}/[A-Za-z0-9_-]{11}/\d{5}\.wav id\d{5}/[A-Za-z0-9_-]{11}/\d{5}\.wav$")
# The smallest corpus the generator accepts, for tests that only need some output.
MICRO = dict(
    n_pretrain_speakers=2, pretrain_utts_per_speaker=2, n_dev_speakers=2, n_test_speakers=4,
    utts_per_speaker=2, sessions_per_speaker=1, min_duration=1.0, max_duration=1.0,
    n_trials_o=6, n_trials_h=6,
)  # fmt: skip


def make(target: Path, pretrain: Path, *extra: str) -> int:
    return cli.main(["--target-dir", str(target), "--pretrain-dir", str(pretrain), "--no-progress", *extra])


def tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def meta(root: Path) -> list[list[str]]:
    return [line.split("\t") for line in (root / "vox1_meta.csv").read_text().splitlines()[1:]]


def trials(root: Path, name: str) -> list[tuple[int, str, str]]:
    out = []
    for line in (root / name).read_text().splitlines():
        label, a, b = line.split(" ")
        out.append((int(label), a, b))
    return out


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> tuple[Path, Path]:
    """The tiny corpus, seed 7, rendered in-process (nj = 1)."""
    d = tmp_path_factory.mktemp("tiny")
    assert make(d / "vox1", d / "pretrain", "--size", "tiny", "--seed", "7", "--nj", "1") == 0
    return d / "vox1", d / "pretrain"


def test_same_seed_gives_identical_bytes_with_other_nj_through_the_shell_stage(tiny, tmp_path, venv_env):
    target, pretrain = tmp_path / "vox1", tmp_path / "pretrain"
    cmd = [str(REPO / "local/make_embedded_corpus.sh"), "--size", "tiny", "--seed", "7", "--nj", "2", "--no-progress"]
    subprocess.run(cmd + [str(target), str(pretrain)], check=True, env=venv_env, capture_output=True)
    for ours, theirs in ((target, tiny[0]), (pretrain, tiny[1])):
        a, b = tree(ours), tree(theirs)
        assert sorted(a) == sorted(b)
        assert [k for k in a if a[k] != b[k]] == []


def test_different_seed_gives_different_audio_and_sessions(tiny, tmp_path):
    assert make(tmp_path / "vox1", tmp_path / "pre", "--size", "tiny", "--seed", "8", "--nj", "1") == 0
    first = sorted((tiny[0] / "wav" / "id10001").rglob("*.wav"))[0]
    other = sorted((tmp_path / "vox1" / "wav" / "id10001").rglob("*.wav"))[0]
    assert first.relative_to(tiny[0]) != other.relative_to(tmp_path / "vox1")  # session ids differ
    a, _ = sf.read(first, dtype="int16")
    b, _ = sf.read(other, dtype="int16")
    n = min(a.size, b.size)
    assert not np.array_equal(a[:n], b[:n])


def test_layout_and_audio_format_follow_voxceleb1(tiny):
    target, pretrain = tiny
    cfg = resolve_config("tiny")
    for root, n_spk, n_utt, lo, hi in (
        (target, 8, cfg.utts_per_speaker, cfg.min_duration, cfg.max_duration),
        (pretrain, 6, cfg.pretrain_utts_per_speaker, cfg.pretrain_min_duration, cfg.pretrain_max_duration),
    ):
        wavs = sorted(str(p.relative_to(root / "wav")) for p in (root / "wav").rglob("*.wav"))
        assert len(wavs) == n_spk * n_utt
        assert all(WAV_RE.match(w) for w in wavs), wavs[:3]
        sessions: dict[str, list[str]] = {}
        for w in wavs:
            spk, session, name = w.split("/")
            sessions.setdefault(f"{spk}/{session}", []).append(name)
        for names in sessions.values():  # each video numbers its clips 00001, 00002, ...
            assert sorted(names) == [f"{i:05d}.wav" for i in range(1, len(names) + 1)]
        for w in wavs:
            info = sf.info(root / "wav" / w)
            assert (info.samplerate, info.channels, info.subtype, info.format) == (16000, 1, "PCM_16", "WAV")
            assert lo - 1e-9 <= info.frames / 16000 <= hi + 1e-9
            x, _ = sf.read(root / "wav" / w, dtype="int16")
            assert np.abs(x.astype(np.int64)).max() > 300  # not silent


def test_meta_has_voxceleb1_header_five_columns_and_disjoint_sets(tiny):
    target, pretrain = tiny
    assert (target / "vox1_meta.csv").read_text().splitlines()[0] == META_HEADER
    rows = meta(target)
    assert all(len(r) == 5 for r in rows)
    assert [r[0] for r in rows] == sorted(r[0] for r in rows)
    assert {r[2] for r in rows} <= {"m", "f"} and {r[4] for r in rows} == {"dev", "test"}
    dev = {r[0] for r in rows if r[4] == "dev"}
    test = {r[0] for r in rows if r[4] == "test"}
    assert len(dev) == 4 and len(test) == 4 and not dev & test
    assert sorted(p.name for p in (target / "wav").iterdir()) == sorted(dev | test)
    assert sorted(r[2] for r in rows if r[4] == "test") == ["f", "f", "m", "m"]
    assert len({r[1] for r in rows}) == len(rows)  # names unique
    pre = meta(pretrain)
    assert (pretrain / "vox1_meta.csv").read_text().splitlines()[0] == META_HEADER
    assert all(len(r) == 5 and r[4] == "dev" and re.match(r"^id0\d{4}$", r[0]) for r in pre)
    assert not {r[0] for r in pre} & (dev | test)
    spk_tsv = (target / "speakers.tsv").read_text().splitlines()
    assert spk_tsv[0].startswith("speaker\tset\tgender\ttract_cm") and len(spk_tsv) == 9


def test_trial_lists_are_well_formed_and_name_existing_test_files(tiny):
    target, _ = tiny
    test = {r[0] for r in meta(target) if r[4] == "test"}
    for name in ("veri_test2.txt", "list_test_hard2.txt"):
        lines = (target / name).read_text().splitlines()
        assert len(lines) == 40
        assert all(TRIAL_RE.match(line) for line in lines), lines[:3]
        pairs = set()
        for label, a, b in trials(target, name):
            assert (target / "wav" / a).is_file() and (target / "wav" / b).is_file()
            sa, sb = a.split("/")[0], b.split("/")[0]
            assert sa in test and sb in test and a != b
            assert label == int(sa == sb)
            key = frozenset((a, b))
            assert key not in pairs
            pairs.add(key)
        labels = [t[0] for t in trials(target, name)]
        assert 0.3 <= np.mean(labels) <= 0.7


def _voice_table(root: Path) -> dict[str, np.ndarray]:
    lines = (root / "speakers.tsv").read_text().splitlines()
    rows = [line.split("\t") for line in lines[1:]]
    test = [r for r in rows if r[1] == "test"]
    feats = np.array([[float(v) for v in r[3:]] for r in test])
    z = (feats - feats.mean(axis=0)) / np.where(feats.std(axis=0) > 0, feats.std(axis=0), 1.0)
    return {r[0]: z[i] for i, r in enumerate(test)}


def test_hard_list_nontargets_share_gender_and_are_nearer_in_voice_than_o_list(tiny):
    target, _ = tiny
    gender = {r[0]: r[2] for r in meta(target)}
    z = _voice_table(target)

    def nontarget_distances(name: str) -> list[float]:
        out = []
        for label, a, b in trials(target, name):
            if label == 0:
                sa, sb = a.split("/")[0], b.split("/")[0]
                out.append(float(np.linalg.norm(z[sa] - z[sb])))
                if name == "list_test_hard2.txt":
                    assert gender[sa] == gender[sb]
        return out

    assert np.mean(nontarget_distances("list_test_hard2.txt")) < np.mean(nontarget_distances("veri_test2.txt"))


def test_hard_list_pairs_each_speaker_with_its_nearest_same_gender_voices():
    cfg = resolve_config("tiny", n_test_speakers=12, utts_per_speaker=3, n_trials_h=120)
    test = [s for s in plan_corpora(cfg).target if s.split == "test"]
    near = nearest_same_gender(test)
    dist = voice_distances([s.voice for s in test])
    index = {s.speaker_id: i for i, s in enumerate(test)}
    lines = h_trials(test, 120, np.random.default_rng(0))
    non = [(index[t.enroll.split("/")[0]], index[t.test.split("/")[0]]) for t in lines if t.label == 0]
    assert non and all(b in near[a] or a in near[b] for a, b in non)
    assert all(test[a].gender == test[b].gender for a, b in non)
    other = [dist[a, b] for a, b in combinations(range(len(test)), 2) if test[a].gender == test[b].gender]
    assert np.mean([dist[a, b] for a, b in non]) < np.mean(other)


def _spectral_centroid(x: np.ndarray) -> float:
    frames = np.lib.stride_tricks.sliding_window_view(x, 512)[::256] * np.hanning(512)
    power = (np.abs(np.fft.rfft(frames, axis=1)) ** 2).sum(axis=0)
    f = np.fft.rfftfreq(512, 1 / SAMPLE_RATE)
    band = (f > 150) & (f < 5000)
    return float((f[band] * power[band]).sum() / power[band].sum())


def _median_f0(x: np.ndarray) -> float:
    f0s = []
    for frame in np.lib.stride_tricks.sliding_window_view(x, 800)[::400]:
        frame = frame - frame.mean()
        if np.sqrt(np.mean(frame**2)) < 0.05:
            continue
        ac = np.correlate(frame, frame, "full")[frame.size - 1 :]
        lo, hi = SAMPLE_RATE // 400, SAMPLE_RATE // 60
        lag = lo + int(np.argmax(ac[lo:hi]))
        if ac[lag] > 0.3 * ac[0]:
            f0s.append(SAMPLE_RATE / lag)
    return float(np.median(f0s))


def test_longer_vocal_tract_lowers_the_spectrum():
    import dataclasses

    base = draw_voice(np.random.default_rng(3), "m")
    centroids = []
    for tract in (14.0, 16.0, 18.5):
        voice = dataclasses.replace(base, tract_cm=tract)
        x = synthesize(voice, TARGET, 3.0, np.random.default_rng(11))
        centroids.append(_spectral_centroid(x))
    assert centroids[0] > centroids[1] > centroids[2]


def test_men_are_measured_lower_in_f0_than_women():
    rng = np.random.default_rng(5)
    male = [_median_f0(synthesize(draw_voice(rng, "m"), PRETRAIN, 2.5, rng)) for _ in range(3)]
    female = [_median_f0(synthesize(draw_voice(rng, "f"), PRETRAIN, 2.5, rng)) for _ in range(3)]
    assert max(male) < min(female)
    assert 70 < min(male) and max(female) < 300


def test_noise_and_room_responses_are_provided(tiny):
    target, _ = tiny
    noises = sorted(p.name for p in (target / "noise").glob("*.wav"))
    assert [n.split("_")[0] for n in noises] == ["babble", "music", "stationary"]
    rirs = sorted((target / "rir").glob("*.wav"))
    assert len(rirs) == 3
    for p in [target / "noise" / n for n in noises] + rirs:
        info = sf.info(p)
        assert (info.samplerate, info.channels, info.subtype) == (16000, 1, "PCM_16")
    for p in rirs:
        h, _ = sf.read(p)
        assert np.argmax(np.abs(h)) < 0.06 * SAMPLE_RATE  # direct path or an early reflection first
        assert h.size > 0.2 * SAMPLE_RATE


@pytest.mark.parametrize(
    "bad",
    [
        ["--min-duration", "5", "--max-duration", "3"],
        ["--n-test-speakers", "3"],
        ["--sessions-per-speaker", "5", "--utts-per-speaker", "4"],
        ["--reverb-prob", "1.5"],
        ["--telephone-prob", "-0.1"],
        ["--snr-db-min", "20", "--snr-db-max", "10"],
        ["--n-trials-o", "100000"],
        ["--n-trials-h", "100"],  # more than the nearest-voice pairs of 4 test speakers offer
        ["--seed", "-1"],
        ["--nj", "0"],
        ["--size", "huge"],
    ],
)
def test_bad_settings_are_refused_before_any_work(bad, tmp_path, capsys):
    args = bad if "--size" in bad else ["--size", "tiny", *bad]
    with pytest.raises(SystemExit) as e:
        make(tmp_path / "vox1", tmp_path / "pre", *args)
    assert e.value.code == 2
    assert "error" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_overlapping_directories_are_refused(tmp_path):
    with pytest.raises(SystemExit):
        make(tmp_path / "c", tmp_path / "c" / "pre", "--size", "tiny")
    assert not (tmp_path / "c").exists()


def test_output_replaces_old_corpus_and_a_failed_run_leaves_nothing_complete(tmp_path, monkeypatch):
    target, pretrain = tmp_path / "vox1", tmp_path / "pre"
    target.mkdir()
    (target / "stale.txt").write_text("old")
    dead = tmp_path / ".vox1.tmp-999999999"  # a temp dir of a run that died
    dead.mkdir()
    cfg = resolve_config("tiny", nj=1, **MICRO)
    generate.generate_corpora(cfg, target, pretrain, progress=False)
    assert (target / "vox1_meta.csv").is_file() and not (target / "stale.txt").exists()
    assert not dead.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pre", "vox1"]

    def boom(*args, **kwargs):
        raise RuntimeError("killed")

    monkeypatch.setattr(generate, "render_speaker", boom)
    with pytest.raises(RuntimeError):
        generate.generate_corpora(cfg, tmp_path / "new", tmp_path / "newpre", progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pre", "vox1"]


def test_help_shows_an_example(capsys):
    with pytest.raises(SystemExit):
        cli.main(["--help"])
    out = capsys.readouterr().out
    assert "example:" in out and "--target-dir" in out and "--n-trials-h" in out


def test_without_a_pretrain_dir_only_the_target_corpus_is_written_and_it_is_the_same(tiny, tmp_path, venv_env):
    cmd = [str(REPO / "local/make_embedded_corpus.sh"), "--size", "tiny", "--seed", "7", "--nj", "1", "--no-progress",
           str(tmp_path / "vox1")]
    subprocess.run(cmd, check=True, capture_output=True, env=venv_env)
    assert tree(tmp_path / "vox1") == tree(tiny[0])  # a shipped backbone leaves the target corpus as it was
    assert sorted(p.name for p in tmp_path.iterdir()) == ["vox1"]
