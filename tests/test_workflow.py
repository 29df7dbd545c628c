"""The Snakemake workflow on the tiny embedded corpus: it runs, reruns only what changed,
and every shipped config dry-runs."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

TINY = """\
corpus: {pretrain_root: corpus/embedded/pretrain}  # pre-trained here, not the shipped backbone
model: {path: null}
embedded: {size: tiny, seed: 7}
features: {nj: 2}
backend: {channels: 32}
pretrain: {epochs: 1, steps_per_epoch: 4, batch_size: 8, checkpoint_every: 2}
finetune: {epochs: 1, steps_per_epoch: 4, batch_size: 8, checkpoint_every: 2, dev_speakers: 0}
compare: {lr_grid: []}
"""


def snakemake(workdir: Path, env, *args: str, override: str = "") -> subprocess.CompletedProcess:
    configs = [str(workdir / "tiny.yaml")]
    if override:
        (workdir / "override.yaml").write_text(override)
        configs.append(str(workdir / "override.yaml"))
    cmd = [
        "snakemake", *args, "--snakefile", str(REPO / "Snakefile"), "--directory", str(workdir),
        "--configfile", *configs,  # last: it takes every word up to the next option
    ]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=1800)


def planned_jobs(output: str) -> dict[str, int]:
    """The 'Job stats' table of a dry run: rule -> number of jobs."""
    block = output.split("Job stats:", 1)[1].split("\n\n", 1)[0]
    rows = (re.fullmatch(r"(\w+)\s+(\d+)", line.strip()) for line in block.splitlines())
    return {m.group(1): int(m.group(2)) for m in rows if m and m.group(1) != "total"}


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    import os
    import sys

    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}", LC_ALL="C")
    work = tmp_path_factory.mktemp("wf")
    (work / "tiny.yaml").write_text(TINY)
    run = snakemake(work, env, "--cores", "2", "results/vox1_eer.txt")
    assert run.returncode == 0, run.stderr[-3000:]
    return work, env


@pytest.mark.slow
def test_tiny_workflow_builds_corpus_data_dirs_trials_and_features(tiny_run):
    work, _ = tiny_run
    for s in ("vox1_dev", "vox1_test", "pretrain"):
        for f in ("wav.scp", "utt2spk", "spk2utt", "feats.scp", "cuts.jsonl.gz"):
            assert (work / "data" / s / f).stat().st_size > 0, (s, f)
    for t in ("vox1_O", "vox1_H"):
        lines = (work / "data" / "vox1_test" / "trials" / t).read_text().splitlines()
        assert lines and all(line.split()[2] in ("target", "nontarget") for line in lines)
    assert (work / "logs" / "corpus.log").is_file()
    assert (work / "logs" / "features" / "vox1_dev.log").is_file()
    assert (work / "benchmarks" / "corpus.tsv").is_file()


@pytest.mark.slow
def test_tiny_workflow_ends_in_kaldi_metrics_for_every_trial_list(tiny_run):
    work, _ = tiny_run
    text = (work / "results" / "vox1_eer.txt").read_text()
    blocks = text.strip().split("\n\n")
    assert [b.splitlines()[4] for b in blocks] == ["trials: vox1_O", "trials: vox1_H"]
    for block in blocks:
        lines = block.splitlines()
        assert re.fullmatch(r"Equal error rate is [0-9.]+%, at threshold -?[0-9.]+", lines[0])
        assert lines[1].startswith("minDCF is ") and "p-target=0.01," in lines[1]
        assert lines[2].startswith("minDCF is ") and "p-target=0.001," in lines[2]
        assert lines[3].startswith("system: builtin_spectralft_")
    system = blocks[0].splitlines()[3].split()[1]
    for stage in ("final.pt", "train_log.tsv", "embeddings/vox1_test/xvector.scp", "scores/vox1_O.score",
                  "scores/vox1_O.metrics.json", "scores/vox1_O.det.png"):
        assert (work / "exp" / system / stage).stat().st_size > 0, stage
    assert (work / "exp" / "pretrain" / "builtin" / "final.pt").is_file()
    assert list((work / "exp" / "svd" / "builtin").glob("k*_b*/spectra.png"))


@pytest.mark.slow
def test_changing_an_adapter_setting_reruns_finetune_and_what_follows_only(tiny_run):
    work, env = tiny_run
    dry = snakemake(work, env, "-n", "results/vox1_eer.txt", override="adapter:\n  rank: 2\n")
    out = dry.stdout + dry.stderr
    assert dry.returncode == 0, out
    assert planned_jobs(out) == {"finetune": 1, "embed": 2, "score": 2, "metrics": 1, "report": 1}, out


@pytest.mark.slow
def test_nothing_reruns_when_nothing_changed(tiny_run):
    work, env = tiny_run
    dry = snakemake(work, env, "-n", "results/vox1_eer.txt")
    assert dry.returncode == 0
    assert "Nothing to be done" in dry.stdout + dry.stderr


@pytest.mark.slow
def test_changing_a_feature_option_reruns_features_only(tiny_run):
    work, env = tiny_run
    # (num_mel_bins alone is refused since it must equal model.builtin.n_mels: the analysis window is
    # a feature option no other setting depends on)
    dry = snakemake(work, env, "-n", "features", override="features:\n  frame_length_ms: 30.0\n")
    out = dry.stdout + dry.stderr
    assert dry.returncode == 0, out
    assert planned_jobs(out) == {"fbank": 3, "features": 1}, out
    refused = snakemake(work, env, "-n", "features", override="features:\n  num_mel_bins: 40\n")
    assert refused.returncode != 0 and "must equal model.builtin.n_mels" in refused.stdout + refused.stderr


@pytest.mark.slow
def test_changing_the_corpus_seed_reruns_everything(tiny_run):
    work, env = tiny_run
    dry = snakemake(work, env, "-n", "features", override="embedded:\n  seed: 8\n")
    out = dry.stdout + dry.stderr
    assert dry.returncode == 0, out
    for rule in ("corpus", "prepare_target", "prepare_pretrain", "fbank"):
        assert f"rule {rule}:" in out


COMPARE = """\
compare:
  seeds: [1, 2]
  methods:
    - {label: frozen, adapter: {method: frozen}}
    - {label: spectralft, adapter: {rank: 4}}
