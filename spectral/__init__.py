"""SpectralFT: spectral-aware low-rank adaptation for speaker verification.

The package holds all logic of the pipeline; the shell stages in ``local/`` and
``steps/`` and the Snakemake rules only call its command-line entry points.
"""

__version__ = "0.1.0"


def lazy_exports(package: str, where: dict[str, str]):
    """A package's ``__getattr__`` (PEP 562) that imports each name of ``where`` (name ->
    submodule) on first use, so importing one torch-free submodule imports no other."""
    import importlib

    def __getattr__(name: str):
        if name not in where:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(f"{package}.{where[name]}"), name)

    return __getattr__
