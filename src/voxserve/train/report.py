"""Files a training run leaves beside its checkpoint: the loss history as CSV and an SVG curve.

Plain text only (no plotting library): the GPU machine has none to spare, and an SVG
opens in any browser. Each run rewrites both from the checkpoint's whole history, so
the curve spans every resumed run.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Sequence
from pathlib import Path

CURVES = ("total", "mel", "duration", "pitch", "energy", "align")
"""Loss columns drawn, in this order (train lines solid, eval points as dots)."""
_COLORS = ("#000000", "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd")


def history_csv(history: Sequence[dict[str, float]]) -> str:
    """The history rows as CSV (union of columns; eval rows have ``eval`` = 1)."""
    columns: list[str] = []
    for row in history:
        columns += [k for k in row if k not in columns]
    out = io.StringIO()
    w = csv.DictWriter(out, fieldnames=columns, lineterminator="\n")
    w.writeheader()
    for row in history:
        w.writerow(row)
    return out.getvalue()


def curve_svg(history: Sequence[dict[str, float]], width: int = 720, height: int = 400) -> str:
    """A log-scale loss-versus-step chart of :data:`CURVES` (train lines, eval dots)."""
    pad = 50
    points = [(r["step"], r[k]) for r in history for k in CURVES if k in r and r[k] > 0]
    if not points:
        return f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}"></svg>\n'
    x_lo, x_hi = min(p[0] for p in points), max(p[0] for p in points)
    y_lo, y_hi = math.log10(min(p[1] for p in points)), math.log10(max(p[1] for p in points))
    x_hi, y_hi = max(x_hi, x_lo + 1), max(y_hi, y_lo + 1e-3)

    def xy(step: float, value: float) -> tuple[float, float]:
        x = pad + (step - x_lo) / (x_hi - x_lo) * (width - 2 * pad)
        y = height - pad - (math.log10(value) - y_lo) / (y_hi - y_lo) * (height - 2 * pad)
        return round(x, 1), round(y, 1)

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-size="11">',
        f'<rect width="{width}" height="{height}" fill="white"/>',
        f'<text x="{pad}" y="20">loss (log scale) vs step; lines: train, dots: eval</text>',
        f'<text x="{pad}" y="{height - 15}">step {x_lo:.0f}</text>',
        f'<text x="{width - pad - 60}" y="{height - 15}">step {x_hi:.0f}</text>',
        f'<text x="5" y="{pad}">{10**y_hi:.3g}</text>',
        f'<text x="5" y="{height - pad}">{10**y_lo:.3g}</text>',
    ]
    for i, (key, color) in enumerate(zip(CURVES, _COLORS, strict=True)):
        train = [xy(r["step"], r[key]) for r in history if key in r and r[key] > 0 and not r.get("eval")]
        evals = [xy(r["step"], r[key]) for r in history if key in r and r[key] > 0 and r.get("eval")]
        if len(train) > 1:
            line = " ".join(f"{x},{y}" for x, y in train)
            parts.append(f'<polyline fill="none" stroke="{color}" stroke-width="1.5" points="{line}"/>')
        parts += [f'<circle cx="{x}" cy="{y}" r="3" fill="{color}"/>' for x, y in evals]
        parts.append(f'<text x="{width - pad - 60}" y="{40 + 14 * i}" fill="{color}">{key}</text>')
    parts.append("</svg>\n")
    return "\n".join(parts)


def write_run_files(out_dir: Path, history: Sequence[dict[str, float]]) -> list[Path]:
    """Write ``history.csv`` and ``curve.svg`` into ``out_dir``; returns their paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / "history.csv", out_dir / "curve.svg"]
    paths[0].write_text(history_csv(history), "utf-8")
    paths[1].write_text(curve_svg(history), "utf-8")
    return paths
