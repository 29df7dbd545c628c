"""Stage corpus: write the embedded target and pre-training corpora (VoxCeleb1 layout).

Writes, under the target root::

    wav/idNNNNN/<session>/<nnnnn>.wav   16 kHz mono 16-bit PCM, 2-8 s (config)
    vox1_meta.csv                       VoxCeleb1's header and five tab-separated columns
    veri_test2.txt                      O-style trials over the test speakers
    list_test_hard2.txt                 H-style trials (same gender, nearest voices)
    speakers.tsv                        each speaker's voice parameters
    sessions.tsv                        each session's recording conditions
    noise/<kind>_NNN.wav                noise recordings for augmentation
    rir/room_NNN.wav                    room impulse responses for augmentation
    corpus_config.json                  the settings that produced it

and the same minus trial lists, noise and rir under the pre-training root (all speakers in
Set ``dev``). Each corpus is built in a hidden temporary sibling directory and renamed into
place only when complete, replacing any previous corpus; temporary directories of runs
that died are removed. So ``vox1_meta.csv`` existing means the corpus is complete.

The audio depends on the seed only: every speaker is rendered from seeds keyed by its
indices (:func:`.plan.seed_for`), in any process, so ``nj`` changes the speed, not a byte.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import multiprocessing
import os
import struct
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
from tqdm import tqdm

from .channel import channel_response, record, session_background
from .config import CorpusConfig
from .noise import NOISE_KINDS, babble_noise, babble_pool, noise_of_kind
from .phones import PRETRAIN as PRETRAIN_PHONES
from .phones import TARGET as TARGET_PHONES
from .plan import (
    AUGMENT, BABBLE_KEY, ROOM_KEY, TARGET, TRIALS_KEY, UTTERANCE_KEY, CorpusPlan,
    SpeakerPlan, plan_corpora, seed_for,
)  # fmt: skip
from .room import room_impulse_response
from .synth import FRAME_FREQS, SAMPLE_RATE, synthesize
from .trials import Trial, h_trials, o_trials
from .voice import FEATURE_NAMES, vary_voice, voice_features

from spectral.atomic import atomic_dir
from spectral.corpora.voxceleb1 import META_HEADER as META_COLUMNS

log = logging.getLogger(__name__)

META_HEADER = "\t".join(META_COLUMNS)  # the header spectral-prepare-vox1 reads
O_LIST = "veri_test2.txt"
H_LIST = "list_test_hard2.txt"
_THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")

_WORKER: dict = {}


# ----------------------------------------------------------------------------- rendering
def render_speaker(seed: int, speaker: SpeakerPlan, wav_root: Path, babble: np.ndarray | None) -> float:
    """Synthesise and record all utterances of ``speaker`` under ``wav_root``.

    Returns the seconds of audio written. Depends only on ``seed``, ``speaker`` and
    ``babble`` (the pool of background talkers), never on which process runs it.
    """
    phones = TARGET_PHONES if speaker.domain == TARGET else PRETRAIN_PHONES
    rooms, mics, backgrounds = [], [], []
    for s, session in enumerate(speaker.sessions):
        rng = seed_for(seed, speaker.domain, ROOM_KEY, speaker.index, s)
        rooms.append(room_impulse_response(rng, session.rt60, session.drr_db) if session.rt60 > 0 else None)
        mics.append(channel_response(session, FRAME_FREQS))
        longest = max(u.duration for u in speaker.utterances if u.session_index == s)
        backgrounds.append(session_background(session, int((longest + 1.0) * SAMPLE_RATE), rng, babble))
    seconds = 0.0
    for utt in speaker.utterances:
        s = utt.session_index
        rng = seed_for(seed, speaker.domain, UTTERANCE_KEY, speaker.index, utt.index)
        speech = synthesize(vary_voice(speaker.voice, rng), phones, utt.duration, rng, channel=mics[s])
        start = int(rng.integers(backgrounds[s].size - speech.size + 1))
        background = backgrounds[s][start : start + speech.size]
        pcm = record(speech, speaker.sessions[s], rooms[s], background, rng)
        path = wav_root / utt.rel_path
        path.parent.mkdir(parents=True, exist_ok=True)
        write_wav(path, pcm)
        seconds += pcm.size / SAMPLE_RATE
    return seconds


def write_wav(path: Path, pcm: np.ndarray) -> None:
    """Write int16 ``pcm`` as a canonical 44-byte-header WAV (16 kHz, mono, PCM 16-bit).

    The bytes equal what ``soundfile.write(..., subtype="PCM_16")`` writes, several times
    faster, which matters for thousands of short files.
    """
    data = np.ascontiguousarray(pcm, dtype="<i2").tobytes()
    header = (
        b"RIFF" + struct.pack("<I", 36 + len(data)) + b"WAVEfmt "
        + struct.pack("<IHHIIHH", 16, 1, 1, SAMPLE_RATE, 2 * SAMPLE_RATE, 2, 16)
        + b"data" + struct.pack("<I", len(data))
    )  # fmt: skip
    with open(path, "wb") as f:
        f.write(header + data)


def _to_pcm(x: np.ndarray, peak: float) -> np.ndarray:
    x = x * (peak / max(float(np.abs(x).max()), 1e-12))
    return np.clip(np.round(x * 32767.0), -32768, 32767).astype(np.int16)


def render_noise(seed: int, index: int, seconds: float, path_dir: Path) -> float:
    """Write augmentation noise recording ``index`` (kinds in turn) to ``path_dir``."""
    kind = NOISE_KINDS[index % len(NOISE_KINDS)]
    rng = seed_for(seed, AUGMENT, 0, index)
    n = int(round(seconds * SAMPLE_RATE))
    if kind == "babble":
        pool = babble_pool(rng, TARGET_PHONES, 5, seconds)
        x = babble_noise(rng, n, pool)
    else:
        x = noise_of_kind(kind, rng, n, None)
    write_wav(path_dir / f"{kind}_{index + 1:03d}.wav", _to_pcm(x, 0.5))
    return n / SAMPLE_RATE


def render_rir(seed: int, index: int, path_dir: Path) -> float:
    """Write augmentation room impulse response ``index`` (RT60 0.2-1.0 s) to ``path_dir``."""
    rng = seed_for(seed, AUGMENT, 1, index)
    h = room_impulse_response(rng, float(rng.uniform(0.2, 1.0)), float(rng.uniform(0.0, 12.0)))
    write_wav(path_dir / f"room_{index + 1:03d}.wav", _to_pcm(h, 0.99))
    return h.size / SAMPLE_RATE


def _init_worker(seed: int, babble: np.ndarray | None) -> None:
    _WORKER["seed"] = seed
    _WORKER["babble"] = babble


def _run_task(task: tuple) -> tuple[str, float]:
    kind, what, out = task
    seed = _WORKER["seed"]
    if kind == "speaker":
        return kind, render_speaker(seed, what, out, _WORKER["babble"])
    if kind == "noise":
        return kind, render_noise(seed, what[0], what[1], out)
    return kind, render_rir(seed, what, out)


# ----------------------------------------------------------------------------- text files
def _fmt(x) -> str:
    if isinstance(x, bool | np.bool_):
        return "1" if x else "0"
    if isinstance(x, float | np.floating):
        return f"{x:.6g}"
    return str(x)


def write_meta(root: Path, speakers: tuple[SpeakerPlan, ...]) -> None:
    """Write ``vox1_meta.csv``: VoxCeleb1's header, one tab-separated row per speaker."""
    lines = [META_HEADER] + [f"{s.speaker_id}\t{s.name}\t{s.gender}\t{s.nationality}\t{s.split}" for s in speakers]
    (root / "vox1_meta.csv").write_text("\n".join(lines) + "\n")


