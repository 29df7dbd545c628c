"""Paired speaker-bootstrap intervals: weighted metrics with known answers, pairing, and the compare table."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from spectral.scoring import bootstrap
from spectral.scoring.compare import main
from spectral.scoring.metrics import compute_eer, compute_min_dcf


def _labelled(n_tgt=300, n_non=900, shift=1.5, seed=0):
    rng = np.random.default_rng(seed)
    scores = np.concatenate([rng.normal(shift, 1, n_tgt), rng.normal(0, 1, n_non)])
    is_target = np.concatenate([np.ones(n_tgt, bool), np.zeros(n_non, bool)])
    return scores, is_target


def test_weighted_eer_with_unit_weights_is_kaldis_within_one_trial():
    scores, is_target = _labelled()
    kaldi, _ = compute_eer(scores[is_target], scores[~is_target])
    ours = bootstrap.weighted_eer(scores, is_target, np.ones((1, len(scores))))[0]
    assert abs(ours - kaldi) <= 1.0 / 300


def test_weighted_min_dcf_with_unit_weights_is_kaldis():
    scores, is_target = _labelled()
    kaldi, _ = compute_min_dcf(scores, is_target, p_target=0.01)
    ours = bootstrap.weighted_min_dcf(scores, is_target, np.ones((1, len(scores))))[0]
    assert ours == pytest.approx(kaldi, abs=1e-9)


def test_integer_weights_equal_repeating_the_trials():
    scores, is_target = _labelled(50, 150, seed=3)
    w = np.random.default_rng(1).integers(0, 4, len(scores)).astype(float)
    repeated = np.repeat(np.arange(len(scores)), w.astype(int))
    direct = bootstrap.weighted_min_dcf(scores, is_target, w[None])[0]
    expanded = bootstrap.weighted_min_dcf(scores[repeated], is_target[repeated], np.ones((1, len(repeated))))[0]
    assert direct == pytest.approx(expanded, abs=1e-12)
    assert bootstrap.weighted_eer(scores, is_target, w[None])[0] == pytest.approx(
        bootstrap.weighted_eer(scores[repeated], is_target[repeated], np.ones((1, len(repeated))))[0], abs=1e-12)


def test_separable_scores_have_zero_eer_and_reversed_ones_full_error():
    is_target = np.array([True] * 5 + [False] * 5)
    scores = np.where(is_target, 1.0, 0.0) + np.linspace(0, 0.1, 10)
    assert bootstrap.weighted_eer(scores, is_target, np.ones((1, 10)))[0] == 0.0
    assert bootstrap.weighted_eer(-scores, is_target, np.ones((1, 10)))[0] == 1.0


def test_draws_resample_every_speaker_count_to_the_inventory_size():
    counts = bootstrap.draw_counts(37, 200, seed=4)
    assert counts.shape == (200, 37) and np.all(counts.sum(axis=1) == 37)
    assert np.allclose(counts.mean(axis=0), 1.0, atol=0.25)


def test_speaker_of_reads_utt2spk_first_then_the_id_prefix():
    assert bootstrap.speaker_of("id10001-abc-00001") == "id10001"
    assert bootstrap.speaker_of("id00800-enroll") == "id00800"
    assert bootstrap.speaker_of("x", {"x": "spk9"}) == "spk9"


def _scored(scores, is_target, speakers):
    return bootstrap.ScoredList(np.asarray(scores, float), np.asarray(is_target, bool), np.asarray(speakers))


def test_identical_methods_have_a_zero_width_paired_interval():
    scores, is_target = _labelled(400, 1200, seed=5)
    spk = np.random.default_rng(2).integers(0, 40, len(scores))
    run = _scored(scores, is_target, spk)
    counts = bootstrap.draw_counts(40, 300, seed=1)
    a, _ = bootstrap.replicate_metrics([run], counts)
    b, _ = bootstrap.replicate_metrics([run], counts)
    assert bootstrap.percentile_interval(a - b) == (0.0, 0.0)
    # unpaired (two independent draws), the same method seems to differ
    c, _ = bootstrap.replicate_metrics([run], bootstrap.draw_counts(40, 300, seed=2))
    lo, hi = bootstrap.percentile_interval(a - c)
    assert hi - lo > 0.5


def test_pairing_cancels_speaker_difficulty_shared_by_two_methods():
    """Two methods share each speaker's difficulty; B is uniformly a little better. Paired, the
    interval of the difference is narrow and excludes 0; the EER intervals themselves overlap."""
    rng = np.random.default_rng(7)
    n_spk, per = 60, 40
    spk = np.repeat(np.arange(n_spk), per)
    is_target = np.tile(np.arange(per) < 10, n_spk)
    difficulty = rng.normal(0, 0.8, n_spk)[spk]
    noise = rng.normal(0, 1, len(spk))
    base = np.where(is_target, 2.0 - difficulty, difficulty) + noise
    a = _scored(base, is_target, spk)
    b = _scored(base + np.where(is_target, 0.25, -0.25), is_target, spk)
    counts = bootstrap.draw_counts(n_spk, 400, seed=3)
    ea, _ = bootstrap.replicate_metrics([a], counts)
    eb, _ = bootstrap.replicate_metrics([b], counts)
    lo, hi = bootstrap.percentile_interval(eb - ea)
    assert hi < 0  # B better, significantly
    a_lo, a_hi = bootstrap.percentile_interval(ea)
    b_lo, b_hi = bootstrap.percentile_interval(eb)
    assert b_hi > a_lo  # yet the marginal intervals overlap
    assert (hi - lo) < 0.5 * min(a_hi - a_lo, b_hi - b_lo)


def test_seed_average_inside_each_replicate():
    scores, is_target = _labelled(100, 300, seed=8)
    spk = np.arange(len(scores)) % 20
    r1 = _scored(scores, is_target, spk)
    r2 = _scored(scores * 0.5 + 0.3, is_target, spk)  # same order: same EER
    r3 = _scored(-scores, is_target, spk)
    counts = bootstrap.draw_counts(20, 50, seed=1)
    e1, _ = bootstrap.replicate_metrics([r1], counts)
    e3, _ = bootstrap.replicate_metrics([r3], counts)
    e12, _ = bootstrap.replicate_metrics([r1, r2], counts)
    e13, _ = bootstrap.replicate_metrics([r1, r3], counts)
    assert np.allclose(e12, e1)
    assert np.allclose(e13, (e1 + e3) / 2)


# -- through spectral-compare


def _write_system(root: Path, name: str, trials: list[tuple[str, str, bool]], scores: np.ndarray) -> Path:
    d = root / "exp" / name
    (d / "scores").mkdir(parents=True)
    (d / "scores" / "vox1_O.score").write_text("".join(f"{e} {t} {s:.6f}\n" for (e, t, _), s in zip(trials, scores)))
    tgt = np.array([lab for _, _, lab in trials])
    eer, _ = compute_eer(scores[tgt], scores[~tgt])
    dcf, _ = compute_min_dcf(scores, tgt, p_target=0.01)
    metrics = {"system": name, "trials": "vox1_O", "eer_percent": 100 * eer, "eer": eer,
               "min_dcf": [{"p_target": 0.01, "c_miss": 1, "c_fa": 1, "min_dcf": dcf, "threshold": 0.0}]}
    (d / "scores" / "vox1_O.metrics.json").write_text(json.dumps(metrics))
    (d / "train_log.tsv").write_text("epoch\tseconds\ttrainable_params\n1\t1.0\t100\n")
    return d


@pytest.fixture
def scored_runs(tmp_path):
    rng = np.random.default_rng(0)
    trials = []
    for s in range(30):
        for u in range(6):
            trials.append((f"id{s:05d}-a-{u:05d}", f"id{s:05d}-b-{u:05d}", True))
            trials.append((f"id{s:05d}-a-{u:05d}", f"id{(s + 1) % 30:05d}-b-{u:05d}", False))
    (tmp_path / "trials").write_text("".join(f"{e} {t} {'target' if lab else 'nontarget'}\n" for e, t, lab in trials))
    tgt = np.array([lab for _, _, lab in trials])
    args = []
    for seed in (1, 2):
        noise = rng.normal(0, 1, len(trials))
        for label, shift in (("frozen", 0.8), ("lora", 1.2), ("spectralft", 3.0)):
            d = _write_system(tmp_path, f"{label}_s{seed}", trials, np.where(tgt, shift, 0.0) + noise)
            args += ["--run", label, str(seed), str(d)]
    return tmp_path, args


def test_compare_reports_paired_intervals_against_frozen_and_lora(scored_runs):
    root, args = scored_runs
    out = root / "results"
    assert main(["--trials", "vox1_O", "--trials-file", "vox1_O", str(root / "trials"), "--bootstrap", "200",
                 "--out-dir", str(out), *args]) == 0
    md = (out / "comparison.md").read_text()
    assert "## Paired speaker-bootstrap 95 % intervals" in md and "30 speakers" in md
    rows = [line.split("\t") for line in (out / "comparison_intervals.tsv").read_text().splitlines()]
    head = rows[0]
    rows = {(r[1], r[2]): dict(zip(head, r)) for r in rows[1:]}
    assert set(rows) == {("lora", "frozen"), ("spectralft", "frozen"), ("frozen", "lora"), ("spectralft", "lora")}
    strong = rows[("spectralft", "frozen")]
    assert float(strong["d_eer_hi"]) < 0 and float(strong["d_eer_lo"]) <= float(strong["d_eer"]) <= float(strong["d_eer_hi"])
    # frozen vs lora is the mirror image of lora vs frozen
    assert float(rows[("frozen", "lora")]["d_eer"]) == -float(rows[("lora", "frozen")]["d_eer"])
    assert (out / "comparison.png").read_bytes()[:4] == b"\x89PNG"


def test_compare_names_a_missing_score_file(scored_runs, capsys):
    root, args = scored_runs
    victim = root / "exp" / "lora_s2" / "scores" / "vox1_O.score"
    victim.unlink()
    assert main(["--trials", "vox1_O", "--trials-file", "vox1_O", str(root / "trials"), "--bootstrap", "50",
                 "--out-dir", str(root / "results"), *args]) == 1
    assert str(victim) in capsys.readouterr().err
