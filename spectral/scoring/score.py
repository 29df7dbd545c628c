"""Score stage: cosine scoring of a Kaldi trials file (``spectral-score``).

Reads ``exp/<system>/embeddings/<set>/xvector.scp`` (kaldiio float32 vectors keyed by
utterance id) and ``data/<set>/trials/<name>`` (``enroll test target|nontarget``);
optionally a training-set embedding scp (its mean is subtracted), a cohort scp (for
AS-norm, typically ``spk_xvector.scp`` of the training set) and an enroll map
(``model utt1 utt2 ...``, CN-Celeb style).  Writes ``exp/<system>/scores/<name>.score``
(``enroll test score``, trials order, six decimals) atomically.

Scoring, per embedding ``x`` (utterance, enrollment model or cohort entry):

1. enrollment model (with an enroll map): ``x`` is the plain mean of the model's raw
   utterance embeddings (Kaldi ``ivector-mean``); without a map the enroll column names
   utterances;
2. mean subtraction (``--mean-scp``): ``x <- x - m``, ``m`` the mean of that scp;
3. length normalisation ``x <- x / |x|``; the raw score is the dot product (cosine);
4. AS-norm (``--cohort-scp``, adaptive symmetric normalisation): for the enroll and the
   test side, the cosines against every cohort entry are computed, the ``top_n`` largest
   kept (all of them when the cohort is smaller, with a warning), and their mean ``mu``
   and standard deviation ``sigma`` (population, ``ddof=0``) taken; the score becomes
   ``0.5 * ((s - mu_e) / sigma_e + (s - mu_t) / sigma_t)``.

A trial naming an utterance (or model) that has no embedding is refused, naming the
trials file, the line and the id; nothing is written then.

Example::

    spectral-score --mean-scp exp/sys/embeddings/vox1_dev/xvector.scp \\
        --cohort-scp exp/sys/embeddings/vox1_dev/spk_xvector.scp --top-n 300 \\
        exp/sys/embeddings/vox1_test/xvector.scp data/vox1_test/trials/vox1_o \\
        exp/sys/scores/vox1_o.score
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import numpy as np

from spectral.errors import InputError
from spectral.scoring.embeddings import embedding_mean, read_embeddings, speaker_means
from spectral.logutil import command_parser, log_command, run_main
from spectral.scoring.textfiles import (
    InputFormatError,
    Trials,
    atomic_write_text,
    read_spk2utt,
    read_trials,
)

log = logging.getLogger(__name__)

_CHUNK = 1 << 16  # rows per block when gathering trial pairs or cohort scores


def length_normalise(matrix: np.ndarray, keys: list[str], mean: np.ndarray | None = None,
                     source: str = "embeddings") -> np.ndarray:
    """Subtract ``mean`` (when given) from each row and scale rows to unit length.

    Takes an ``(n, dim)`` matrix and the ``n`` row keys (for messages); returns a new
    float64 matrix.  Refuses a row of zero length, naming its key and ``source``.
    """
    out = np.array(matrix, dtype=np.float64)
    if mean is not None:
        if mean.shape != (out.shape[1],):
            raise InputFormatError(f"mean has dimension {mean.shape[0]}, {source} have {out.shape[1]}")
        out -= mean
    norms = np.linalg.norm(out, axis=1)
    zero = norms == 0
    if zero.any():
        raise InputFormatError(f"{source}: embedding {keys[int(np.argmax(zero))]!r} has zero length"
                               + (" after mean subtraction" if mean is not None else ""))
    out /= norms[:, None]
    return out


def pair_scores(enroll: np.ndarray, test: np.ndarray, enroll_index: np.ndarray,
                test_index: np.ndarray) -> np.ndarray:
    """Row-wise dot products ``enroll[enroll_index[i]] . test[test_index[i]]``.

    Takes two embedding matrices and parallel index arrays; returns a float64 array,
    computed in blocks so memory stays bounded for millions of trials.
    """
    out = np.empty(enroll_index.size, dtype=np.float64)
    for start in range(0, enroll_index.size, _CHUNK):
        stop = start + _CHUNK
        out[start:stop] = np.einsum("ij,ij->i", enroll[enroll_index[start:stop]],
                                    test[test_index[start:stop]])
    return out


def cohort_statistics(embeddings: np.ndarray, cohort: np.ndarray,
                      top_n: int) -> tuple[np.ndarray, np.ndarray]:
    """Mean and population standard deviation of each row's ``top_n`` largest cosines
    against the cohort (both inputs length-normalised).  Returns two float64 arrays."""
    top_n = min(top_n, cohort.shape[0])
    mean = np.empty(embeddings.shape[0])
    std = np.empty(embeddings.shape[0])
    rows = max(1, _CHUNK * 16 // max(1, cohort.shape[0]))
    for start in range(0, embeddings.shape[0], rows):
        block = embeddings[start:start + rows] @ cohort.T
        top = np.partition(block, block.shape[1] - top_n, axis=1)[:, block.shape[1] - top_n:]
        mean[start:start + rows] = top.mean(axis=1)
        std[start:start + rows] = top.std(axis=1)
    return mean, std


def as_norm(raw: np.ndarray, enroll_stats: tuple[np.ndarray, np.ndarray],
            test_stats: tuple[np.ndarray, np.ndarray], enroll_index: np.ndarray,
            test_index: np.ndarray) -> np.ndarray:
    """Adaptive s-norm: ``0.5 * ((s - mu_e) / sigma_e + (s - mu_t) / sigma_t)`` for the
    raw scores ``s`` of trials given as index arrays into the per-side statistics."""
    mu_e, sigma_e = enroll_stats[0][enroll_index], enroll_stats[1][enroll_index]
    mu_t, sigma_t = test_stats[0][test_index], test_stats[1][test_index]
    return 0.5 * ((raw - mu_e) / sigma_e + (raw - mu_t) / sigma_t)


def _index(ids: tuple[str, ...]) -> tuple[list[str], np.ndarray]:
    unique = sorted(set(ids))
    position = {k: i for i, k in enumerate(unique)}
    return unique, np.fromiter(map(position.__getitem__, ids), dtype=np.int64, count=len(ids))


def _refuse_missing(trials: Trials, column: tuple[str, ...], known, what: str) -> None:
    for i, key in enumerate(column):
        if key not in known:
            raise InputFormatError(f"{trials.path}:{i + 1}: {what} {key!r} has no embedding")


def score_trials(xvector_scp: str | Path, trials: Trials, *, mean_scp: str | Path | None = None,
                 cohort_scp: str | Path | None = None, top_n: int = 300,
                 enroll_map: str | Path | None = None) -> np.ndarray:
    """Score every trial of ``trials`` (read with :func:`read_trials`).

    Takes the test-set embedding scp and the options described in the module docstring;
    returns the float64 scores in trials order.  Refuses a trial whose enroll or test id
    has no embedding (naming trials file, line and id), a zero-length embedding, and
    ``top_n < 2`` or a cohort of fewer than two entries.
    """
    if cohort_scp is not None and top_n < 2:
        raise ValueError(f"top-n must be at least 2 for AS-norm, got {top_n}")
    enroll_ids, enroll_index = _index(trials.enroll)
    test_ids, test_index = _index(trials.test)
    models: dict[str, list[str]] | None = None
    if enroll_map is not None:
        models = read_spk2utt(enroll_map)
        if not set(enroll_ids) <= models.keys():
            for i, key in enumerate(trials.enroll):
                if key not in models:
                    raise InputFormatError(f"{trials.path}:{i + 1}: enroll model {key!r} is not "
                                           f"in the enroll map {enroll_map}")
        needed = set(test_ids) | {u for m in enroll_ids for u in models[m]}
    else:
        needed = set(enroll_ids) | set(test_ids)
    vectors = read_embeddings(xvector_scp, needed)
    log.info("read %d of the %d embeddings the trials need from %s", len(vectors), len(needed),
             xvector_scp)
    if models is not None:
        line_of = {m: i + 1 for i, m in enumerate(models)}
        for model in enroll_ids:
            for utt in models[model]:
                if utt not in vectors:
                    raise InputFormatError(f"{enroll_map}:{line_of[model]}: utterance {utt!r} of "
                                           f"model {model!r} has no embedding in {xvector_scp}")
        enroll_vectors = speaker_means(vectors, {m: models[m] for m in enroll_ids}, enroll_map)
    else:
        if not set(enroll_ids) <= vectors.keys():
            _refuse_missing(trials, trials.enroll, vectors, "enroll utterance")
        enroll_vectors = vectors
    if not set(test_ids) <= vectors.keys():
        _refuse_missing(trials, trials.test, vectors, "test utterance")

    mean = None
    if mean_scp is not None:
        mean = embedding_mean(mean_scp)
        log.info("subtracting the mean of %s (norm %.4g)", mean_scp, np.linalg.norm(mean))
    enroll = length_normalise(np.stack([enroll_vectors[k] for k in enroll_ids]), enroll_ids, mean,
                              f"{enroll_map or xvector_scp}")
    test = length_normalise(np.stack([vectors[k] for k in test_ids]), test_ids, mean,
                            str(xvector_scp))
    if enroll.shape[1] != test.shape[1]:
        raise InputFormatError(f"enroll embeddings have dimension {enroll.shape[1]}, "
                               f"test embeddings {test.shape[1]}")
    scores = pair_scores(enroll, test, enroll_index, test_index)
    if cohort_scp is not None:
        cohort_vectors = read_embeddings(cohort_scp)
        if len(cohort_vectors) < 2:
            raise InputFormatError(f"{cohort_scp}: AS-norm needs a cohort of at least 2 entries")
        if len(cohort_vectors) < top_n:
            log.warning("cohort %s has %d entries, fewer than top-n %d: using all of them",
                        cohort_scp, len(cohort_vectors), top_n)
        keys = list(cohort_vectors)
        cohort = length_normalise(np.stack([cohort_vectors[k] for k in keys]), keys, mean,
                                  str(cohort_scp))
        if cohort.shape[1] != test.shape[1]:
            raise InputFormatError(f"{cohort_scp}: cohort embeddings have dimension "
                                   f"{cohort.shape[1]}, test embeddings {test.shape[1]}")
        enroll_stats = cohort_statistics(enroll, cohort, top_n)
        test_stats = cohort_statistics(test, cohort, top_n)
        for side, ids, (_, sigma) in (("enroll", enroll_ids, enroll_stats), ("test", test_ids, test_stats)):
            if (sigma == 0).any():
                key = ids[int(np.argmax(sigma == 0))]
                raise InputFormatError(f"{cohort_scp}: the top-{top_n} cohort scores of {side} "
                                       f"{key!r} are all equal, AS-norm is undefined")
        scores = as_norm(scores, enroll_stats, test_stats, enroll_index, test_index)
        log.info("AS-norm with the top %d of %d cohort entries", min(top_n, len(keys)), len(keys))
    return scores


def format_scores(trials: Trials, scores: np.ndarray) -> str:
    """Return the score file text: ``enroll test score`` lines, six decimals."""
    return "".join(f"{e} {t} {s:.6f}\n" for e, t, s in zip(trials.enroll, trials.test, scores.tolist()))


def main(argv: list[str] | None = None) -> int:
    """``spectral-score``: score a trials file into ``enroll test score`` lines."""
    parser = command_parser("spectral-score", "Cosine scoring of a Kaldi trials file against kaldiio embeddings, with "
                            "optional mean subtraction, AS-norm and enrollment averaging.", """\
