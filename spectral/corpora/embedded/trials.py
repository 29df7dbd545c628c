"""Trial lists of the embedded target corpus, in VoxCeleb's own format (stage corpus).

Writes nothing itself; :mod:`.generate` stores the lines as ``veri_test2.txt`` and
``list_test_hard2.txt``. Each line is ``<label> <enroll> <test>`` with label ``1`` for a
target and ``0`` for a non-target trial and paths relative to ``wav/``, e.g.
``1 id10270/x6uYqmx31kE/00001.wav id10270/8jEAjG6SegY/00008.wav``. Both lists cover the
test speakers only and aim at half targets:

* O-style (:func:`o_trials`): non-targets are random pairs of different speakers.
* H-style (:func:`h_trials`): non-targets pair each speaker with one of their nearest
  same-gender speakers in voice parameters (:func:`.voice.voice_distances`), as
  VoxCeleb1-H restricts its non-targets to the same gender and nationality.

Targets pair utterances from different sessions of one speaker first, as VoxCeleb's lists
mostly do; same-session pairs are used only when there are not enough. No pair appears
twice in a list, in either order. Lines are sorted by enrollment, then test utterance.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .plan import SpeakerPlan
from .voice import voice_distances

#: How many nearest same-gender speakers an H-style non-target may be drawn from.
H_NEIGHBOURS = 3


@dataclass(frozen=True)
class Trial:
    """One trial: label (1 target, 0 non-target) and two paths relative to ``wav/``."""

    label: int
    enroll: str
    test: str

    def line(self) -> str:
        """The trial as a line of a VoxCeleb trial list (without newline)."""
        return f"{self.label} {self.enroll} {self.test}"


def _utterances(speakers: list[SpeakerPlan]) -> tuple[list[str], np.ndarray, np.ndarray]:
    paths, spk, sess = [], [], []
    for i, s in enumerate(speakers):
        for u in s.utterances:
            paths.append(u.rel_path)
            spk.append(i)
            sess.append(u.session_index)
    return paths, np.array(spk), np.array(sess)


def _target_pairs(spk: np.ndarray, sess: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """All same-speaker pairs (i < j) in random order, cross-session pairs first."""
    pairs = []
    for s in np.unique(spk):
        idx = np.flatnonzero(spk == s)
        a, b = np.triu_indices(idx.size, 1)
        pairs.append(np.stack([idx[a], idx[b]], axis=1))
    pairs = np.concatenate(pairs) if pairs else np.zeros((0, 2), dtype=np.int64)
    cross = sess[pairs[:, 0]] != sess[pairs[:, 1]]
    order = np.concatenate([rng.permutation(np.flatnonzero(cross)), rng.permutation(np.flatnonzero(~cross))])
    return pairs[order]


def _random_nontargets(spk: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """At least ``n`` distinct different-speaker pairs (i < j) when that many exist."""
    n_utts = spk.size
    counts = np.bincount(spk)
    capacity = n_utts * (n_utts - 1) // 2 - int((counts * (counts - 1) // 2).sum())
    if n_utts * (n_utts - 1) // 2 <= 2_000_000 or n > capacity // 2:
        i, j = np.triu_indices(n_utts, 1)
        diff = spk[i] != spk[j]
        return np.stack([i[diff], j[diff]], axis=1)
    codes = np.zeros(0, dtype=np.int64)
    while codes.size < n:
        a = rng.integers(n_utts, size=2 * n)
        b = rng.integers(n_utts, size=2 * n)
        keep = spk[a] != spk[b]
        lo, hi = np.minimum(a, b)[keep], np.maximum(a, b)[keep]
        codes = np.unique(np.concatenate([codes, lo * n_utts + hi]))
    return np.stack([codes // n_utts, codes % n_utts], axis=1)


def _sample_pairs(candidates: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` distinct rows of ``candidates`` (all of them when there are fewer)."""
    if candidates.shape[0] <= n:
        return candidates
    return candidates[np.sort(rng.choice(candidates.shape[0], size=n, replace=False))]


