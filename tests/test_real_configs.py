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
    layouts.make_vox1_real(work / "corpus" / "VoxCeleb1", original_lists=True)  # all six lists, as released
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


def test_the_slurm_gpu_profile_asks_for_a_gpu_where_the_config_says_device_auto(work, tmp_path):
    """Before, conf/vox1.yaml alone (device: auto) under slurm-gpu submitted training and embedding with no GPU."""
    for sub in ("corpus", "models"):
        (tmp_path / sub).symlink_to(work / sub)
    cmd = ["snakemake", "-n", "-p", "results/vox1_eer.txt", "--snakefile", str(REPO / "Snakefile"), "--directory",
           str(tmp_path), "--profile", str(REPO / "conf/profiles/slurm-gpu"), "--configfile", str(REPO / "conf/vox1.yaml")]
    run = subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=600)
    out = run.stdout + run.stderr
    assert run.returncode == 0, out[-3000:]
    ft, embed = _job_block(out, "finetune"), _job_block(out, "embed")
    assert '\\"device\\": \\"auto\\"' in ft or '"device": "auto"' in ft
    assert "--device auto" in embed
    assert re.search(r"resources:.*gpu=1", ft) and re.search(r"resources:.*gpu=1", embed)
    assert not re.search(r"resources:.*gpu=1", _job_block(out, "prepare_target"))


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
def test_cnceleb1_dag_trains_on_dev_and_scores_both_protocols_with_their_enroll_maps(work, case):
    out = dry_run(work, case)
    assert _core_jobs(out, case) == {"prepare_cnceleb1": 1, "svd": 1, "finetune": 1, "embed": 2, "score": 2,
                                     "metrics": 1, "report": 1}, out
    assert "--trials cnceleb1_concat,cnceleb1_avg" in _job_block(out, "prepare_cnceleb1")
    for protocol in ("cnceleb1_concat", "cnceleb1_avg"):
        score = [line for line in out.splitlines() if "spectral-score" in line and f"trials/{protocol} " in line]
        assert len(score) == 1, protocol
        assert f"--enroll-map data/cnceleb1_eval/enroll_maps/{protocol} " in score[0]
        assert "--mean-scp exp/" in score[0] and "embeddings/cnceleb1_dev/xvector.scp" in score[0]  # training-set mean
        assert f"/scores/{protocol}.score" in score[0]
    assert "data/cnceleb1_dev exp/" in _job_block(out, "finetune")
    assert "WARNING" not in out


def _system(out: str) -> str:
    return re.search(r"exp/(\w+)/final\.pt", _job_block(out, "finetune")).group(1)


def test_switching_corpus_in_one_work_directory_keeps_both_systems(work):
    """Before, VoxCeleb1 and CN-Celeb1 runs of one method shared exp/<system>/: the second overwrote final.pt."""
    d = work / "one-dir"
    d.mkdir()
    for sub in ("corpus", "models"):
        (d / sub).symlink_to(work / sub)

    def plan(conf: str) -> str:
        cmd = ["snakemake", "-n", "-p", "results/vox1_eer.txt", "--snakefile", str(REPO / "Snakefile"),
               "--directory", str(d), "--configfile", str(REPO / conf)]
        run = subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=600)
        assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
        return run.stdout + run.stderr

    vox1, cnc = _system(plan("conf/vox1.yaml")), _system(plan("conf/cnceleb1.yaml"))
    assert vox1 != cnc and vox1.startswith("wavlm_spectralft_k256_r16_s1_") and cnc.startswith("wavlm_spectralft_k256_r16_s1_")
    # a finished VoxCeleb1 system stays as it is: the CN-Celeb1 plan trains its own and never names the other
    (d / "exp" / vox1).mkdir(parents=True)
    (d / "exp" / vox1 / "final.pt").write_bytes(b"the VoxCeleb1 system")
    out = plan("conf/cnceleb1.yaml")
    assert _system(out) == cnc and vox1 not in out
    assert (d / "exp" / vox1 / "final.pt").read_bytes() == b"the VoxCeleb1 system"
    for job in ("embed", "score"):  # and they check final.pt against the configured training set
        assert f"--train-data-dir data/cnceleb1_dev" in _job_block(out, job)


SMALL = """\
adapter: {rank: 2, top_k: 4}
backend: {channels: 16, scale: 4, se_bottleneck: 8, attention_channels: 8, embed_dim: 8}
finetune: {epochs: 1, steps_per_epoch: 1, batch_size: 4, crop_seconds: 0.5, warmup_steps: 0, threads: 1, device: cpu}
embed: {crops: 0, threads: 1, device: cpu, max_seconds: 2.0}
"""