"""


@pytest.mark.slow
def test_comparison_trains_each_method_per_seed_on_the_shared_backbone_and_tabulates_them(tiny_run):
    work, env = tiny_run
    dry = snakemake(work, env, "-n", "results/comparison.md", override=COMPARE)
    out = dry.stdout + dry.stderr
    assert dry.returncode == 0, out
    # spectralft seed 1 is the main job's system, already built; nothing before fine-tuning reruns;
    # the drift of every run (frozen at the builtin default k = 64) reuses the main job's k64 factors
    assert planned_jobs(out) == {"finetune": 3, "embed": 6, "score": 6, "metrics": 3, "drift": 4, "compare": 1}, out
    run = snakemake(work, env, "--cores", "2", "results/comparison.md", override=COMPARE)
    assert run.returncode == 0, run.stderr[-3000:]
    md = (work / "results" / "comparison.md").read_text()
    summary = [line for line in md.split("## Every run")[0].splitlines() if line.startswith("| ")]
    assert [row.split(" | ")[0] for row in summary[1:]] == ["| frozen", "| spectralft"]
    assert all(row.split(" | ")[1] == "1,2" for row in summary[1:])
    tsv = (work / "results" / "comparison.tsv").read_text().splitlines()
    assert len(tsv) == 1 + 4 and len({row.split("\t")[2] for row in tsv[1:]}) == 4
    assert (work / "results" / "comparison.png").stat().st_size > 0
    # the drift section: frozen changed nothing, spectralft moved every q/k matrix
    drift = [line for line in md.split("## Spectral drift")[1].splitlines() if line.startswith("| ")]
    assert [row.split(" | ")[0] for row in drift[1:]] == ["| frozen", "| spectralft"]
    assert "no update" in drift[1] and "no update" not in drift[2]
    assert (work / "results" / "comparison_drift.png").stat().st_size > 0
    for system in {row.split("\t")[2] for row in tsv[1:]}:
        assert (work / "exp" / system / "drift" / "drift.json").stat().st_size > 0


@pytest.mark.slow
def test_ablation_scores_the_system_with_its_qk_zeroed_and_reverted_beside_it(tiny_run):
    work, env = tiny_run
    dry = snakemake(work, env, "-n", "results/ablation.md")
    out = dry.stdout + dry.stderr
    assert dry.returncode == 0, out
    # nothing of the main job reruns: two ablated copies, each embedded, scored and compared
    assert planned_jobs(out) == {"ablate": 2, "embed": 4, "score": 4, "metrics": 2, "ablation": 2,
                                 "ablation_report": 1}, out
    run = snakemake(work, env, "--cores", "2", "results/ablation.md")
    assert run.returncode == 0, run.stderr[-3000:]
    system = (work / "results" / "vox1_eer.txt").read_text().splitlines()[3].split()[1]
    md = (work / "results" / "ablation.md").read_text()
    assert f"Ablation (zero) of {system}" in md and f"Ablation (revert) of {system}" in md
    for mode in ("zero", "revert"):
        rows = [r.split("\t") for r in (work / "exp" / system / "ablate" / mode / "comparison_intervals.tsv")
                .read_text().splitlines()[1:]]
        assert {(r[0], r[1], r[2]) for r in rows} == {(t, mode, "trained") for t in ("vox1_O", "vox1_H")}
        lo, hi = float(rows[0][4]), float(rows[0][5])
        assert lo <= float(rows[0][3]) <= hi
        assert (work / "exp" / system / "ablate" / mode / "scores" / "vox1_O.metrics.json").is_file()


def test_unknown_config_key_stops_before_any_work(tmp_path, venv_env):
    (tmp_path / "tiny.yaml").write_text(TINY + "featurs:\n  nj: 1\n")
    run = snakemake(tmp_path, venv_env, "-n", "features")
    assert run.returncode != 0
    assert "'featurs' was unexpected" in run.stdout + run.stderr
    assert not (tmp_path / "corpus").exists()


def _reads_local_corpus(path: Path) -> bool:
    import yaml

    return (yaml.safe_load(path.read_text()).get("corpus") or {}).get("name", "embedded") != "embedded"


# configs of real corpora (conf/vox1.yaml, conf/cnceleb1.yaml) need the corpus on disk: they are
# dry-run on fabricated copies of their layouts in tests/test_real_configs.py
SHIPPED = sorted(p for p in (REPO / "conf").glob("*.yaml") if p.name != "config.schema.yaml" and not _reads_local_corpus(p))


@pytest.mark.parametrize("config", SHIPPED, ids=lambda p: p.name)
def test_every_shipped_config_dry_runs(config, tmp_path, venv_env):
    (tmp_path / "tiny.yaml").write_text(config.read_text())
    run = snakemake(tmp_path, venv_env, "-n", "features")
    assert run.returncode == 0, run.stderr[-2000:]


LINTED = [["config.yaml"], ["cnceleb1.yaml"], ["vox1.yaml", "presets/paper.yaml"]]


@pytest.mark.parametrize("configs", LINTED, ids=lambda c: "+".join(c))
def test_snakemake_lint_finds_nothing(configs, tmp_path, venv_env):
    # lint reads the rules of the configured corpus; it needs no corpus on disk
    cmd = ["snakemake", "--lint", "--snakefile", str(REPO / "Snakefile"), "--directory", str(tmp_path),
           "--configfile", *[str(REPO / "conf" / c) for c in configs]]
    run = subprocess.run(cmd, env=venv_env, capture_output=True, text=True, timeout=600)
    out = run.stdout + run.stderr
    assert run.returncode == 0 and "Lints for" not in out, out[-3000:]
    assert "your workflow is in a good condition" in out


@pytest.mark.slow
def test_workflow_killed_during_finetune_resumes_from_last_pt(tiny_run, tmp_path):
    import os
    import shutil
    import signal
    import time

    import torch

    src, env = tiny_run
    longer = "finetune: {epochs: 2, steps_per_epoch: 12, batch_size: 8, checkpoint_every: 2}\n"
    ref, work = tmp_path / "uninterrupted", tmp_path / "wf"
    shutil.copytree(src, ref, symlinks=True)
    shutil.copytree(src, work, symlinks=True)
    done = snakemake(ref, env, "--cores", "2", "results/vox1_eer.txt", override=longer)
    assert done.returncode == 0, done.stderr[-3000:]
    system = (ref / "results" / "vox1_eer.txt").read_text().splitlines()[3].split()[1]
    reference = torch.load(ref / "exp" / system / "final.pt", weights_only=True)["model"]
    exp = work / "exp" / system

    (work / "override.yaml").write_text(longer)
    cmd = ["snakemake", "--cores", "2", "results/vox1_eer.txt", "--snakefile", str(REPO / "Snakefile"),
           "--directory", str(work), "--configfile", str(work / "tiny.yaml"), str(work / "override.yaml")]
    bg_log = open(tmp_path / "killed_run.log", "w")
    proc = subprocess.Popen(cmd, env=env, stdout=bg_log, stderr=subprocess.STDOUT, start_new_session=True)
    last = exp / "checkpoints" / "last.pt"
    deadline = time.monotonic() + 600
    while not last.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    assert proc.poll() is None, (tmp_path / "killed_run.log").read_text()[-3000:]
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (exp / "final.pt").exists()

    # a killed Snakemake leaves its lock: --unlock, then rerun (README, "Interrupted runs")
    assert snakemake(work, env, "--unlock", override=longer).returncode == 0
    again = snakemake(work, env, "--cores", "2", "--rerun-incomplete", "results/vox1_eer.txt", override=longer)
    out = again.stdout + again.stderr
    assert again.returncode == 0, out[-3000:]
    assert planned_jobs(out) == {"finetune": 1, "embed": 2, "score": 2, "metrics": 1, "report": 1}, out
    assert "resuming from" in (work / "logs" / "finetune" / f"{system}.log").read_text()
    resumed = torch.load(exp / "final.pt", weights_only=True)["model"]
    assert all(torch.equal(resumed[k], reference[k]) for k in reference)
