"""Cosine scoring, mean subtraction, AS-norm and enrollment averaging equal a direct
computation; bad trials and embeddings are refused by name; outputs are atomic."""

from __future__ import annotations

import logging
from pathlib import Path

import kaldiio
import numpy as np
import pytest

from spectral.scoring.embeddings import read_embeddings, write_speaker_means
from spectral.scoring.score import main, score_trials
from spectral.scoring.textfiles import InputFormatError, read_trials

DIM = 8


@pytest.fixture
def corpus(tmp_path):
    """Six speakers x four utterances of a test set, a training set and trials."""
    rng = np.random.default_rng(11)
    centres = rng.normal(size=(6, DIM))
    test = {f"spk{s}-u{u}": (centres[s] + 0.5 * rng.normal(size=DIM)).astype(np.float32)
            for s in range(6) for u in range(4)}
    train = {f"tr{i}": (rng.normal(size=DIM) + 1.0).astype(np.float32) for i in range(30)}
    cohort = {f"c{i}": rng.normal(size=DIM).astype(np.float32) for i in range(12)}
    kaldiio.save_ark(str(tmp_path / "test.ark"), test, scp=str(tmp_path / "xvector.scp"))
    kaldiio.save_ark(str(tmp_path / "train.ark"), train, scp=str(tmp_path / "train.scp"))
    kaldiio.save_ark(str(tmp_path / "cohort.ark"), cohort, scp=str(tmp_path / "cohort.scp"))
    keys = sorted(test)
    lines = []
    for i, e in enumerate(keys):
        for t in keys[i + 1::5]:
            lines.append(f"{e} {t} {'target' if e[:4] == t[:4] else 'nontarget'}\n")
    (tmp_path / "trials").write_text("".join(lines))
    return tmp_path, test, train, cohort


def unit(x):
    x = np.asarray(x, dtype=np.float64)
    return x / np.linalg.norm(x)


def direct_cosine(vectors, trials, mean=None):
    m = 0 if mean is None else mean
    return np.array([unit(vectors[e] - m) @ unit(vectors[t] - m) for e, t in zip(trials.enroll, trials.test)])


def test_cosine_equals_direct_computation(corpus):
    d, test, _, _ = corpus
    trials = read_trials(d / "trials")
    scores = score_trials(d / "xvector.scp", trials)
    np.testing.assert_allclose(scores, direct_cosine(test, trials), rtol=0, atol=1e-12)


def test_mean_subtraction_uses_training_mean(corpus):
    d, test, train, _ = corpus
    trials = read_trials(d / "trials")
    mean = np.mean([v.astype(np.float64) for v in train.values()], axis=0)
    scores = score_trials(d / "xvector.scp", trials, mean_scp=d / "train.scp")
    np.testing.assert_allclose(scores, direct_cosine(test, trials, mean), rtol=0, atol=1e-12)


def test_as_norm_equals_direct_computation(corpus):
    d, test, train, cohort = corpus
    trials = read_trials(d / "trials")
    mean = np.mean([v.astype(np.float64) for v in train.values()], axis=0)
    top_n = 5
    cohort_units = [unit(c - mean) for c in cohort.values()]

    def stats(x):
        top = sorted((unit(x - mean) @ c for c in cohort_units), reverse=True)[:top_n]
        mu = sum(top) / top_n
        return mu, (sum((s - mu) ** 2 for s in top) / top_n) ** 0.5

    expected = []
    for e, t in zip(trials.enroll, trials.test):
        s = unit(test[e] - mean) @ unit(test[t] - mean)
        (mu_e, sd_e), (mu_t, sd_t) = stats(test[e]), stats(test[t])
        expected.append(0.5 * ((s - mu_e) / sd_e + (s - mu_t) / sd_t))
    scores = score_trials(d / "xvector.scp", trials, mean_scp=d / "train.scp",
                          cohort_scp=d / "cohort.scp", top_n=top_n)
    np.testing.assert_allclose(scores, expected, rtol=0, atol=1e-10)


def test_as_norm_with_small_cohort_uses_all_and_warns(corpus, caplog):
    d, _, _, _ = corpus
    trials = read_trials(d / "trials")
    with caplog.at_level(logging.WARNING):
        small = score_trials(d / "xvector.scp", trials, cohort_scp=d / "cohort.scp", top_n=500)
    assert "fewer than top-n 500" in caplog.text
    all_of_them = score_trials(d / "xvector.scp", trials, cohort_scp=d / "cohort.scp", top_n=12)
    np.testing.assert_array_equal(small, all_of_them)