@pytest.mark.slow
def test_both_corpora_run_in_one_directory_and_keep_their_systems_and_a_swapped_model_is_refused(work, tmp_path):
    """The real configs, shrunk for the tiny WavLM only (SMALL), run one after the other in one work
    directory: VoxCeleb1 (trials: [vox1_O], on a directory holding all six lists), then CN-Celeb1.
    Before, both trained exp/<same system>/, the second moving the first's checkpoints aside."""
    import torch

    for sub in ("corpus", "models"):
        (tmp_path / sub).symlink_to(work / sub)
    (tmp_path / "small.yaml").write_text(SMALL)
    (tmp_path / "vox1_o.yaml").write_text("trials: [vox1_O]\n")

    def run(conf: str, *extra: str) -> subprocess.CompletedProcess:
        cmd = ["snakemake", "--cores", "2", "results/vox1_eer.txt", "--snakefile", str(REPO / "Snakefile"),
               "--directory", str(tmp_path), "--configfile", str(REPO / conf), str(tmp_path / "small.yaml"), *extra]
        return subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=900)

    done = run("conf/vox1.yaml", str(tmp_path / "vox1_o.yaml"))
    assert done.returncode == 0, done.stderr[-3000:]
    vox1 = (tmp_path / "results" / "vox1_eer.txt").read_text().split("system: ", 1)[1].split()[0]
    vox1_final = (tmp_path / "exp" / vox1 / "final.pt").read_bytes()
    done = run("conf/cnceleb1.yaml")
    assert done.returncode == 0, done.stderr[-3000:]
    results = (tmp_path / "results" / "vox1_eer.txt").read_text()
    cnc = results.split("system: ", 1)[1].split()[0]
    assert cnc != vox1 and re.findall(r"^trials: (\S+)$", results, re.M) == ["cnceleb1_concat", "cnceleb1_avg"]
    assert (tmp_path / "exp" / vox1 / "final.pt").read_bytes() == vox1_final  # untouched
    assert not list((tmp_path / "exp").rglob("last.stale.pt"))
    records = {s: torch.load(tmp_path / "exp" / s / "final.pt", weights_only=True)["train_data"] for s in (vox1, cnc)}
    assert (records[vox1]["corpus"], records[vox1]["set"]) == ("vox1", "vox1_dev")
    assert (records[cnc]["corpus"], records[cnc]["set"], records[cnc]["num_speakers"]) == ("cnceleb1", "cnceleb1_dev", 4)
    # a VoxCeleb1 model where the CN-Celeb1 system's is (copied, or kept by --rerun-triggers mtime): refused
    (tmp_path / "exp" / cnc / "final.pt").write_bytes(vox1_final)
    refused = run("conf/cnceleb1.yaml", "--rerun-triggers", "mtime")
    assert refused.returncode != 0
    logs = "".join(p.read_text() for p in (tmp_path / "logs" / "embed" / cnc).glob("*.log"))
    assert f"exp/{cnc}/final.pt: was trained on vox1_dev (corpus vox1 at corpus/VoxCeleb1, 3 speakers" in logs
    assert "but the configured training set is cnceleb1_dev (4 speakers" in logs


def test_the_training_speakers_are_part_of_the_system_name(work, tmp_path):
    """Another VoxCeleb1 copy (other dev speakers in vox1_meta.csv) under the same path is another system."""
    import shutil

    names = []
    for variant in ("as-is", "one-dev-speaker-less"):
        d = tmp_path / variant
        (d / "corpus").mkdir(parents=True)
        shutil.copytree(work / "corpus" / "VoxCeleb1", d / "corpus" / "VoxCeleb1", symlinks=True)
        (d / "models").symlink_to(work / "models")
        if variant != "as-is":
            meta = d / "corpus" / "VoxCeleb1" / "vox1_meta.csv"
            lines = meta.read_text().splitlines()
            dev = next(i for i, line in enumerate(lines) if line.endswith("\tdev"))
            meta.write_text("\n".join(lines[:dev] + lines[dev + 1:]) + "\n")
        cmd = ["snakemake", "-n", "results/vox1_eer.txt", "--snakefile", str(REPO / "Snakefile"), "--directory", str(d),
               "--configfile", str(REPO / "conf/vox1.yaml"), "-p"]
        run = subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=600)
        assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
        names.append(_system(run.stdout + run.stderr))
    assert names[0] != names[1]


def test_configuring_only_vox1_o_prepares_a_release_directory_holding_all_six_lists(work, tmp_path):
    """Before, list_test_all2.txt stopped the stage: 'names utterances outside the test set'."""
    (tmp_path / "corpus").mkdir()
    (tmp_path / "corpus" / "VoxCeleb1").symlink_to(work / "corpus" / "VoxCeleb1")
    assert sorted(p.name for p in (tmp_path / "corpus" / "VoxCeleb1").glob("*.txt")) == sorted(
        ["veri_test2.txt", "list_test_all2.txt", "list_test_hard2.txt", "veri_test.txt", "list_test_all.txt",
         "list_test_hard.txt"])
    cmd = ["snakemake", "--cores", "1", "data/vox1_test/trials/vox1_O", "--snakefile", str(REPO / "Snakefile"),
           "--directory", str(tmp_path), "--configfile", str(REPO / "conf/vox1.yaml"), "--config", "trials=[vox1_O]"]
    run = subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert [p.name for p in (tmp_path / "data" / "vox1_test" / "trials").iterdir()] == ["vox1_O"]
    assert not (tmp_path / "data" / "vox1_all").exists()
    log = (tmp_path / "logs" / "prepare" / "vox1.log").read_text()
    assert log.count("ignored") == 5 and "list_test_all2.txt (vox1_E): not among the configured trial lists (vox1_O)" in log


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