def _to_trials(pairs: np.ndarray, label: int, paths: list[str], rng: np.random.Generator) -> list[Trial]:
    swap = rng.random(pairs.shape[0]) < 0.5
    out = []
    for (a, b), s in zip(pairs.tolist(), swap.tolist()):
        if s:
            a, b = b, a
        out.append(Trial(label, paths[a], paths[b]))
    return out


def _assemble(
    n_trials: int, targets: np.ndarray, nontargets: np.ndarray, paths: list[str], rng: np.random.Generator, what: str
) -> list[Trial]:
    n_target = min(n_trials // 2, targets.shape[0])
    n_non = n_trials - n_target
    if n_non > nontargets.shape[0]:
        n_non = nontargets.shape[0]
        n_target = min(n_trials - n_non, targets.shape[0])
    if n_target + n_non < n_trials:
        raise ValueError(
            f"{what}: asked for {n_trials} trials but the test speakers offer only {targets.shape[0]} "
            f"target and {nontargets.shape[0]} non-target pairs; add test speakers or utterances, "
            "or ask for fewer trials"
        )
    if n_target == 0 or n_non == 0:
        raise ValueError(f"{what}: cannot make both target and non-target trials from these test speakers")
    trials = _to_trials(targets[:n_target], 1, paths, rng)
    trials += _to_trials(_sample_pairs(nontargets, n_non, rng), 0, paths, rng)
    return sorted(trials, key=lambda t: (t.enroll, t.test))


def o_trials(speakers: list[SpeakerPlan], n_trials: int, rng: np.random.Generator) -> list[Trial]:
    """An O-style list of ``n_trials`` over ``speakers``: half targets where possible.

    Raises:
        ValueError: when the speakers offer fewer distinct pairs than ``n_trials``.
    """
    paths, spk, sess = _utterances(speakers)
    targets = _target_pairs(spk, sess, rng)
    nontargets = _random_nontargets(spk, n_trials - min(n_trials // 2, targets.shape[0]), rng)
    return _assemble(n_trials, targets, nontargets, paths, rng, "O-style list")


def nearest_same_gender(speakers: list[SpeakerPlan], k: int = H_NEIGHBOURS) -> dict[int, list[int]]:
    """For each speaker index, the indices of its ``k`` nearest same-gender speakers."""
    dist = voice_distances([s.voice for s in speakers])
    genders = np.array([s.gender for s in speakers])
    out = {}
    for a in range(len(speakers)):
        same = np.flatnonzero((genders == genders[a]) & (np.arange(len(speakers)) != a))
        out[a] = same[np.argsort(dist[a, same], kind="stable")[:k]].tolist()
    return out


def h_trials(speakers: list[SpeakerPlan], n_trials: int, rng: np.random.Generator) -> list[Trial]:
    """An H-style list of ``n_trials`` over ``speakers``: non-targets share gender and are
    nearest neighbours in voice parameters.

    Raises:
        ValueError: when a gender has a single speaker, or too few pairs exist.
    """
    genders = [s.gender for s in speakers]
    for g in set(genders):
        if genders.count(g) < 2:
            raise ValueError(f"H-style list: only one test speaker of gender {g!r}; need two of each")
    paths, spk, sess = _utterances(speakers)
    neighbours = nearest_same_gender(speakers)
    pairs_spk = sorted({(min(a, b), max(a, b)) for a, ns in neighbours.items() for b in ns})
    by_spk = [np.flatnonzero(spk == s) for s in range(len(speakers))]
    nontargets = np.concatenate(
        [np.stack(np.meshgrid(by_spk[a], by_spk[b], indexing="ij"), axis=-1).reshape(-1, 2) for a, b in pairs_spk]
    )
    return _assemble(n_trials, _target_pairs(spk, sess, rng), nontargets, paths, rng, "H-style list")
