#!/usr/bin/env bash
# Set up (or refresh) the virtual environment in .venv. Idempotent: a second run
# installs nothing unless pyproject.toml changed.
#
#   ./setup.sh          runtime dependencies
#   ./setup.sh --test   plus the test-only ones (pytest, hypothesis, kaldi-native-fbank, peft, ...)
#
# torch is pinned to the CPU wheel (torch==2.13.0) unless a torch is already in the
# venv: a GPU user installs theirs first, e.g.
#   python3 -m venv .venv && .venv/bin/pip install torch --index-url <your CUDA index>
# and then runs this script, which keeps it.
set -euo pipefail
cd "$(dirname "$0")"
extras=""
[ "${1:-}" = "--test" ] && extras="[test]"
[ -x .venv/bin/python ] || python3 -m venv .venv
stamp=".venv/.spectral-installed${extras:+-test}"
if [ -f "$stamp" ] && [ "$stamp" -nt pyproject.toml ]; then
  exit 0
fi
.venv/bin/python -m pip install -q --upgrade pip
if ! .venv/bin/python -c "import torch" 2>/dev/null; then
  .venv/bin/python -m pip install -q "torch==2.13.0"
fi
.venv/bin/python -m pip install -q -e ".${extras}"
touch "$stamp"
echo "setup.sh: environment ready in .venv${extras:+ (with test extras)}"
