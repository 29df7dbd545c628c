"""SpectralFT: spectral-aware low-rank adaptation for speaker verification.

The package holds all logic of the pipeline; the shell stages in ``local/`` and
``steps/`` and the Snakemake rules only call its command-line entry points.
"""

__version__ = "0.1.0"
