"""lhotse manifests and Kaldi files of one prepared set, shared by the corpus preparers.

:func:`write_set` writes ``{recordings,supervisions,cuts}.jsonl.gz`` (one recording and one
whole-recording supervision per utterance, channel 0) and ``wav.scp utt2spk spk2utt``
(``spk2gender`` when genders are given) into a directory, normally the temporary one
:func:`spectral.data.kaldi.atomic_dir` yields.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from spectral.data.kaldi import c_sorted, write_data_dir


def write_set(out: str | Path, paths: Mapping[str, str], num_samples: Mapping[str, int], utt2spk: Mapping[str, str],
              spk2gender: Mapping[str, str] | None = None, sampling_rate: int = 16000) -> None:
    """Write manifests and Kaldi files for the utterances of ``paths`` (utt id -> absolute audio path)."""
    from lhotse import AudioSource, CutSet, Recording, RecordingSet, SupervisionSegment, SupervisionSet

    out = Path(out)
    utts = c_sorted(paths)
    recordings, supervisions = [], []
    for utt in utts:
        n = int(num_samples[utt])
        recordings.append(Recording(id=utt, sources=[AudioSource(type="file", channels=[0], source=paths[utt])],
                                    sampling_rate=sampling_rate, num_samples=n, duration=n / sampling_rate))
        spk = utt2spk[utt]
        supervisions.append(SupervisionSegment(id=utt, recording_id=utt, start=0.0, duration=n / sampling_rate,
                                               channel=0, speaker=spk,
                                               gender=(spk2gender or {}).get(spk)))
    recs, sups = RecordingSet.from_recordings(recordings), SupervisionSet.from_segments(supervisions)
    recs.to_file(out / "recordings.jsonl.gz")
    sups.to_file(out / "supervisions.jsonl.gz")
    CutSet.from_manifests(recordings=recs, supervisions=sups).to_file(out / "cuts.jsonl.gz")
    write_data_dir(out, {u: paths[u] for u in utts}, {u: utt2spk[u] for u in utts}, spk2gender)
