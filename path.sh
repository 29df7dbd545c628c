# Sourced by every shell stage and by the README's commands:
# the project's venv first on PATH, C collation (Kaldi sorts with LC_ALL=C), unbuffered Python.
_spectral_root="$(cd "$(dirname "${BASH_SOURCE[0]:-$0}")" && pwd)"
export PATH="$_spectral_root/.venv/bin:$PATH"
export LC_ALL=C
export PYTHONUNBUFFERED=1
export HF_HUB_OFFLINE=1
export TRANSFORMERS_OFFLINE=1
unset _spectral_root