def test_enroll_map_averages_raw_utterance_embeddings(corpus):
    d, test, _, _ = corpus
    (d / "enroll_map").write_text("modelA spk0-u0 spk0-u1\nmodelB spk1-u0 spk1-u1 spk1-u2\n")
    (d / "trials_cn").write_text("modelA spk0-u3 target\nmodelA spk1-u3 nontarget\n"
                                 "modelB spk1-u3 target\nmodelB spk0-u2 nontarget\n")
    trials = read_trials(d / "trials_cn")
    scores = score_trials(d / "xvector.scp", trials, enroll_map=d / "enroll_map")
    model = {"modelA": np.mean([test["spk0-u0"], test["spk0-u1"]], axis=0, dtype=np.float64),
             "modelB": np.mean([test[f"spk1-u{i}"] for i in range(3)], axis=0, dtype=np.float64)}
    expected = [unit(model[e]) @ unit(test[t]) for e, t in zip(trials.enroll, trials.test)]
    np.testing.assert_allclose(scores, expected, rtol=0, atol=1e-12)


def test_trial_with_unknown_utterance_is_refused_by_file_and_line(corpus, capsys):
    d, _, _, _ = corpus
    (d / "bad_trials").write_text("spk0-u0 spk0-u1 target\nspk0-u0 ghost-u9 nontarget\n")
    with pytest.raises(InputFormatError, match=r"bad_trials:2: test utterance 'ghost-u9' has no embedding"):
        score_trials(d / "xvector.scp", read_trials(d / "bad_trials"))
    (d / "bad_trials").write_text("spk0-u0 spk0-u1 target\nghost-u9 spk0-u1 nontarget\n")
    out = d / "out" / "bad.score"
    assert main([str(d / "xvector.scp"), str(d / "bad_trials"), str(out)]) == 1
    assert "bad_trials:2: enroll utterance 'ghost-u9' has no embedding" in capsys.readouterr().err
    assert not out.exists()


def test_enroll_map_problems_are_refused_by_name(corpus):
    d, _, _, _ = corpus
    (d / "trials_cn").write_text("modelA spk0-u3 target\nmodelZ spk1-u3 nontarget\n")
    (d / "enroll_map").write_text("modelA spk0-u0\n")
    with pytest.raises(InputFormatError, match=r"trials_cn:2: enroll model 'modelZ' is not in the enroll map"):
        score_trials(d / "xvector.scp", read_trials(d / "trials_cn"), enroll_map=d / "enroll_map")
    (d / "enroll_map").write_text("modelZ spk1-u0\nmodelA spk0-u0 ghost\n")
    with pytest.raises(InputFormatError, match=r"enroll_map:2: utterance 'ghost' of model 'modelA' has no embedding"):
        score_trials(d / "xvector.scp", read_trials(d / "trials_cn"), enroll_map=d / "enroll_map")


def test_bad_trials_lines_are_refused(corpus):
    d, _, _, _ = corpus
    (d / "t").write_text("spk0-u0 spk0-u1 target\nspk0-u0 spk0-u2\n")
    with pytest.raises(InputFormatError, match=r"t:2: invalid line \(must have 3 fields"):
        read_trials(d / "t")
    (d / "t").write_text("1 spk0-u0 spk0-u1\n")  # VoxCeleb's own format, not converted
    with pytest.raises(InputFormatError, match=r"t:1: invalid label 'spk0-u1'"):
        read_trials(d / "t")


def test_bad_embeddings_are_refused(corpus):
    d, test, _, _ = corpus
    kaldiio.save_ark(str(d / "bad.ark"), {"a": np.ones(DIM, np.float32), "b": np.ones(DIM + 1, np.float32)},
                     scp=str(d / "bad.scp"))
    with pytest.raises(InputFormatError, match=r"bad.scp:2: embedding 'b' has dimension 9"):
        read_embeddings(d / "bad.scp")
    kaldiio.save_ark(str(d / "nan.ark"), {"a": np.full(DIM, np.nan, np.float32)}, scp=str(d / "nan.scp"))
    with pytest.raises(InputFormatError, match=r"nan.scp:1: embedding 'a' has non-finite values"):
        read_embeddings(d / "nan.scp")
    (d / "dup.scp").write_text((d / "xvector.scp").read_text().splitlines()[0] + "\n" +
                               (d / "xvector.scp").read_text().splitlines()[0] + "\n")
    with pytest.raises(InputFormatError, match=r"dup.scp:2: key 'spk0-u0' repeated"):
        read_embeddings(d / "dup.scp")
    kaldiio.save_ark(str(d / "zero.ark"), {"spk0-u0": np.zeros(DIM, np.float32)}, scp=str(d / "zero.scp"))
    (d / "t").write_text("spk0-u0 spk0-u0 target\n")
    with pytest.raises(InputFormatError, match=r"'spk0-u0' has zero length"):
        score_trials(d / "zero.scp", read_trials(d / "t"))