spectral-score --mean-scp exp/SYSTEM/embeddings/vox1_dev/xvector.scp --cohort-scp exp/SYSTEM/embeddings/vox1_dev/spk_xvector.scp --top-n 300 exp/SYSTEM/embeddings/vox1_test/xvector.scp data/vox1_test/trials/vox1_O exp/SYSTEM/scores/vox1_O.score
""", formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--mean-scp", help="embedding scp whose mean is subtracted (training set)")
    parser.add_argument("--cohort-scp", help="cohort embedding scp; enables AS-norm")
    parser.add_argument("--top-n", type=int, default=300, help="cohort scores kept per side in AS-norm")
    parser.add_argument("--enroll-map", help="'model utt1 utt2 ...' lines: enroll ids of the "
                        "trials are models, embedded as the mean of their utterances")
    parser.add_argument("--checkpoint", help="the final.pt the embeddings come from; with --train-data-dir, "
                        "scoring is refused unless it was trained on that training set")
    parser.add_argument("--train-data-dir", help="Kaldi directory of the configured training set "
                        "(data/<train set>), checked against --checkpoint's record")
    parser.add_argument("xvector_scp", help="embeddings of the utterances of the trials")
    parser.add_argument("trials", help="lines 'enroll test target|nontarget'")
    parser.add_argument("scores", help="output: lines 'enroll test score'")
    args = parser.parse_args(argv)
    if bool(args.checkpoint) != bool(args.train_data_dir):
        parser.error("--checkpoint and --train-data-dir go together")
    log_command(parser.prog, argv)

    def work() -> None:
        if args.checkpoint:
            from spectral.train.trainset import check_trained_on, read_checkpoint_record

            check_trained_on(read_checkpoint_record(args.checkpoint), args.checkpoint, args.train_data_dir)
        trials = read_trials(args.trials)
        scores = score_trials(args.xvector_scp, trials, mean_scp=args.mean_scp,
                              cohort_scp=args.cohort_scp, top_n=args.top_n,
                              enroll_map=args.enroll_map)
        atomic_write_text(args.scores, format_scores(trials, scores))
        log.info("wrote %d scores to %s", len(trials), args.scores)

    return run_main(parser.prog, work, errors=(ValueError,))
