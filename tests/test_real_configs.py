"""The real-corpus configs, unmodified, on fabricated copies of their layouts: the full DAG of
conf/vox1.yaml and conf/cnceleb1.yaml, each alone and with conf/presets/paper.yaml, dry-runs;
and one fine-tuning step runs through the vox1 config's code path on a tiny saved WavLM.

The configs name their data relative to the working directory (corpus/VoxCeleb1,
corpus/CN-Celeb, models/wavlm-large, corpus/musan, corpus/RIRS_NOISES), so the fixture builds
a working directory holding exactly those.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parent.parent
pytest.importorskip("transformers")


def _real_layouts():
    spec = importlib.util.spec_from_file_location("real_layouts_by_path", REPO / "tests" / "corpora" / "real_layouts.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


layouts = _real_layouts()


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    """A working directory with the corpora, the model and the augmentation dirs the configs name."""
    work = tmp_path_factory.mktemp("realwork")
    layouts.make_vox1_real(work / "corpus" / "VoxCeleb1")
    cnc = layouts.make_cnceleb1(work / "corpus", folder="CN-Celeb")
    assert cnc == work / "corpus" / "CN-Celeb"
    # 256 wide: the configs' top_k = 256 must fit its q/k matrices, which the dry run checks
    layouts.save_tiny_wavlm(work / "models" / "wavlm-large", hidden_size=256)
    for d in ("musan", "RIRS_NOISES"):
        (work / "corpus" / d).mkdir()
    return work


def _env() -> dict[str, str]:
    return dict(os.environ, PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}", LC_ALL="C", HF_HUB_OFFLINE="1")


def _planned_jobs(output: str) -> dict[str, int]:
    block = output.split("Job stats:", 1)[1].split("\n\n", 1)[0]
    rows = (re.fullmatch(r"(\w+)\s+(\d+)", line.strip()) for line in block.splitlines())
    return {m.group(1): int(m.group(2)) for m in rows if m and m.group(1) != "total"}


CASES = {
    "vox1": ["conf/vox1.yaml"],
    "vox1+paper": ["conf/vox1.yaml", "conf/presets/paper.yaml"],
    "cnceleb1": ["conf/cnceleb1.yaml"],
    "cnceleb1+paper": ["conf/cnceleb1.yaml", "conf/presets/paper.yaml"],
}


_DRY: dict[str, str] = {}


def dry_run(work: Path, case: str) -> str:
    """The case's dry run of results/vox1_eer.txt with shell commands (run once per module)."""
    if case not in _DRY:
        d = work / f"dry-{case}"
        d.mkdir()
        for sub in ("corpus", "models"):
            (d / sub).symlink_to(work / sub)
        cmd = ["snakemake", "-n", "-p", "results/vox1_eer.txt", "--snakefile", str(REPO / "Snakefile"),
               "--directory", str(d), "--configfile", *[str(REPO / c) for c in CASES[case]]]
        run = subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=600)
        text = run.stdout + run.stderr
        assert run.returncode == 0, f"{case}:\n{text[-3000:]}"
        _DRY[case] = text
    return _DRY[case]


def _core_jobs(out: str, case: str) -> dict[str, int]:
    """Planned jobs but the augmentation manifests, which only the paper preset's MUSAN/RIR need."""
    jobs = _planned_jobs(out)
    augment = jobs.pop("augment_manifest", 0)
    assert augment in ((0, 2) if "paper" in case else (0,)), jobs
    return jobs


def _job_block(out: str, rule: str) -> str:
    """The dry run's first block for ``rule`` (header, resources and shell command)."""
    return out.split(f"rule {rule}:", 1)[1].split("\n\n", 1)[0]


# one dry run costs about 10 s of CPU (Snakemake and torch start): two run by default, all four with -m slow
@pytest.mark.parametrize("case", [pytest.param("vox1", marks=pytest.mark.slow), "vox1+paper"])
def test_vox1_dag_prepares_scores_o_e_h_and_warns_that_e_h_overlap_the_training_set(work, case):
    out = dry_run(work, case)
    assert _core_jobs(out, case) == {"prepare_target": 1, "svd": 1, "finetune": 1, "embed": 3, "score": 3,
                                     "metrics": 1, "report": 1}, out
    assert "WARNING: trial lists vox1_E, vox1_H name utterances of VoxCeleb1-dev speakers" in out
    prep = _job_block(out, "prepare_target")
    assert "--all-name vox1_all --all-trials vox1_E,vox1_H" in prep and "corpus/VoxCeleb1 data" in prep
    for trials, data in (("vox1_O", "vox1_test"), ("vox1_E", "vox1_all"), ("vox1_H", "vox1_all")):
        assert re.search(rf"embeddings/{data}/xvector\.scp data/{data}/trials/{trials} \S+/{trials}\.score", out), trials
    assert "data/vox1_dev exp/" in _job_block(out, "finetune")
    assert "rule fbank" not in out  # WavLM reads waveforms: no fbank of any set


@pytest.mark.slow
def test_vox1_alone_trains_on_whatever_device_is_there_and_requests_no_gpu(work):
    out = dry_run(work, "vox1")
    assert "gpu=1" not in out
    assert '\\"device\\": \\"auto\\"' in _job_block(out, "finetune") or '"device": "auto"' in _job_block(out, "finetune")


