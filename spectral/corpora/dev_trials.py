"""Development trials: a trial list over training speakers held out from fine-tuning (stage dev_trials).

Hyper-parameters (each method's learning rate, above all) must be chosen on speakers the
test lists never see. This stage picks ``--speakers`` speakers of a training set (seeded,
sorted ids), writes them to ``dev_speakers`` (one id per line) and a Kaldi trials file over
their utterances (``enroll test target|nontarget``): half targets, cross-session pairs first
(the session is the middle field of ``<spk>-<session>-<nnnnn>`` ids, as in VoxCeleb), and
non-targets between random pairs of different held-out speakers. The finetune stage leaves
these speakers out of training (``finetune.dev_speakers``), and the embed stage's embeddings
of the training set score them, so the list costs no extra embedding.

Reads ``<data>/utt2spk``; writes ``<data>/trials/dev_val`` and ``<data>/dev_speakers``
atomically. Example::

    spectral-make-dev-trials --speakers 40 --trials 4000 data/vox1_dev data/vox1_dev/trials/dev_val data/vox1_dev/dev_speakers
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from spectral.atomic import atomic_write_text
from spectral.data.kaldi import c_sorted, data_dir_utt2spk
from spectral.errors import InputError, read_utf8
from spectral.logutil import command_parser, log_invocation, run_main


def pick_speakers(speakers: list[str], n: int, seed: int) -> list[str]:
    """``n`` of ``speakers`` drawn without replacement by ``seed``, in C sort order."""
    if not 2 <= n < len(speakers):
        raise ValueError(f"--speakers must be at least 2 and below the {len(speakers)} speakers of the set, got {n}")
    rng = np.random.default_rng([seed, 424242])
    chosen = rng.choice(len(speakers), size=n, replace=False)
    return c_sorted(speakers[i] for i in chosen)


def _session(utt: str) -> str:
    parts = utt.split("-")
    return parts[1] if len(parts) >= 3 else ""


def make_trials(utt2spk: dict[str, str], speakers: list[str], n_trials: int, seed: int) -> list[tuple[str, str, bool]]:
    """About ``n_trials`` trials over the utterances of ``speakers``: half targets (cross-session first),
    half non-targets between different speakers; no pair twice in either order; C-sorted."""
    keep = set(speakers)
    utts = c_sorted(u for u, s in utt2spk.items() if s in keep)
    spk = np.array([utt2spk[u] for u in utts])
    rng = np.random.default_rng([seed, 4243])
    cross, same = [], []
    for s in speakers:
        idx = np.flatnonzero(spk == s)
        for a in range(idx.size):
            for b in range(a + 1, idx.size):
                pair = (int(idx[a]), int(idx[b]))
                (cross if _session(utts[pair[0]]) != _session(utts[pair[1]]) else same).append(pair)
    want_t = n_trials // 2
    targets = [cross[i] for i in rng.permutation(len(cross))] + [same[i] for i in rng.permutation(len(same))]
    targets = targets[:want_t]
    want_n = n_trials - len(targets)
    seen: set[tuple[int, int]] = set()
    nontargets: list[tuple[int, int]] = []
    n = len(utts)
    max_pairs = n * (n - 1) // 2 - len(cross) - len(same)  # every different-speaker pair
    want_n = min(want_n, max_pairs)
    while len(nontargets) < want_n:
        a, b = rng.integers(n, size=2)
        if spk[a] == spk[b]:
            continue
        key = (int(min(a, b)), int(max(a, b)))
        if key in seen:
            continue
        seen.add(key)
        nontargets.append((int(a), int(b)))
    rows = [(utts[a], utts[b], True) for a, b in targets] + [(utts[a], utts[b], False) for a, b in nontargets]
    return sorted(rows, key=lambda r: (r[0].encode(), r[1].encode()))


def write_dev_trials(data_dir: str | Path, trials_out: str | Path, speakers_out: str | Path, n_speakers: int,
                     n_trials: int, seed: int) -> tuple[int, int]:
    """Pick the held-out speakers of ``data_dir`` and write their trials; returns (speakers, trials)."""
    path = Path(data_dir) / "utt2spk"
    utt2spk = data_dir_utt2spk(data_dir)
    speakers = c_sorted(set(utt2spk.values()))
    try:
        chosen = pick_speakers(speakers, n_speakers, seed)
    except ValueError as err:
        raise InputError(path, str(err)) from None
    rows = make_trials(utt2spk, chosen, n_trials, seed)
    if not any(t for _, _, t in rows) or all(t for _, _, t in rows):
        raise InputError(path, f"the {n_speakers} held-out speakers give no target or no non-target trial")
    atomic_write_text(Path(speakers_out), "".join(f"{s}\n" for s in chosen))
    atomic_write_text(Path(trials_out), "".join(f"{e} {t} {'target' if lab else 'nontarget'}\n" for e, t, lab in rows))
    return len(chosen), len(rows)


def read_speaker_list(path: str | Path) -> list[str]:
    """A file of speaker ids, one per line (blank lines ignored)."""
    if not Path(path).exists():
        raise InputError(path, "missing (run the dev_trials stage first)")
    text = read_utf8(path)  # not UTF-8: an InputError naming the line
    out = []
    for i, line in enumerate(text.splitlines(), start=1):
        fields = line.split()
        if not fields:
            continue
        if len(fields) != 1:
            raise InputError(path, f"expected one speaker id, got {line!r}", line=i)
        out.append(fields[0])
    return out


def build_parser() -> argparse.ArgumentParser:
    p = command_parser("spectral-make-dev-trials", __doc__.split("\n\n")[1].replace("\n", " "), """\
spectral-make-dev-trials --speakers 40 --trials 4000 data/vox1_dev data/vox1_dev/trials/dev_val data/vox1_dev/dev_speakers
""", formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("data_dir", help="training set directory holding utt2spk")
    p.add_argument("trials_out", help="Kaldi trials file to write")
    p.add_argument("speakers_out", help="file of the held-out speaker ids to write")
    p.add_argument("--speakers", type=int, required=True, help="training speakers to hold out")
    p.add_argument("--trials", type=int, default=4000, help="trials to write (about half targets)")
    p.add_argument("--seed", type=int, default=1, help="seed of the speaker choice and the pairs")
    return p


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``spectral-make-dev-trials``."""
    args = build_parser().parse_args(argv)
    log_invocation("spectral-make-dev-trials", args)

    def work() -> None:
        n_spk, n_trials = write_dev_trials(args.data_dir, args.trials_out, args.speakers_out, args.speakers,
                                           args.trials, args.seed)
        print(f"spectral-make-dev-trials: {n_spk} held-out speakers, {n_trials} trials in {args.trials_out}",
              file=sys.stderr)

    return run_main("spectral-make-dev-trials", work)


if __name__ == "__main__":
    sys.exit(main())