def write_speakers(root: Path, speakers: tuple[SpeakerPlan, ...]) -> None:
    """Write ``speakers.tsv``: id, set, gender and the voice parameters of every speaker."""
    lines = ["\t".join(("speaker", "set", "gender") + FEATURE_NAMES)]
    for s in speakers:
        lines.append("\t".join([s.speaker_id, s.split, s.gender] + [_fmt(float(v)) for v in voice_features(s.voice)]))
    (root / "speakers.tsv").write_text("\n".join(lines) + "\n")


def write_sessions(root: Path, speakers: tuple[SpeakerPlan, ...]) -> None:
    """Write ``sessions.tsv``: speaker, session id and recording conditions of every session."""
    names = list(speakers[0].sessions[0].as_row())
    lines = ["\t".join(["speaker"] + names)]
    for s in speakers:
        for session in s.sessions:
            row = session.as_row()
            lines.append("\t".join([s.speaker_id] + [_fmt(row[k]) for k in names]))
    (root / "sessions.tsv").write_text("\n".join(lines) + "\n")


def write_trials(path: Path, trials: list[Trial]) -> None:
    """Write a trial list in VoxCeleb's format."""
    path.write_text("".join(t.line() + "\n" for t in trials))


def _write_config(root: Path, cfg: CorpusConfig, corpus: str) -> None:
    settings = {k: v for k, v in asdict(cfg).items() if k != "nj"}  # nj changes no byte
    text = json.dumps({"corpus": corpus, "generator": "spectral-make-corpus", "settings": settings}, indent=2)
    (root / "corpus_config.json").write_text(text + "\n")


