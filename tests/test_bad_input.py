"""Bad input, tried as a new user would (issue 12): every class of it refused with
'<command>: error: <file>[:<line>]: ...' and status 1, or read correctly; never a silent
wrong answer, a traceback, or a rerun that destroys good output."""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from spectral import features
from spectral.corpora import voxceleb1
from spectral.data.audio import read_audio
from spectral.data.kaldi import read_table
from spectral.errors import InputError
from spectral.logutil import run_main
from spectral.scoring import metrics
from spectral.train.config import resolve_config, system_name

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


@pytest.fixture
def data_dir(vox1_layout, tmp_path):
    assert voxceleb1.main(["--corpus-dir", str(vox1_layout), "--data-dir", str(tmp_path / "data"), "--no-progress"]) == 0
    return tmp_path / "data" / "vox1_test"


def _error_line(err: str, prog: str) -> str:
    lines = [line for line in err.splitlines() if line.startswith(f"{prog}: error: ")]
    assert lines, err
    assert "Traceback" not in err, err
    return lines[-1]


# -- 1 and 3: one audio reader, every subtype on Kaldi's 16-bit scale, truncation refused


@pytest.mark.parametrize("subtype", ["PCM_16", "PCM_24", "PCM_32", "FLOAT", "DOUBLE", "PCM_U8", "ULAW"])
def test_every_subtype_is_read_on_the_16_bit_scale(tmp_path, subtype):
    rng = np.random.default_rng(0)
    pcm = (rng.uniform(-0.5, 0.5, 16000) * 32768).round().astype(np.int16)
    path = tmp_path / f"a_{subtype}.wav"
    sf.write(path, pcm.astype(np.float64) / 32768, 16000, subtype=subtype)
    x = read_audio(path, scale="int16")
    tolerance = {"PCM_U8": 260, "ULAW": 1100}.get(subtype, 1.0)
    assert np.abs(x - pcm).max() <= tolerance  # not zeros: float files are rescaled
    np.testing.assert_allclose(read_audio(path, scale="unit"), x / 32768, atol=1e-6)


def test_float_wavs_give_the_features_of_their_16_bit_twin(data_dir, tmp_path):
    wav_scp = read_table(data_dir / "wav.scp")
    for i, (utt, path) in enumerate(sorted(wav_scp.items())):
        samples, sr = sf.read(path, dtype="float64")
        sf.write(path, samples, sr, subtype="FLOAT" if i % 2 else "DOUBLE")
    assert features.main(["--data-dir", str(data_dir), "--no-progress", "--nj", "1"]) == 0
    feats = {u: features.load_feats(v, cmn=False) for u, v in read_table(data_dir / "feats.scp").items()}
    assert all(f.std() > 1.0 for f in feats.values())  # not the constant log-floor of all-zero audio


