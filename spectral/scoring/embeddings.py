"""Embedding files of the embed and score stages: read, average per speaker, write.

Reads ``exp/<system>/embeddings/<set>/xvector.scp`` (kaldiio, one float32 vector per
utterance id) and ``spk2utt``/``utt2spk``; writes speaker means as
``spk_xvector.{ark,scp}`` (plus ``num_utts.ark`` as Kaldi's ``ivector-mean`` does, in
text form: ``speaker count``), used by the embed stage for AS-norm cohorts and by
the score stage for enrollment models.

A speaker mean is the plain average of the speaker's raw utterance embeddings, as
Kaldi's ``ivector-mean spk2utt scp:xvector.scp ark:spk_xvector.ark`` computes it;
mean subtraction and length normalisation happen later, at scoring time.

Writing is atomic: the ark and scp go to temporary names, the scp is rewritten to point
at the final ark name, and both are renamed (scp last), so a killed run never leaves an
scp that looks complete.

Command line (the embed stage calls :func:`write_speaker_means` directly)::

    python -m spectral.scoring.embeddings --spk2utt data/vox1_dev/spk2utt \\
        exp/sys/embeddings/vox1_dev/xvector.scp exp/sys/embeddings/vox1_dev
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import kaldiio
import numpy as np
from tqdm import tqdm

from spectral.atomic import atomic_paths
from spectral.logutil import command_parser, log_command, run_main
from spectral.scoring.textfiles import (
    InputFormatError,
    atomic_write_text,
    read_spk2utt,
    read_text,
    read_utt2spk,
    utt2spk_to_spk2utt,
)

log = logging.getLogger(__name__)


def _scp_keys(scp: str | Path) -> list[str]:
    """Return the keys of an scp in file order, refusing malformed and repeated keys."""
    keys: list[str] = []
    seen: set[str] = set()
    lines = read_text(scp).split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    if not lines:
        raise InputFormatError(f"{scp}: empty scp")
    for i, line in enumerate(lines):
        fields = line.split(maxsplit=1)
        if len(fields) != 2:
            raise InputFormatError(f"{scp}:{i + 1}: invalid scp line (must be 'key rxfilename'): {line!r}")
        if fields[0] in seen:
            raise InputFormatError(f"{scp}:{i + 1}: key {fields[0]!r} repeated")
        seen.add(fields[0])
        keys.append(fields[0])
    return keys


def iter_embeddings(scp: str | Path, desc: str | None = None):
    """Yield ``(key, vector)`` of an embedding scp in file order, as float64 vectors.

    Refuses a malformed or repeated key, an unreadable entry, a value that is not a
    vector, a dimension that differs from the first entry and non-finite values, naming
    the scp, the line and the key.
    """
    keys = _scp_keys(scp)
    dim = None
    reader = kaldiio.load_scp_sequential(str(scp))
    for i in tqdm(range(len(keys)), desc=desc or f"reading {scp}", unit="vec", disable=None):
        try:
            key, value = next(reader)
        except Exception as err:  # kaldiio raises many kinds on a bad ark
            raise InputFormatError(f"{scp}:{i + 1}: cannot read embedding {keys[i]!r}: {err}") from None
        vec = np.asarray(value)
        where = f"{scp}:{i + 1}: embedding {key!r}"
        if vec.ndim != 1:
            raise InputFormatError(f"{where} is not a vector (shape {vec.shape})")
        if dim is None:
            dim = vec.size
        elif vec.size != dim:
            raise InputFormatError(f"{where} has dimension {vec.size}, the first entry {dim}")
        if not np.isfinite(vec).all():
            raise InputFormatError(f"{where} has non-finite values")
        yield key, vec.astype(np.float64)


def read_embeddings(scp: str | Path, keys: set[str] | None = None) -> dict[str, np.ndarray]:
    """Read an embedding scp; returns key -> float64 vector (only ``keys`` when given)."""
    return {k: v for k, v in iter_embeddings(scp) if keys is None or k in keys}


def embedding_mean(scp: str | Path) -> np.ndarray:
    """Return the mean (float64 vector) of every embedding of an scp."""
    total = None
    count = 0
    for _, vec in iter_embeddings(scp, desc=f"mean of {scp}"):
        total = vec.copy() if total is None else total + vec
        count += 1
    assert total is not None  # _scp_keys refuses an empty scp
    return total / count


def speaker_means(embeddings: dict[str, np.ndarray], spk2utt: dict[str, list[str]],
                  spk2utt_path: str | Path = "spk2utt") -> dict[str, np.ndarray]:
    """Average raw embeddings per speaker (Kaldi ``ivector-mean``).

    Takes utt -> vector and speaker -> utts; returns speaker -> float64 mean vector.
    Refuses an utterance without an embedding, naming ``spk2utt_path`` and the speaker.
    """
    out: dict[str, np.ndarray] = {}
    for spk, utts in spk2utt.items():
        missing = [u for u in utts if u not in embeddings]
        if missing:
            raise InputFormatError(
                f"{spk2utt_path}: speaker {spk!r}: utterance {missing[0]!r} has no embedding"
                + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""))
        out[spk] = np.mean([embeddings[u] for u in utts], axis=0)
    return out


def write_embeddings(vectors: dict[str, np.ndarray], ark: str | Path, scp: str | Path) -> None:
    """Write key -> vector as float32 kaldiio ``ark`` + ``scp``, atomically.

    The scp points at ``ark`` exactly as given (relative paths stay relative).
    """
    ark, scp = Path(ark), Path(scp)
    with atomic_paths(ark, scp) as (tmp_ark, tmp_scp):
        kaldiio.save_ark(str(tmp_ark), {k: np.asarray(v, dtype=np.float32) for k, v in vectors.items()},
                         scp=str(tmp_scp))
        lines = []
        for line in tmp_scp.read_text().splitlines():
            key, value = line.split(maxsplit=1)
            offset = value.rsplit(":", 1)[1]
            lines.append(f"{key} {ark}:{offset}\n")
        tmp_scp.write_text("".join(lines))
        scp.unlink(missing_ok=True)  # the old scp must never point into the new ark


def write_speaker_means(xvector_scp: str | Path, out_dir: str | Path,
                        spk2utt: str | Path | None = None,
                        utt2spk: str | Path | None = None) -> dict[str, np.ndarray]:
    """Write ``out_dir/spk_xvector.{ark,scp}`` and ``out_dir/num_utts`` from an
    utterance-level ``xvector_scp`` and either a ``spk2utt`` or an ``utt2spk`` file.

    Returns speaker -> mean vector.  Refuses an utterance of the map without embedding.
    """
    if (spk2utt is None) == (utt2spk is None):
        raise ValueError("give exactly one of spk2utt and utt2spk")
    if spk2utt is not None:
        mapping, map_path = read_spk2utt(spk2utt), spk2utt
    else:
        mapping, map_path = utt2spk_to_spk2utt(read_utt2spk(utt2spk)), utt2spk
    needed = {u for utts in mapping.values() for u in utts}
    means = speaker_means(read_embeddings(xvector_scp, needed), mapping, map_path)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_embeddings(means, out_dir / "spk_xvector.ark", out_dir / "spk_xvector.scp")
    atomic_write_text(out_dir / "num_utts", "".join(f"{s} {len(u)}\n" for s, u in mapping.items()))
    log.info("wrote %d speaker means to %s", len(means), out_dir / "spk_xvector.scp")
    return means


def main(argv: list[str] | None = None) -> int:
    """Command line of :func:`write_speaker_means`; returns the exit status."""
    parser = command_parser("python -m spectral.scoring.embeddings", "Write per-speaker mean embeddings (spk_xvector.{ark,scp}, num_utts) "
                            "as Kaldi's ivector-mean does.", """\
python -m spectral.scoring.embeddings --spk2utt data/vox1_dev/spk2utt exp/SYSTEM/embeddings/vox1_dev/xvector.scp exp/SYSTEM/embeddings/vox1_dev
""")
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--spk2utt", help="lines 'speaker utt1 utt2 ...'")
    group.add_argument("--utt2spk", help="lines 'utt speaker'")
    parser.add_argument("xvector_scp", help="utterance embeddings (kaldiio scp)")
    parser.add_argument("out_dir", help="where spk_xvector.{ark,scp} and num_utts go")
    args = parser.parse_args(argv)
    log_command(parser.prog, argv)
    return run_main(parser.prog, lambda: write_speaker_means(args.xvector_scp, args.out_dir, args.spk2utt, args.utt2spk))


if __name__ == "__main__":
    sys.exit(main())
