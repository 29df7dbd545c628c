"""Small fabricated copies of the real corpus layouts, and a tiny saved WavLM (imported by path
or by name: a second conftest.py would shadow tests/conftest.py).

* :func:`make_vox1_real`: VoxCeleb1 as distributed — ``wav/<spk>/<session>/<n>.wav``,
  ``vox1_meta.csv`` and the three cleaned lists, where Vox1-E and Vox1-H name utterances of
  dev speakers, as the real ones do.
* :func:`make_cnceleb1`: CN-Celeb1 as on OpenSLR 82 — ``data/<spk>/*.flac``, ``dev/dev.lst``,
  ``eval/{enroll,test}/*.flac``, ``eval/lists/{enroll,test,trials}.lst`` and ``eval/lists/enroll.map``
  (each model's several enrollment utterances under ``data/<spk>/``).
* :func:`save_tiny_wavlm`: a randomly initialised WavLM written with ``save_pretrained``.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import soundfile as sf

_ROOT_CONFTEST = Path(__file__).resolve().parents[1] / "conftest.py"


def _root_conftest():
    spec = importlib.util.spec_from_file_location("spectral_tests_root_conftest_real", _ROOT_CONFTEST)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def make_vox1_real(root: Path, seconds: float = 1.0, original_lists: bool = False) -> Path:
    """tests/conftest.py's VoxCeleb1 tree (3 dev, 3 test speakers) plus E/H lists over dev and test.

    ``original_lists``: also the release's uncleaned lists (``veri_test.txt``, ``list_test_all.txt``,
    ``list_test_hard.txt``, here copies of the cleaned ones), so the directory holds all six.
    """
    conftest = _root_conftest()
    conftest.make_vox1_layout(root, seconds=seconds)
    wavs = sorted(p.relative_to(root / "wav").as_posix() for p in (root / "wav").rglob("*.wav"))
    by_spk: dict[str, list[str]] = {}
    for rel in wavs:
        by_spk.setdefault(rel.split("/")[0], []).append(rel)
    spks = sorted(by_spk)
    all_lines, hard_lines = [], []
    for i, a in enumerate(spks):
        b = spks[(i + 1) % len(spks)]
        all_lines += [f"1 {by_spk[a][0]} {by_spk[a][-1]}", f"0 {by_spk[a][0]} {by_spk[b][-1]}"]
        c = spks[(i + 2) % len(spks)]  # same gender: the fixture alternates m/f
        hard_lines += [f"1 {by_spk[a][1]} {by_spk[a][2]}", f"0 {by_spk[a][1]} {by_spk[c][0]}"]
    (root / "list_test_all2.txt").write_text("\n".join(all_lines) + "\n")
    (root / "list_test_hard2.txt").write_text("\n".join(hard_lines) + "\n")
    if original_lists:
        for cleaned, original in (("veri_test2.txt", "veri_test.txt"), ("list_test_all2.txt", "list_test_all.txt"),
                                  ("list_test_hard2.txt", "list_test_hard.txt")):
            (root / original).write_text((root / cleaned).read_text())
    return root


DEV_SPEAKERS = ["id00000", "id00001", "id00002", "id00003"]
EVAL_SPEAKERS = ["id00800", "id00801", "id00802"]
GENRES = ["speech-01-001", "singing-01-002", "interview-02-001"]
#: data/<spk>/ files of each eval speaker that enroll.map names (the test files are GENRES[:2])
ENROLL_UTTS = ["interview-02-001", "drama-03-001", "drama-03-002"]


def make_cnceleb1(parent: Path, folder: str = "CN-Celeb_flac", list_suffix: str = ".flac",
                  seconds: float = 1.0, seed: int = 0) -> Path:
    """A CN-Celeb1 tree under ``parent/folder``; the lists name files with ``list_suffix``.

    4 dev speakers x 3 utterances; 3 eval speakers, each with one enroll file, 2 test files and
    3 enrollment utterances in data/<spk>/ that enroll.map names (Avg protocol); trials: every model
    against every test file (6 target, 12 nontarget).
    """
    conftest = _root_conftest()
    rng = np.random.default_rng(seed)
    root = parent / folder

    def write(path: Path, f0: float) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        sf.write(path, conftest.voiced_audio(rng, seconds, f0), 16000, subtype="PCM_16", format="FLAC")

    for i, spk in enumerate(DEV_SPEAKERS + EVAL_SPEAKERS):
        for g in GENRES:
            write(root / "data" / spk / f"{g}.flac", 110 + 15 * i)
    (root / "dev").mkdir(parents=True)
    (root / "dev" / "dev.lst").write_text("".join(f"{s}\n" for s in DEV_SPEAKERS))
    enroll, tests, enroll_map = [], [], []
    for i, spk in enumerate(EVAL_SPEAKERS):
        f0 = 110 + 15 * (len(DEV_SPEAKERS) + i)
        write(root / "eval" / "enroll" / f"{spk}-enroll.flac", f0)
        enroll.append(f"{spk}-enroll enroll/{spk}-enroll{list_suffix}")
        for u in ENROLL_UTTS[1:]:
            write(root / "data" / spk / f"{u}.flac", f0)
        enroll_map.append(f"{spk}-enroll " + " ".join(f"{spk}/{u}{list_suffix}" for u in ENROLL_UTTS))
        for g in GENRES[:2]:
            write(root / "eval" / "test" / f"{spk}-{g}.flac", f0)
            tests.append(f"test/{spk}-{g}{list_suffix}")
    trials = [f"{spk}-enroll {t} {int(t.startswith('test/' + spk))}" for spk in EVAL_SPEAKERS for t in tests]
    lists = root / "eval" / "lists"
    lists.mkdir(parents=True)
    (lists / "enroll.lst").write_text("\n".join(enroll) + "\n")
    (lists / "enroll.map").write_text("\n".join(enroll_map) + "\n")
    (lists / "test.lst").write_text("\n".join(tests) + "\n")
    (lists / "trials.lst").write_text("\n".join(trials) + "\n")
    return root


TINY_WAVLM = dict(
    hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=48,
    conv_dim=(16, 16), conv_stride=(5, 4), conv_kernel=(10, 4),
    num_conv_pos_embeddings=8, num_conv_pos_embedding_groups=2, num_buckets=16, max_bucket_distance=32,
)


def save_tiny_wavlm(path: Path, hidden_size: int = 32) -> Path:
    """A tiny randomly initialised WavLM (2 layers, width ``hidden_size``) written with save_pretrained."""
    import torch
    import transformers

    torch.manual_seed(0)
    transformers.WavLMModel(transformers.WavLMConfig(**{**TINY_WAVLM, "hidden_size": hidden_size})).save_pretrained(str(path))
    return path
