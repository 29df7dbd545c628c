"""The drift part of the method comparison: a per-method table and a methods x layers figure.

``spectral-compare --drift`` calls :func:`drift_section` and :func:`plot_drift_map` with the
runs it tabulates (label, seed, exp dir). Each run's ``exp/<system>/drift/drift.json`` (the
drift stage, :mod:`spectral.drift`) is read; the comparison's figures are over the adapter's
*target* matrices of every run (for ``full`` too, whose drift covers every Linear), so every
method is measured on the same matrices:

* the markdown section: per method (in the order given), the mean over target matrices and
  seeds of ||ΔW||/||W||, the four shares of ||ΔW||² (top-k block, top-k rows only, top-k
  columns only, outside both), the mean cos² overlap of the top-k left and right subspaces,
  the change of the top-k and of the remaining singular values, and the rank of ΔW; a method
  whose runs changed no matrix (``frozen``) reads "no update";
* ``comparison_drift.png``: methods x layers, each cell the share of ||ΔW||² outside the
  top-k space (outside both span(U_k) and span(V_k)), mean over the layer's target matrices
  and the seeds; grey where nothing was updated.

Reads only drift.json files; a missing or malformed one is an error naming it.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from spectral.atomic import atomic_path
from spectral.drift import read_drift

#: (json key, column heading, digits) of the table, after method, k and seeds.
COLUMNS: tuple[tuple[str, str, int], ...] = (
    ("rel_update", "‖ΔW‖/‖W‖", 4),
    ("share_block", "top-k block", 3),
    ("share_left", "top-k rows only", 3),
    ("share_right", "top-k columns only", 3),
    ("share_outside", "outside both", 3),
    ("cos2_mean_left", "cos² U_k", 3),
    ("cos2_mean_right", "cos² V_k", 3),
    ("angle_max_left_deg", "largest angle U_k (°)", 1),
    ("sv_change_top", "Δs top-k", 4),
    ("sv_change_rest", "Δs rest", 4),
    ("delta_rank", "rank ΔW", 1),
)


def load_drifts(runs: Sequence[tuple[str, int, str | Path]]) -> list[tuple[str, int, dict]]:
    """(label, seed, drift.json document) of every (label, seed, exp_dir) run."""
    return [(label, seed, read_drift(Path(exp_dir) / "drift" / "drift.json")) for label, seed, exp_dir in runs]


def _targets(doc: dict) -> list[dict]:
    rows = list(doc["matrices"].values())
    return [r for r in rows if r.get("target")] or rows


def _labels(drifts: Sequence[tuple[str, int, dict]]) -> list[str]:
    seen: list[str] = []
    for label, _, _ in drifts:
        if label not in seen:
            seen.append(label)
    return seen


def method_summary(drifts: Sequence[tuple[str, int, dict]]) -> dict[str, dict]:
    """Per label: k (sorted distinct), seeds, whether anything changed, and the mean of every column.

    Means run over every target matrix of every seed; the shares over the matrices that changed.
    """
    out: dict[str, dict] = {}
    for label in _labels(drifts):
        docs = [(seed, doc) for lab, seed, doc in drifts if lab == label]
        rows = [r for _, doc in docs for r in _targets(doc)]
        moved = [r for r in rows if r["updated"]]
        entry = {"k": sorted({int(doc["top_k"]) for _, doc in docs}), "seeds": [s for s, _ in docs],
                 "updated": bool(moved), "matrices": len(rows)}
        for key, _, _ in COLUMNS:
            pool = moved if key.startswith("share_") else rows
            entry[key] = sum(float(r[key]) for r in pool) / len(pool) if pool else 0.0
        out[label] = entry
    return out


def drift_section(drifts: Sequence[tuple[str, int, dict]]) -> str:
    """The markdown section of comparison.md: one row per method (see the module docstring)."""
    summary = method_summary(drifts)
    out = [
        "## Spectral drift: where each method's update went",
        "",
        "Mean over the adapter's target matrices (every layer) and the seeds, against the pre-trained "
        "top-k singular vectors U_k, V_k (drift stage, `exp/<system>/drift/`). Shares of ‖ΔW‖²: in the "
        "top-k block U_kᵀΔW V_k, in the top-k rows only, in the top-k columns only, outside both. "
        "cos²: mean squared cosine of the principal angles between the pre-trained and the fine-tuned "
        "top-k subspaces (1 = unchanged). Δs: relative change of the top-k and of the other singular "
        "values. Figure: `comparison_drift.png` (share outside both, methods × layers).",
        "",
    ]
    head = ["method", "k", "seeds"] + [h for _, h, _ in COLUMNS]
    out += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for label, s in summary.items():
        row = [label, "/".join(str(k) for k in s["k"]), ",".join(str(x) for x in s["seeds"])]
        for key, _, digits in COLUMNS:
            if not s["updated"] and (key.startswith("share_") or key in ("rel_update", "delta_rank")):
                row.append("no update")
            else:
                row.append(f"{s[key]:.{digits}f}")
        out.append("| " + " | ".join(row) + " |")
    return "\n".join(out) + "\n"


def layer_map(drifts: Sequence[tuple[str, int, dict]]) -> tuple[list[str], list[int | None], list[list[float | None]]]:
    """(labels, layers, values): share outside both per label and layer; None where nothing changed."""
    labels = _labels(drifts)
    layers = sorted({r["layer"] for _, _, doc in drifts for r in _targets(doc)}, key=lambda x: (x is None, x or 0))
    values: list[list[float | None]] = []
    for label in labels:
        line = []
        for layer in layers:
            pool = [r["share_outside"] for lab, _, doc in drifts if lab == label
                    for r in _targets(doc) if r["layer"] == layer and r["updated"]]
            line.append(sum(pool) / len(pool) if pool else None)
        values.append(line)
    return labels, layers, values


def plot_drift_map(drifts: Sequence[tuple[str, int, dict]], path: str | Path, title: str = "") -> None:
    """comparison_drift.png: methods x layers coloured by the share of ||ΔW||² outside the top-k space."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    labels, layers, values = layer_map(drifts)
    grid = np.array([[np.nan if v is None else v for v in line] for line in values], dtype=float)
    fig, ax = plt.subplots(figsize=(max(5.0, 0.7 * len(layers) + 3), max(3.0, 0.45 * len(labels) + 1.5)))
    cmap = plt.get_cmap("magma_r").with_extremes(bad="lightgrey")
    image = ax.imshow(np.ma.masked_invalid(grid), cmap=cmap, vmin=0.0, vmax=1.0, aspect="auto")
    for i, line in enumerate(values):
        for j, v in enumerate(line):
            text = "no update" if v is None else f"{v:.2f}"
            ax.text(j, i, text, ha="center", va="center", fontsize=7,
                    color="white" if v is not None and v > 0.6 else "black")
    ax.set_xticks(range(len(layers)), [str(x) if x is not None else "-" for x in layers])
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("layer")
    fig.colorbar(image, ax=ax, label="share outside the top-k space")
    ax.set_title(title or "Where the update went", fontsize=9)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=120, format="png")
    plt.close(fig)
