#!/bin/bash
# Run by Snakemake inside the new conda env (--use-conda): install this project without
# touching the dependencies spectral.yaml already installed. The Snakefile sets SPECTRAL_ROOT.
set -euo pipefail
: "${SPECTRAL_ROOT:?SPECTRAL_ROOT (the repository root) is not set; run through the Snakefile}"
python -m pip install --no-deps --no-build-isolation -e "$SPECTRAL_ROOT"
