"""Scoring stage: cosine scoring of trial lists and Kaldi-compatible metrics.

Modules:

- :mod:`spectral.scoring.textfiles` reads the plain-text contracts between stages
  (trials, score files, ``spk2utt``/``utt2spk``), refusing bad lines by file and line.
- :mod:`spectral.scoring.metrics` computes EER exactly as Kaldi's ``compute-eer`` and
  minDCF exactly as Kaldi's ``sid/compute_min_dcf.py``, vectorised with numpy
  (``spectral-compute-eer``, ``spectral-compute-min-dcf``).
- :mod:`spectral.scoring.score` scores a trials file with cosine similarity, optional
  mean subtraction, AS-norm and enrollment averaging (``spectral-score``).
- :mod:`spectral.scoring.embeddings` reads kaldiio embeddings and writes per-speaker means
  (``spk_xvector.{ark,scp}``), used by the embed stage for cohorts.
- :mod:`spectral.logutil` (shared by every command) sends log messages and errors to stderr.
- :mod:`spectral.scoring.report` writes the metrics json, the DET plot and
  ``results/vox1_eer.txt`` (``spectral-report``).
"""
