"""A shipped builtin backbone: a pretrain stage's ``final.pt`` with its checksum and recipe.

Real users start from a downloaded WavLM rather than pre-training one; the embedded default
starts the same way from a backbone the project ships (``model.path`` names its directory),
made by the project's own pretrain stage. A shipped directory holds::

    final.pt      the pretrain stage's final.pt, byte for byte (read with weights_only=True)
    SHA256SUMS    "<sha256>  final.pt", as ``sha256sum`` writes it (``sha256sum -c`` checks it)
    recipe.yaml   how it was made: the config overlay (``config``), the command that rebuilds it,
                  the commit of the code that made it, and the sha256 of the weights

``spectral-backbone ship`` writes such a directory from a pretrain stage's output
(``local/make_backbone.sh`` runs both); ``spectral-backbone install`` is the workflow's
``install_backbone`` rule: it checks the checksum and the backbone's shape against the config
and copies ``final.pt`` to ``exp/pretrain/builtin/final.pt``, where every later stage reads
the pre-trained backbone whether it was shipped or pre-trained here. A file that does not
match its checksum, or a recipe that names other weights, is refused naming the file.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import shutil
import sys
from pathlib import Path
from typing import Any

import yaml

from spectral.atomic import atomic_path, atomic_write_text
from spectral.errors import InputError
from spectral.logutil import log_command, run_main

log = logging.getLogger("spectral.models.shipped")

WEIGHTS = "final.pt"
SUMS = "SHA256SUMS"
RECIPE = "recipe.yaml"
#: The keys a recipe.yaml must hold.
RECIPE_KEYS = ("sha256", "command", "commit", "tree_clean", "config")


def sha256_of(path: str | Path) -> str:
    """The sha256 of the file ``path``, as lowercase hex."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def read_sums(shipped_dir: str | Path) -> str:
    """The sha256 that ``<shipped_dir>/SHA256SUMS`` records for ``final.pt``.

    Raises InputError naming the file (and line) when it is missing, malformed or names no final.pt.
    """
    path = Path(shipped_dir) / SUMS
    if not path.is_file():
        raise InputError(path, f"missing: a shipped backbone directory holds {WEIGHTS}, {SUMS} and {RECIPE}")
    digest = None
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split()
        if len(parts) != 2 or len(parts[0]) != 64 or any(c not in "0123456789abcdef" for c in parts[0]):
            raise InputError(path, f"expected '<64 hex digits>  <file>', got {line!r}", line=n)
        if parts[1].lstrip("*") == WEIGHTS:
            digest = parts[0]
    if digest is None:
        raise InputError(path, f"records no checksum for {WEIGHTS}")
    return digest


def read_recipe(shipped_dir: str | Path) -> dict[str, Any]:
    """``<shipped_dir>/recipe.yaml``, checked to hold :data:`RECIPE_KEYS` and the weights' sha256."""
    path = Path(shipped_dir) / RECIPE
    if not path.is_file():
        raise InputError(path, "missing: the recipe (config, command, commit) of the shipped backbone")
    try:
        recipe = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        line = getattr(getattr(err, "problem_mark", None), "line", None)
        raise InputError(path, f"not YAML ({getattr(err, 'problem', err)})", line=None if line is None else line + 1) from None
    missing = [k for k in RECIPE_KEYS if not isinstance(recipe, dict) or k not in recipe]
    if missing:
        raise InputError(path, f"misses {', '.join(missing)}")
    recorded = read_sums(shipped_dir)
    if recipe["sha256"] != recorded:
        raise InputError(path, f"names weights of sha256 {recipe['sha256']}, but {SUMS} records {recorded}")
    return recipe


def verify(shipped_dir: str | Path) -> str:
    """Check ``final.pt`` against ``SHA256SUMS`` and the recipe; return the sha256.

    Raises InputError naming the file that is missing or does not match.
    """
    shipped_dir = Path(shipped_dir)
    if not shipped_dir.is_dir():
        raise InputError(shipped_dir, "no such directory (model.path of a builtin backbone names a shipped backbone "
                                      "directory: final.pt, SHA256SUMS, recipe.yaml)")
    weights = shipped_dir / WEIGHTS
    if not weights.is_file():
        raise InputError(weights, "missing from the shipped backbone directory")
    expected = read_recipe(shipped_dir)["sha256"]  # the recipe's, checked equal to SHA256SUMS'
    actual = sha256_of(weights)
    if actual != expected:
        raise InputError(weights, f"sha256 is {actual}, but {shipped_dir / SUMS} records {expected}: the file is "
                                  "damaged or was replaced; restore it (git checkout) or rebuild it (local/make_backbone.sh)")
    return actual