# ----------------------------------------------------------------------------- the stage
def make_trials(cfg: CorpusConfig, plan: CorpusPlan) -> tuple[list[Trial], list[Trial]]:
    """The O-style and H-style lists of ``plan``'s test speakers (raises if impossible)."""
    test = [s for s in plan.target if s.split == "test"]
    o = o_trials(test, cfg.n_trials_o, seed_for(cfg.seed, TARGET, TRIALS_KEY, 0))
    h = h_trials(test, cfg.n_trials_h, seed_for(cfg.seed, TARGET, TRIALS_KEY, 1))
    return o, h


def _check_dirs(target_dir: Path, pretrain_dir: Path | None) -> None:
    if pretrain_dir is None:
        return
    t, p = Path(target_dir).absolute(), Path(pretrain_dir).absolute()
    if t == p or t in p.parents or p in t.parents:
        raise ValueError(f"--target-dir {target_dir} and --pretrain-dir {pretrain_dir} must not overlap")


def prepare(
    cfg: CorpusConfig, target_dir: Path, pretrain_dir: Path | None
) -> tuple[CorpusPlan, list[Trial], list[Trial]]:
    """Check everything that can be refused and plan the corpora; writes nothing.

    Returns the plan and the O-style and H-style trial lists. Without ``pretrain_dir`` (a
    shipped backbone needs no pre-training corpus) the plan holds no pre-training speakers;
    the target corpus is the same either way (it is planned first, from its own seeds).

    Raises:
        ValueError: overlapping directories, or trial lists the test speakers cannot fill.
    """
    _check_dirs(target_dir, pretrain_dir)
    plan = plan_corpora(cfg)
    if pretrain_dir is None:
        plan = dataclasses.replace(plan, pretrain=())
    o_list, h_list = make_trials(cfg, plan)
    return plan, o_list, h_list