def test_the_paper_preset_sets_the_papers_training_and_asks_for_a_gpu(work):
    out = dry_run(work, "vox1+paper")
    ft = _job_block(out, "finetune")
    settings = json.loads(re.search(r"--config '(\{.*?\})'", ft).group(1))
    assert settings["model"] == {**settings["model"], "backbone": "wavlm", "path": "models/wavlm-large"}
    assert {k: settings["adapter"][k] for k in ("method", "targets", "rank", "top_k")} == {
        "method": "spectralft", "targets": ["q_proj", "k_proj"], "rank": 16, "top_k": 256}
    assert {k: settings["backend"][k] for k in ("channels", "margin", "loss_scale")} == {
        "channels": 1024, "margin": 0.3, "loss_scale": 32.0}
    f = settings["finetune"]
    assert (f["optimizer"], f["lr"], f["lr_decay"], f["epochs"], f["batch_size"], f["crop_seconds"], f["device"]) == (
        "sgd", 0.001, 0.97, 30, 128, 3.0, "cuda")
    assert "corpus/musan" in out and "corpus/RIRS_NOISES" in out  # MUSAN and RIRs reach training
    assert "exp/svd/wavlm-large/k256_b0/factors.pt" in ft
    embed = _job_block(out, "embed")
    assert "--crops 5 --crop-seconds 3.0 --device cuda" in embed
    assert re.search(r"resources:.*gpu=1", ft) and re.search(r"resources:.*gpu=1", embed)


@pytest.mark.parametrize("case", ["cnceleb1", pytest.param("cnceleb1+paper", marks=pytest.mark.slow)])
def test_cnceleb1_dag_trains_on_dev_and_scores_with_the_enroll_map(work, case):
    out = dry_run(work, case)
    assert _core_jobs(out, case) == {"prepare_cnceleb1": 1, "svd": 1, "finetune": 1, "embed": 2, "score": 1,
                                     "metrics": 1, "report": 1}, out
    score = _job_block(out, "score")
    assert "--enroll-map data/cnceleb1_eval/enroll.map" in score
    assert "embeddings/cnceleb1_dev/xvector.scp" in score  # mean subtraction from the training set
    assert "data/cnceleb1_eval/trials/cnceleb1" in score
    assert "data/cnceleb1_dev exp/" in _job_block(out, "finetune")
    assert "WARNING" not in out


@pytest.mark.slow
def test_a_config_pointing_at_a_missing_corpus_names_the_missing_file(tmp_path):
    cmd = ["snakemake", "-n", "results/vox1_eer.txt", "--snakefile", str(REPO / "Snakefile"),
           "--directory", str(tmp_path), "--configfile", str(REPO / "conf" / "cnceleb1.yaml")]
    run = subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=300)
    assert run.returncode != 0
    assert "corpus/CN-Celeb/dev/dev.lst" in run.stdout + run.stderr


def test_one_finetuning_step_through_the_vox1_config_on_a_tiny_saved_wavlm(work, tmp_path):
    """prepare (as the vox1 rules call it) -> svd of the saved WavLM -> spectral-finetune with
    conf/vox1.yaml's settings, shrunk only where the tiny model or the time budget demand it."""
    import torch

    from spectral.corpora import voxceleb1
    from spectral.svd import main as svd_main
    from spectral.train.finetune import main as finetune_main

    config = yaml.safe_load((REPO / "conf" / "vox1.yaml").read_text())
    voxceleb1.prepare(work / config["corpus"]["root"], tmp_path / "data", all_name="vox1_all",
                      all_trials=("vox1_E", "vox1_H"), progress=False)
    model_dir = work / config["model"]["path"]
    settings = {s: config.get(s, {}) for s in ("model", "backend", "adapter", "finetune", "augment")}
    settings["model"]["path"] = str(model_dir)
    settings["adapter"].update(rank=2, top_k=4)  # the tiny WavLM is small
    settings["backend"] = {"channels": 16, "scale": 4, "se_bottleneck": 8, "attention_channels": 8, "embed_dim": 8}
    settings["finetune"].update(epochs=1, steps_per_epoch=1, batch_size=4, crop_seconds=0.5, warmup_steps=0,
                                threads=1, device="cpu")
    svd_dir = tmp_path / "svd"
    assert svd_main([str(model_dir), str(svd_dir), "--targets", " ".join(settings["adapter"]["targets"]), "--top-k", "4",
                     "--method", config["svd"]["method"]]) == 0
    exp = tmp_path / "exp"
    assert finetune_main(["--config", json.dumps(settings), "--factors", str(svd_dir / "factors.pt"), "--no-progress",
                          "--data-dir", str(tmp_path / "data" / "vox1_dev"), "--exp-dir", str(exp)]) == 0
    final = torch.load(exp / "final.pt", weights_only=True)
    b = {k: v for k, v in final["adapters"].items() if ".A_U" in k or ".B_V" in k}
    assert any("layers.0.attention.q_proj" in k for k in b) and any("layers.1.attention.k_proj" in k for k in b)
    assert any(v.abs().sum() > 0 for v in b.values())  # zero-initialised (paper init), moved by the one step
    assert final["config"]["model"]["backbone"] == "wavlm" and final["speakers"] == ["id10001", "id10002", "id10003"]
    rows = (exp / "train_log.tsv").read_text().splitlines()
    assert len(rows) == 2