def install(shipped_dir: str | Path, dest: str | Path, model: dict[str, Any] | None = None) -> str:
    """Verify ``shipped_dir`` and copy its ``final.pt`` to ``dest`` atomically; return its sha256.

    ``model`` (the config's ``model`` section) is checked against the backbone's recorded shape:
    a shipped backbone of another shape is refused naming both.
    """
    from spectral.models.config import BuiltinConfig
    from spectral.models.speaker import load_pretrained_builtin

    digest = verify(shipped_dir)
    weights = Path(shipped_dir) / WEIGHTS
    expected = BuiltinConfig.from_dict(model.get("builtin", {})) if model is not None else None
    load_pretrained_builtin(weights, expected)  # weights_only=True; refuses another shape
    with atomic_path(dest) as tmp:
        shutil.copyfile(weights, tmp)
    log.info("installed %s (sha256 %s) as %s", weights, digest, dest)
    return digest


def ship(final_pt: str | Path, out_dir: str | Path, recipe_config: str | Path, command: str, commit: str,
         tree_clean: bool) -> str:
    """Write a shipped backbone directory ``out_dir`` from a pretrain stage's ``final_pt``; return its sha256.

    ``recipe_config`` is the config overlay (a YAML file) the pretrain stage ran with, ``command``
    the command that rebuilds the directory, ``commit`` the code's commit and ``tree_clean`` whether
    the working tree had no uncommitted change then.
    """
    from spectral.models.speaker import load_pretrained_builtin

    load_pretrained_builtin(final_pt)  # a builtin pretrain stage's final.pt, readable with weights_only=True
    try:
        config = yaml.safe_load(Path(recipe_config).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as err:
        raise InputError(recipe_config, f"cannot read the recipe's config overlay ({err})") from None
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    with atomic_path(out_dir / WEIGHTS) as tmp:
        shutil.copyfile(final_pt, tmp)
    digest = sha256_of(out_dir / WEIGHTS)
    recipe = {"sha256": digest, "command": command, "commit": commit, "tree_clean": bool(tree_clean),
              "config": config}
    header = ("# The recipe of the shipped builtin backbone beside this file (spectral.models.shipped):\n"
              "# config is the overlay on conf/config.yaml the pretrain stage ran with; command rebuilds it.\n")
    atomic_write_text(out_dir / RECIPE, header + yaml.safe_dump(recipe, sort_keys=False, allow_unicode=True))
    atomic_write_text(out_dir / SUMS, f"{digest}  {WEIGHTS}\n")
    log.info("shipped %s as %s (sha256 %s)", final_pt, out_dir, digest)
    return digest


EXAMPLE = """examples:
  spectral-backbone install models/builtin exp/pretrain/builtin/final.pt --model-json '{"builtin": {}}'
  spectral-backbone ship work/backbone/exp/pretrain/builtin/final.pt models/builtin \\
      --recipe-config conf/presets/backbone.yaml --command "local/make_backbone.sh models/builtin" \\
      --commit "$(git rev-parse HEAD)"
  spectral-backbone check models/builtin

  Rebuild the shipped backbone from nothing with one command: local/make_backbone.sh models/builtin
"""


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``spectral-backbone``."""
    p = argparse.ArgumentParser(
        prog="spectral-backbone",
        description="Ship a pre-trained builtin backbone (final.pt + SHA256SUMS + recipe.yaml), check one, "
        "or install one where the pipeline reads it (exp/pretrain/builtin/final.pt).",
        epilog=EXAMPLE, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="action", required=True)
    i = sub.add_parser("install", help="check a shipped directory and copy its final.pt to DEST")
    i.add_argument("shipped_dir", help="the shipped backbone directory (model.path)")
    i.add_argument("dest", help="where the pipeline reads the pre-trained backbone (exp/pretrain/builtin/final.pt)")
    i.add_argument("--model-json", default=None, help="the config's model section as JSON: its builtin shape must match")
    c = sub.add_parser("check", help="check final.pt against SHA256SUMS and recipe.yaml")
    c.add_argument("shipped_dir")
    s = sub.add_parser("ship", help="write a shipped directory from a pretrain stage's final.pt")
    s.add_argument("final_pt", help="the pretrain stage's final.pt")
    s.add_argument("out_dir", help="the shipped backbone directory to write (e.g. models/builtin)")
    s.add_argument("--recipe-config", required=True, help="the config overlay the pretrain stage ran with (YAML)")
    s.add_argument("--command", required=True, help="the command that rebuilds the directory")
    s.add_argument("--commit", required=True, help="the commit of the code that made final.pt")
    s.add_argument("--dirty", action="store_true", help="the working tree had uncommitted changes")
    return p


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``spectral-backbone``."""
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser().parse_args(argv)
    log_command("spectral-backbone", argv)
    if args.action == "install":
        model = json.loads(args.model_json) if args.model_json else None
        return run_main("spectral-backbone", lambda: install(args.shipped_dir, args.dest, model))
    if args.action == "check":
        return run_main("spectral-backbone", lambda: print(verify(args.shipped_dir)))
    return run_main("spectral-backbone", lambda: ship(args.final_pt, args.out_dir, args.recipe_config, args.command,
                                                      args.commit, not args.dirty))


if __name__ == "__main__":
    sys.exit(main())