def generate_corpora(
    cfg: CorpusConfig,
    target_dir: Path,
    pretrain_dir: Path | None,
    progress: bool = True,
    prepared: tuple[CorpusPlan, list[Trial], list[Trial]] | None = None,
) -> dict:
    """Plan, render and write both corpora (the target only without ``pretrain_dir``); return a
    summary (counts, hours, seconds).

    Everything that can be refused (settings, trial capacity, overlapping directories) is
    checked before anything is written; ``prepared`` is :func:`prepare`'s result if the
    caller already has it.
    """
    t0 = time.perf_counter()
    plan, o_list, h_list = prepared if prepared is not None else prepare(cfg, target_dir, pretrain_dir)
    log.info(
        "planned %d pre-training and %d target speakers (%d dev, %d test); %d O and %d H trials",
        len(plan.pretrain), len(plan.target), cfg.n_dev_speakers, cfg.n_test_speakers, len(o_list), len(h_list),
    )  # fmt: skip
    with contextlib.ExitStack() as stack:
        pre_root = stack.enter_context(atomic_dir(Path(pretrain_dir))) if pretrain_dir is not None else None
        tgt_root = stack.enter_context(atomic_dir(Path(target_dir)))
        for d in (tgt_root / "wav", tgt_root / "noise", tgt_root / "rir") + ((pre_root / "wav",) if pre_root else ()):
            d.mkdir()
        babble = None
        if any(sess.noise_kind == "babble" for s in plan.target for sess in s.sessions):
            rng = seed_for(cfg.seed, TARGET, BABBLE_KEY)
            babble = babble_pool(rng, TARGET_PHONES, cfg.babble_voices, cfg.babble_seconds)
        tasks = [("speaker", s, pre_root / "wav") for s in plan.pretrain]
        tasks += [("speaker", s, tgt_root / "wav") for s in plan.target]
        tasks.sort(key=lambda t: -t[1].seconds)  # longest first balances the processes
        tasks = [("noise", (i, cfg.noise_seconds), tgt_root / "noise") for i in range(cfg.n_noise_files)] + tasks
        tasks += [("rir", i, tgt_root / "rir") for i in range(cfg.n_rir_files)]
        seconds = {"speaker": 0.0, "noise": 0.0, "rir": 0.0}
        bar = tqdm(total=len(tasks), desc="corpus", unit="task", disable=not progress)
        if cfg.nj == 1:
            _init_worker(cfg.seed, babble)
            for task in tasks:
                kind, sec = _run_task(task)
                seconds[kind] += sec
                bar.update()
        else:
            saved = {k: os.environ.get(k) for k in _THREAD_VARS}
            os.environ.update({k: "1" for k in _THREAD_VARS})  # one thread per worker process
            try:
                ctx = multiprocessing.get_context("spawn")
                with ctx.Pool(cfg.nj, initializer=_init_worker, initargs=(cfg.seed, babble)) as pool:
                    for kind, sec in pool.imap_unordered(_run_task, tasks):
                        seconds[kind] += sec
                        bar.update()
            finally:
                for k, v in saved.items():
                    if v is None:
                        os.environ.pop(k, None)
                    else:
                        os.environ[k] = v
        bar.close()
        if pre_root is not None:
            write_speakers(pre_root, plan.pretrain)
            write_sessions(pre_root, plan.pretrain)
            _write_config(pre_root, cfg, "pretrain")
            write_meta(pre_root, plan.pretrain)
        write_speakers(tgt_root, plan.target)
        write_sessions(tgt_root, plan.target)
        write_trials(tgt_root / O_LIST, o_list)
        write_trials(tgt_root / H_LIST, h_list)
        _write_config(tgt_root, cfg, "target")
        write_meta(tgt_root, plan.target)  # last: the corpus is complete
    elapsed = time.perf_counter() - t0
    pre_sec = sum(s.seconds for s in plan.pretrain)
    tgt_sec = sum(s.seconds for s in plan.target)
    summary = {
        "pretrain_speakers": len(plan.pretrain),
        "pretrain_utterances": sum(len(s.utterances) for s in plan.pretrain),
        "pretrain_hours": round(pre_sec / 3600, 3),
        "target_dev_speakers": cfg.n_dev_speakers,
        "target_test_speakers": cfg.n_test_speakers,
        "target_utterances": sum(len(s.utterances) for s in plan.target),
        "target_hours": round(tgt_sec / 3600, 3),
        "trials_o": len(o_list),
        "trials_h": len(h_list),
        "seconds": round(elapsed, 2),
        "x_real_time": round((pre_sec + tgt_sec) / elapsed, 1),
        "nj": cfg.nj,
    }
    log.info("done: %s", json.dumps(summary))
    return summary
