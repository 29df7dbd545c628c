"""The export stage and the Snakemake report in the tiny workflow.

The tiny embedded run (as tests/test_workflow.py's) is built up to results/vox1_eer.txt, the
configured system's export and a one-method comparison (its run is the main system, so only the
compare job is extra); then the exported extractor reproduces the embed stage's embeddings of
real test utterances, and `snakemake --report` gathers the DET curves, the spectra, the EER
file and the comparison into one HTML page.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

TINY = """\
embedded: {size: tiny, seed: 7}
features: {nj: 2}
backend: {channels: 32}
pretrain: {epochs: 1, steps_per_epoch: 4, batch_size: 8, checkpoint_every: 2}
finetune: {epochs: 1, steps_per_epoch: 4, batch_size: 8, checkpoint_every: 2, dev_speakers: 0}
compare:
  lr_grid: []
  seeds: [1]
  methods:
    - {label: spectralft}
"""


def snakemake(work: Path, env, *args: str) -> subprocess.CompletedProcess:
    cmd = ["snakemake", *args, "--snakefile", str(REPO / "Snakefile"), "--directory", str(work),
           "--configfile", str(work / "tiny.yaml")]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=1800)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}", LC_ALL="C")
    work = tmp_path_factory.mktemp("wfx")
    (work / "tiny.yaml").write_text(TINY)
    run = snakemake(work, env, "--cores", "2", "results/vox1_eer.txt", "exported", "results/comparison.md")
    assert run.returncode == 0, run.stderr[-3000:]
    return work, env


def _system(work: Path) -> str:
    (manifest,) = (work / "results" / "export").glob("*.json")
    return manifest.stem


@pytest.mark.slow
def test_export_stage_writes_extractor_and_peft_whose_embeddings_are_the_embed_stages(built, monkeypatch):
    import kaldiio
    import numpy as np
    import onnxruntime as ort

    from spectral.data.kaldi import read_table

    work, _ = built
    monkeypatch.chdir(work)  # the scp files hold paths relative to the workflow's directory
    system = _system(work)
    out = work / "exp" / system / "export"
    manifest = json.loads((out / "export.json").read_text())
    assert manifest["method"] == "spectralft" and manifest["backbone"] == "builtin"
    assert set(manifest["written"]) >= {"extractor.onnx", "extractor.pt", "peft/", "backend.safetensors"}
    assert "hf" in manifest["not_written"]  # the builtin backbone has no transformers form
    assert (out / "peft" / "adapter_config.json").is_file() and (work / "logs" / "export" / f"{system}.log").is_file()
    session = ort.InferenceSession(str(out / "extractor.onnx"), providers=["CPUExecutionProvider"])
    feats = read_table(work / "data" / "vox1_test" / "feats.scp")
    xvectors = dict(kaldiio.load_scp(str(work / "exp" / system / "embeddings" / "vox1_test" / "xvector.scp")))
    for utt in sorted(feats)[:5]:
        x = np.asarray(kaldiio.load_mat(feats[utt]), dtype=np.float32)
        np.testing.assert_allclose(session.run(None, {"feats": x[None]})[0][0], xvectors[utt], atol=1e-4)


@pytest.mark.slow
def test_snakemake_report_gathers_det_curves_spectra_results_and_the_comparison(built):
    work, env = built
    run = snakemake(work, env, "--report", "results/report.html", "results/comparison.md", "exported",
                    "results/vox1_eer.txt")
    assert run.returncode == 0, run.stderr[-3000:]
    html = (work / "results" / "report.html").read_text(errors="replace")
    for item in ("vox1_O.det.png", "vox1_H.det.png", "spectra.png", "comparison.md", "comparison.png",
                 "comparison.tsv", "comparison_intervals.tsv", "vox1_eer.txt", f"{_system(work)}.json"):
        assert item in html, item
    for category in ("Results", "Spectra", "Comparison", "Export"):
        assert category in html, category
    # a caption from steps/report/ made it in
    assert re.search(r"normal.deviate", html), "DET caption missing"