def _truncate(path: str) -> None:
    data = Path(path).read_bytes()
    Path(path).write_bytes(data[: len(data) // 2])


def test_features_refuse_a_truncated_wav_and_keep_the_old_features(data_dir, capsys):
    assert features.main(["--data-dir", str(data_dir), "--no-progress"]) == 0
    before = {p: p.read_bytes() for p in data_dir.rglob("*") if p.is_file()}
    victim = sorted(read_table(data_dir / "wav.scp").values())[1]
    _truncate(victim)
    assert features.main(["--data-dir", str(data_dir), "--no-progress"]) == 1
    line = _error_line(capsys.readouterr().err, "spectral-features")
    assert victim in line and "truncated" in line
    assert {p: p.read_bytes() for p in data_dir.rglob("*") if p.is_file()} == before


def test_the_training_reader_refuses_a_truncated_wav(data_dir):
    from spectral.train.data import SpeakerData

    victim_utt, victim = sorted(read_table(data_dir / "wav.scp").items())[0]
    _truncate(victim)
    data = SpeakerData(data_dir, kind="waveform", crop_seconds=0.2)
    with pytest.raises(InputError, match="truncated"):
        data.crop(victim_utt, None, augment=False)


def test_nan_samples_of_a_float_file_are_refused(tmp_path):
    x = np.zeros(1600)
    x[100] = np.nan
    sf.write(tmp_path / "nan.wav", x, 16000, subtype="FLOAT")
    with pytest.raises(InputError, match="non-finite sample"):
        read_audio(tmp_path / "nan.wav")


# -- 2: a failed rerun leaves the previous complete output and its sidecars untouched


def test_a_failed_features_rerun_keeps_feats_arks_and_sidecars(data_dir, capsys):
    assert features.main(["--data-dir", str(data_dir), "--no-progress"]) == 0
    before = {p: p.read_bytes() for p in data_dir.rglob("*") if p.is_file()}
    wav_scp = data_dir / "wav.scp"
    utt, path = sorted(read_table(wav_scp).items())[0]
    Path(path).write_bytes(b"RIFF" + b"\0" * 40)
    assert features.main(["--data-dir", str(data_dir), "--no-progress", "--num-mel-bins", "40"]) == 1
    assert {p: p.read_bytes() for p in data_dir.rglob("*") if p.is_file() and p != Path(path)} == \
        {p: b for p, b in before.items() if p != Path(path)}


def test_a_full_disk_ends_with_the_file_and_leaves_the_old_features(data_dir, monkeypatch, capsys):
    assert features.main(["--data-dir", str(data_dir), "--no-progress"]) == 0
    before = {p: p.read_bytes() for p in data_dir.rglob("*") if p.is_file()}
    real = features.write_table

    def full(path, rows):
        if "feats.scp" in str(path):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        real(path, rows)

    monkeypatch.setattr(features, "write_table", full)
    assert features.main(["--data-dir", str(data_dir), "--no-progress", "--nj", "1"]) == 1
    line = _error_line(capsys.readouterr().err, "spectral-features")
    assert "feats.scp" in line and "No space left on device" in line
    assert {p: p.read_bytes() for p in data_dir.rglob("*") if p.is_file()} == before


def _die(*args, **kwargs):
    os.kill(os.getpid(), signal.SIGKILL)


def test_a_killed_worker_is_an_error_naming_the_file(data_dir, monkeypatch, capsys):
    monkeypatch.setattr(features, "_extract_chunk", _die)  # workers are forked: they see it
    assert features.main(["--data-dir", str(data_dir), "--no-progress", "--nj", "2"]) == 1
    line = _error_line(capsys.readouterr().err, "spectral-features")
    assert "wav.scp" in line and "worker process died" in line
    assert not (data_dir / "feats.scp").exists()


# -- 6: workers end with their parent

FEATURES_SCRIPT = """
import os, sys, time
from spectral import features

def slow_chunk(*args, **kwargs):  # a worker busy with a long chunk
    os.write(1, f"{os.getpid()}\\n".encode())  # one write: two workers' lines never interleave
    time.sleep(120)

features._extract_chunk = slow_chunk  # the forked workers inherit it
sys.exit(features.main(["--data-dir", sys.argv[1], "--no-progress", "--nj", "2"]))
"""


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ", 1)[1][0] != "Z"
    except FileNotFoundError:
        return False


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM])
def test_feature_workers_stop_when_the_main_process_is_killed(data_dir, tmp_path, sig):
    script = tmp_path / "features_main.py"
    script.write_text(FEATURES_SCRIPT)
    proc = subprocess.Popen([sys.executable, str(script), str(data_dir)], stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True)
    workers = [int(proc.stdout.readline()), int(proc.stdout.readline())]
    try:
        assert all(_alive(p) for p in workers)
        proc.send_signal(sig)
        proc.wait(timeout=10)
        deadline = time.monotonic() + 10
        while any(_alive(p) for p in workers) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not any(_alive(p) for p in workers)
        assert not (data_dir / "feats.scp").exists()
    finally:  # a failing run must not leave its sleeping workers behind
        for p in [proc.pid, *workers]:
            if _alive(p):
                os.kill(p, signal.SIGKILL)


def test_the_stages_with_workers_use_the_pool_that_stops_with_them():
    from spectral import workers
    from spectral.corpora import voxceleb2

    assert features.process_pool is workers.process_pool and voxceleb2.process_pool is workers.process_pool


# -- 5: a listed speaker without audio


