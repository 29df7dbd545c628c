"""No function in spectral/ is longer than 80 lines (the corpus synthesiser, spectral/corpora/embedded/,
is left out): a longer one is split into named pieces."""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
LIMIT = 80
EXEMPT_DIRS = ("spectral/corpora/embedded/",)
#: Functions over the limit, each with the reason it is not split yet; the list only shrinks.
KNOWN: dict[str, str] = {}


def long_functions(root: Path = REPO, limit: int = LIMIT) -> dict[str, int]:
    """'path:name' -> lines of every function (method, nested function) longer than ``limit``."""
    found = {}
    for path in sorted((root / "spectral").rglob("*.py")):
        rel = path.relative_to(root).as_posix()
        if rel.startswith(EXEMPT_DIRS):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lines = node.end_lineno - node.lineno + 1
                if lines > limit:
                    found[f"{rel}:{node.name}"] = lines
    return found


def test_no_function_in_spectral_is_longer_than_80_lines():
    too_long = {name: n for name, n in long_functions().items() if name not in KNOWN}
    assert not too_long, f"functions longer than {LIMIT} lines: {too_long}"


def test_the_known_long_functions_are_still_long():
    # an entry of KNOWN that was split is removed from it, so the exemption cannot outlive its reason
    assert set(KNOWN) <= set(long_functions())


if __name__ == "__main__":
    for name, n in sorted(long_functions().items(), key=lambda item: -item[1]):
        print(f"{n:4d}  {name}{'  (known: ' + KNOWN[name] + ')' if name in KNOWN else ''}")
