"""Paired speaker-bootstrap intervals of EER and minDCF differences (used by ``spectral-compare``).

The trials of a list are not independent: every trial of a speaker shares that speaker's voice
and recordings, so resampling trials understates the spread. Here *speakers* are resampled
with replacement, each drawn speaker bringing every trial whose enrollment side is theirs
(a speaker drawn twice counts its trials twice), and the **same** draw is applied to every
method and every seed, so differences between methods are paired: what a resample makes
easier for one method it makes easier for all of them.

Within one replicate a method's EER (or minDCF) is the mean over its seeds of the weighted
statistic; the interval of a difference is the 2.5th-97.5th percentile of the replicate
differences. The weighted EER is the crossing of the weighted miss and false-alarm rates;
on unit weights it equals Kaldi's ``compute-eer`` within one trial's rate, and the point
estimates reported beside the intervals are always Kaldi's own (from the metrics files).
minDCF is normalised as in Kaldi's ``sid/compute_min_dcf.py``.

Reads nothing itself: :func:`load_scored` reads a score file against a trials file.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from spectral.scoring.textfiles import Trials, label_scores, read_pair_scores


def speaker_of(utt: str, utt2spk: dict[str, str] | None = None) -> str:
    """The speaker of an utterance or enrollment-model id: ``utt2spk`` when it knows it, else the id up to
    its first ``-`` (``id10001-1zcIwhmdeo4-00001`` and CN-Celeb's ``id00800-enroll`` alike)."""
    if utt2spk is not None and utt in utt2spk:
        return utt2spk[utt]
    return utt.split("-", 1)[0]


@dataclass(frozen=True)
class ScoredList:
    """One run's scores on one trial list, in the order of the trials file."""

    scores: np.ndarray  # float64
    is_target: np.ndarray  # bool
    speaker: np.ndarray  # int index into the list's speakers, per trial (enrollment side)


def load_scored(score_file: str, trials: Trials, speakers: list[str], utt2spk: dict[str, str] | None = None) -> ScoredList:
    """A score file (``enroll test score``) labelled by ``trials``; every trial must be scored once.

    ``speakers`` is the list's speaker inventory (shared by all runs, so indices agree).
    Raises InputFormatError naming the file and line of an unknown or missing pair.
    """
    pairs = read_pair_scores(score_file)
    labels = label_scores(pairs, trials, require_all=True)
    index = {s: i for i, s in enumerate(speakers)}
    spk = np.fromiter((index[speaker_of(e, utt2spk)] for e in pairs.enroll), dtype=np.int64, count=len(pairs))
    return ScoredList(np.asarray(pairs.scores, dtype=np.float64), np.asarray(labels, dtype=bool), spk)


def list_speakers(trials: Trials, utt2spk: dict[str, str] | None = None) -> list[str]:
    """The sorted enrollment-side speakers of a trial list."""
    return sorted({speaker_of(e, utt2spk) for e in trials.enroll})


def _cumulative(scores: np.ndarray, is_target: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Weighted target and non-target counts at or above every distinct score (descending), per row of weights.

    Tied scores are one threshold: a trial is accepted with every trial of its score or none."""
    order = np.argsort(-scores, kind="stable")
    sorted_scores = scores[order]
    w = weights[:, order]
    wt = np.where(is_target[order], w, 0.0)
    cum_t = np.cumsum(wt, axis=1)
    cum_n = np.cumsum(w - wt, axis=1)
    last_of_tie = np.append(sorted_scores[1:] != sorted_scores[:-1], True)
    return cum_t[:, last_of_tie], cum_n[:, last_of_tie]


def weighted_eer(scores: np.ndarray, is_target: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """EER (fraction) for each row of ``weights`` (B x N): where weighted miss and false-alarm rates cross."""
    cum_t, cum_n = _cumulative(scores, is_target, weights)
    tot_t = cum_t[:, -1:]
    tot_n = cum_n[:, -1:]
    miss = 1.0 - cum_t / np.maximum(tot_t, 1e-300)  # accepting the first i+1 trials
    fa = cum_n / np.maximum(tot_n, 1e-300)
    # first position where the false-alarm rate reaches the miss rate
    cross = np.argmax(fa >= miss, axis=1)
    rows = np.arange(cum_t.shape[0])
    return (miss[rows, cross] + fa[rows, cross]) / 2.0


def weighted_min_dcf(scores: np.ndarray, is_target: np.ndarray, weights: np.ndarray, p_target: float = 0.01,
                     c_miss: float = 1.0, c_fa: float = 1.0) -> np.ndarray:
    """Normalised minDCF for each row of ``weights`` (B x N), thresholds between every two scores."""
    cum_t, cum_n = _cumulative(scores, is_target, weights)
    tot_t = np.maximum(cum_t[:, -1:], 1e-300)
    tot_n = np.maximum(cum_n[:, -1:], 1e-300)
    # rejecting everything (miss 1, fa 0), then accepting the first i+1 trials
    miss = np.concatenate([np.ones((cum_t.shape[0], 1)), 1.0 - cum_t / tot_t], axis=1)
    fa = np.concatenate([np.zeros((cum_t.shape[0], 1)), cum_n / tot_n], axis=1)
    c_det = c_miss * miss * p_target + c_fa * fa * (1.0 - p_target)
    return c_det.min(axis=1) / min(c_miss * p_target, c_fa * (1.0 - p_target))


def draw_counts(n_speakers: int, replicates: int, seed: int) -> np.ndarray:
    """(replicates x n_speakers) multinomial counts: how often each speaker is drawn in each replicate."""
    rng = np.random.default_rng(seed)
    return rng.multinomial(n_speakers, np.full(n_speakers, 1.0 / n_speakers), size=replicates).astype(np.float64)


def replicate_metrics(runs: list[ScoredList], counts: np.ndarray, chunk: int = 100) -> tuple[np.ndarray, np.ndarray]:
    """(EER %, minDCF at p-target 0.01) per replicate, averaged over ``runs`` (the seeds of one method)."""
    eer = np.zeros(counts.shape[0])
    dcf = np.zeros(counts.shape[0])
    for run in runs:
        for start in range(0, counts.shape[0], chunk):
            w = counts[start:start + chunk][:, run.speaker]
            eer[start:start + chunk] += 100.0 * weighted_eer(run.scores, run.is_target, w)
            dcf[start:start + chunk] += weighted_min_dcf(run.scores, run.is_target, w)
    return eer / len(runs), dcf / len(runs)


def percentile_interval(values: np.ndarray, level: float = 0.95) -> tuple[float, float]:
    """The central ``level`` percentile interval of bootstrap replicates."""
    tail = 100.0 * (1.0 - level) / 2.0
    lo, hi = np.percentile(values, [tail, 100.0 - tail])
    return float(lo), float(hi)