def test_a_listed_speaker_without_audio_is_refused_or_skipped_with_a_count(vox1_layout, tmp_path, capsys):
    import shutil

    shutil.rmtree(vox1_layout / "wav" / "id10002")
    out = tmp_path / "data"
    assert voxceleb1.main(["--corpus-dir", str(vox1_layout), "--data-dir", str(out), "--no-progress"]) == 1
    line = _error_line(capsys.readouterr().err, "spectral-prepare-vox1")
    assert f"{vox1_layout / 'vox1_meta.csv'}:3:" in line and "id10002" in line
    assert not out.exists()
    assert voxceleb1.main(["--corpus-dir", str(vox1_layout), "--data-dir", str(out), "--no-progress",
                           "--skip-missing-speakers"]) == 0
    assert "1 listed speaker(s) have no audio and are left out" in capsys.readouterr().err
    assert "id10002" not in set(read_table(out / "vox1_dev" / "utt2spk").values())


# -- 7: NaN and infinite costs refused, infinite scores accepted as Kaldi does


@pytest.mark.parametrize("option", ["--c-miss", "--c-fa", "--p-target"])
@pytest.mark.parametrize("value", ["nan", "inf", "-inf"])
def test_min_dcf_refuses_non_finite_costs(tmp_path, capsys, option, value):
    (tmp_path / "trials").write_text("a b target\na c nontarget\n")
    (tmp_path / "scores").write_text("a b 1.0\na c 0.0\n")
    assert metrics.compute_min_dcf_main([f"{option}={value}", str(tmp_path / "scores"), str(tmp_path / "trials")]) == 1
    line = _error_line(capsys.readouterr().err, "spectral-compute-min-dcf")
    assert option[2:] in line and "finite" in line


def test_infinite_scores_stay_accepted(tmp_path, capsys):
    (tmp_path / "trials").write_text("a b target\na c nontarget\na d target\n")
    (tmp_path / "scores").write_text("a b inf\na c -inf\na d 0.5\n")
    assert metrics.compute_min_dcf_main([str(tmp_path / "scores"), str(tmp_path / "trials")]) == 0
    assert capsys.readouterr().out.strip() == "0.0000"


# -- 4 and 8: configs over the defaults, unknown sections and impossible combinations refused


def test_a_lone_adapter_key_keeps_the_other_defaults():
    assert system_name(resolve_config({"adapter": {"rank": 4}})) == system_name(resolve_config({}))
    assert system_name(resolve_config({"adapter": {"rank": 4}})).startswith("builtin_spectralft_k64_r4_")


def test_finetune_cli_merges_set_over_the_defaults(tmp_path):
    run = subprocess.run([str(BIN / "spectral-finetune"), "--print-system-name", "--set", "adapter.rank=4"],
                         capture_output=True, text=True)
    assert run.returncode == 0 and run.stdout.startswith("builtin_spectralft_k64_r4_"), run.stderr
    cfg = tmp_path / "c.yaml"
    cfg.write_text("adapter:\n  top_k: 32\n")
    run = subprocess.run([str(BIN / "spectral-finetune"), "--print-system-name", "--config", str(cfg)],
                         capture_output=True, text=True)
    assert run.returncode == 0 and run.stdout.startswith("builtin_spectralft_k32_r4_"), run.stderr


@pytest.mark.parametrize("patch, message", [
    ({"finetun": {"epochs": 1}}, "unknown config section"),
    ({"adapter": {"top_k": 200}}, r"adapter.top_k \(200\) exceeds min\(m, n\) = 128"),
    ({"adapter": {"method": "lora", "rank": 600}}, r"adapter.rank \(600\) exceeds"),
    ({"adapter": {"targets": ["query"]}}, "match no linear layer"),
    ({"model": {"builtin": {"n_mels": 40}}, "features": {"num_mel_bins": 80}}, "must equal model.builtin.n_mels"),
    ({"adapter": "lora"}, "adapter must be a mapping"),
])
def test_settings_that_cannot_work_are_refused_before_any_work(patch, message):
    with pytest.raises(ValueError, match=message):
        resolve_config(patch)


def test_ssl_target_sizes_come_from_config_json(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({
        "hidden_size": 64, "intermediate_size": 96, "num_hidden_layers": 2, "num_attention_heads": 4, "conv_dim": [32]}))
    with pytest.raises(ValueError, match=r"top_k \(256\) exceeds min\(m, n\) = 64"):
        resolve_config({"model": {"backbone": "wavlm", "path": str(tmp_path)}, "adapter": {"top_k": 256}})
    resolve_config({"model": {"backbone": "wavlm", "path": str(tmp_path)}, "adapter": {"top_k": 64}})