def test_cli_writes_score_lines_atomically_and_reruns_overwrite(corpus, capsys):
    d, test, _, _ = corpus
    out = d / "scores" / "o.score"
    argv = ["--mean-scp", str(d / "train.scp"), "--cohort-scp", str(d / "cohort.scp"), "--top-n", "4",
            str(d / "xvector.scp"), str(d / "trials"), str(out)]
    assert main(argv) == 0
    first = out.read_text()
    trial_lines = (d / "trials").read_text().splitlines()
    lines = first.splitlines()
    assert len(lines) == len(trial_lines)
    for line, trial in zip(lines, trial_lines):
        enroll, test_utt, score = line.split()
        assert [enroll, test_utt] == trial.split()[:2]
        assert len(score.split(".")[1]) == 6
    assert main(argv) == 0
    assert out.read_text() == first
    assert sorted(p.name for p in out.parent.iterdir()) == ["o.score"]
    err = capsys.readouterr().err
    assert "spectral-score --mean-scp" in err.splitlines()[0]


def test_speaker_means_from_spk2utt_or_utt2spk(corpus):
    d, test, _, _ = corpus
    (d / "spk2utt").write_text("spk0 spk0-u0 spk0-u1\nspk1 spk1-u0 spk1-u1 spk1-u3\n")
    (d / "utt2spk").write_text("spk1-u3 spk1\nspk0-u1 spk0\nspk1-u0 spk1\nspk0-u0 spk0\nspk1-u1 spk1\n")
    a = write_speaker_means(d / "xvector.scp", d / "a", spk2utt=d / "spk2utt")
    b = write_speaker_means(d / "xvector.scp", d / "b", utt2spk=d / "utt2spk")
    assert a.keys() == b.keys() == {"spk0", "spk1"}
    for spk, utts in (("spk0", ["spk0-u0", "spk0-u1"]), ("spk1", ["spk1-u0", "spk1-u1", "spk1-u3"])):
        expected = np.mean([test[u].astype(np.float64) for u in utts], axis=0)
        np.testing.assert_allclose(a[spk], expected, atol=1e-12)
        np.testing.assert_allclose(b[spk], expected, atol=1e-12)
    back = dict(kaldiio.load_scp(str(d / "a" / "spk_xvector.scp")))
    assert back["spk1"].dtype == np.float32
    np.testing.assert_allclose(back["spk1"], a["spk1"], rtol=1e-6)
    scp = (d / "a" / "spk_xvector.scp").read_text()
    assert f"{d / 'a' / 'spk_xvector.ark'}:" in scp and ".tmp." not in scp
    assert (d / "a" / "num_utts").read_text() == "spk0 2\nspk1 3\n"
    assert sorted(p.name for p in (d / "a").iterdir()) == ["num_utts", "spk_xvector.ark", "spk_xvector.scp"]


def test_speaker_means_refuse_utterance_without_embedding(corpus):
    d, _, _, _ = corpus
    (d / "spk2utt").write_text("spk0 spk0-u0 ghost\n")
    with pytest.raises(InputFormatError, match=r"spk2utt: speaker 'spk0': utterance 'ghost' has no embedding"):
        write_speaker_means(d / "xvector.scp", d / "a", spk2utt=d / "spk2utt")
    assert not (d / "a" / "spk_xvector.scp").exists()


def test_speaker_mean_cohort_feeds_as_norm(corpus):
    d, _, _, _ = corpus
    (d / "utt2spk").write_text("".join(f"tr{i} g{i % 5}\n" for i in range(30)))
    write_speaker_means(d / "train.scp", d / "spk", utt2spk=d / "utt2spk")
    scores = score_trials(d / "xvector.scp", read_trials(d / "trials"), mean_scp=d / "train.scp",
                          cohort_scp=d / "spk" / "spk_xvector.scp", top_n=3)
    assert np.isfinite(scores).all()


def test_score_stage_script_runs_and_checks_inputs(corpus):
    import subprocess
    d, _, _, _ = corpus
    root = Path(__file__).resolve().parents[2]
    script = root / "steps" / "score.sh"
    done = subprocess.run(["bash", str(script), "--system", "sysA", "--name", "o",
                           "--cohort-scp", str(d / "cohort.scp"), "--top-n", "4",
                           "--results", str(d / "results" / "vox1_eer.txt"),
                           str(d / "xvector.scp"), str(d / "trials"), str(d / "exp")],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"{script} --system sysA")
    assert sorted(p.name for p in (d / "exp").iterdir()) == ["o.det.png", "o.metrics.json", "o.score"]
    assert (d / "results" / "vox1_eer.txt").read_text().startswith("Equal error rate is ")
    bad = subprocess.run(["bash", str(script), "--system", "s", str(d / "missing.scp"), str(d / "trials"),
                          str(d / "exp")], capture_output=True, text=True)
    assert bad.returncode == 1 and "missing.scp" in bad.stderr
    usage = subprocess.run(["bash", str(script), "only-one-arg"], capture_output=True, text=True)
    assert usage.returncode == 1 and usage.stderr.startswith("Usage:")
