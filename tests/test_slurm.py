"""The tiny workflow through conf/profiles/slurm on a real single-node SLURM cluster.

The fixture starts slurmctld, slurmd (and munged, if none runs) from Debian's packages
with tests/slurm/slurm.sh and stops exactly the daemons it started. CI installs the
packages first (.ci/run); elsewhere the test is skipped when they are missing.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

SLURM = REPO / "tests" / "slurm" / "slurm.sh"
TARGET = "results/vox1_eer.txt"
TINY = """\
corpus: {pretrain_root: corpus/embedded/pretrain}  # pre-trained here, not the shipped backbone
model: {path: null}
embedded: {size: tiny}
backend: {channels: 32}
pretrain: {epochs: 1, steps_per_epoch: 4, batch_size: 8}
finetune: {epochs: 1, steps_per_epoch: 4, batch_size: 8, dev_speakers: 0}
compare: {lr_grid: []}
"""


@pytest.fixture
def cluster(tmp_path):
    missing = [b for b in ("slurmctld", "slurmd", "sbatch", "squeue", "munged") if not shutil.which(b)]
    if missing:
        if os.environ.get("CI"):
            pytest.fail(f"SLURM binaries missing in CI: {missing} (.ci/run installs them)")
        pytest.skip(f"SLURM not installed here ({missing}); run tests/slurm/slurm.sh install")
    state = tmp_path / "slurm"
    up = subprocess.run([str(SLURM), "start", str(state)], capture_output=True, text=True, timeout=120)
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        yield state / "slurm.conf"
    finally:
        subprocess.run([str(SLURM), "stop", str(state)], timeout=60)


@pytest.mark.slow
def test_tiny_workflow_runs_as_slurm_jobs(cluster, tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    (work / "tiny.yaml").write_text(TINY)
    env = dict(os.environ, SLURM_CONF=str(cluster), LC_ALL="C",
               PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}")
    run = subprocess.run(
        ["snakemake", TARGET, "--snakefile", str(REPO / "Snakefile"), "--directory", str(work),
         "--profile", str(REPO / "conf" / "profiles" / "slurm"), f"--configfile={work / 'tiny.yaml'}"],
        env=env, capture_output=True, text=True, timeout=1500,
    )
    assert run.returncode == 0, run.stderr[-4000:]
    assert (work / "results" / "vox1_eer.txt").read_text().startswith("Equal error rate is ")
    # each rule ran as a SLURM job: sbatch wrote its log, and the controller knows the job
    job_logs = sorted((work / "logs" / "slurm").rglob("*.log"))
    rules = {p.relative_to(work / "logs" / "slurm").parts[0] for p in job_logs}
    assert {"rule_corpus", "rule_prepare_target", "rule_fbank", "rule_pretrain", "rule_svd",
            "rule_finetune", "rule_embed", "rule_score", "rule_metrics", "rule_report"} <= rules, rules
    for log in job_logs:
        job_id = re.fullmatch(r"(\d+)\.log", log.name).group(1)
        show = subprocess.run(["scontrol", "show", "job", job_id], env=env, capture_output=True, text=True)
        assert "JobState=COMPLETED" in show.stdout, show.stdout + show.stderr