def test_finetune_cli_refuses_an_unknown_section_naming_the_file(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("finetun:\n  epochs: 1\n")
    run = subprocess.run([str(BIN / "spectral-finetune"), "--print-system-name", "--config", str(cfg)],
                         capture_output=True, text=True)
    assert run.returncode == 2 and f"spectral-finetune: error: {cfg}: unknown config section(s) 'finetun'" in run.stderr


@pytest.mark.parametrize("prog", ["spectral-finetune", "spectral-pretrain"])
def test_a_yaml_syntax_error_in_config_names_file_and_line(tmp_path, prog):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("adapter:\n  rank: 4\n  top_k: [64\nfinetune: {}\n")
    extra = ["--backbone-checkpoint", "x.pt"] if prog == "spectral-finetune" else []
    run = subprocess.run([str(BIN / prog), "--config", str(cfg), "--data-dir", str(tmp_path), "--exp-dir",
                          str(tmp_path / "exp"), *extra], capture_output=True, text=True)
    assert run.returncode == 1, run.stderr
    line = _error_line(run.stderr, prog)
    assert line.startswith(f"{prog}: error: {cfg}:4: not valid YAML")
    assert not (tmp_path / "exp").exists()


def test_impossible_settings_stop_the_dry_run(tmp_path, venv_env):
    (tmp_path / "c.yaml").write_text("embedded: {size: tiny}\nmodel: {builtin: {n_mels: 40}}\n")
    run = subprocess.run(["snakemake", "-n", "--snakefile", str(REPO / "Snakefile"), "--directory", str(tmp_path),
                          "--configfile", str(tmp_path / "c.yaml")], env=venv_env, capture_output=True, text=True,
                         timeout=600)
    assert run.returncode != 0
    assert "features.num_mel_bins (80) must equal model.builtin.n_mels (40)" in run.stdout + run.stderr
    assert not (tmp_path / "corpus").exists()


# -- 9: no traceback, file and line named


def test_a_meta_file_that_is_not_utf8_names_its_line(vox1_layout, tmp_path, capsys):
    meta = vox1_layout / "vox1_meta.csv"
    lines = meta.read_bytes().split(b"\n")
    lines[2] = lines[2].replace(b"Person_1", b"Pers\xe9n_1")  # latin-1
    meta.write_bytes(b"\n".join(lines))
    assert voxceleb1.main(["--corpus-dir", str(vox1_layout), "--data-dir", str(tmp_path / "d"), "--no-progress"]) == 1
    assert _error_line(capsys.readouterr().err, "spectral-prepare-vox1").startswith(
        f"spectral-prepare-vox1: error: {meta}:3: not UTF-8")


@pytest.mark.parametrize("which", ["trials", "scores"])
def test_a_trial_or_score_list_that_is_not_utf8_names_its_line(tmp_path, capsys, which):
    (tmp_path / "trials").write_bytes(b"a b target\na c nontarget\n")
    (tmp_path / "scores").write_bytes(b"a b 1.0\na c 0.0\n")
    (tmp_path / which).write_bytes((tmp_path / which).read_bytes() + b"a \xff 1\n")
    assert metrics.compute_min_dcf_main([str(tmp_path / "scores"), str(tmp_path / "trials")]) == 1
    assert f"{tmp_path / which}:3: not UTF-8" in _error_line(capsys.readouterr().err, "spectral-compute-min-dcf")


def test_a_wav_scp_that_is_not_utf8_names_its_line(data_dir, capsys):
    wav_scp = data_dir / "wav.scp"
    wav_scp.write_bytes(wav_scp.read_bytes() + b"x\xff /nowhere.wav\n")
    assert features.main(["--data-dir", str(data_dir), "--no-progress"]) == 1
    n = len(wav_scp.read_bytes().splitlines())
    assert f"{wav_scp}:{n}: not UTF-8" in _error_line(capsys.readouterr().err, "spectral-features")


def test_run_main_turns_os_errors_and_input_errors_into_one_line(capsys):
    def full():
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), "out/x.ark")

    assert run_main("prog", full) == 1
    assert capsys.readouterr().err.startswith("prog: error: out/x.ark: No space left on device")

    def bad():
        raise InputError("in.txt", "what is wrong", 7)

    assert run_main("prog", bad) == 1
    assert capsys.readouterr().err == "prog: error: in.txt:7: what is wrong\n"
