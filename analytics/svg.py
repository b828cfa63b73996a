"""Plots as inline SVG: a bar chart and a line chart, labelled for screen readers, no script needed."""

from __future__ import annotations

from html import escape

W, H, PAD_L, PAD_B, PAD_T = 640, 180, 44, 28, 12


def _frame(title: str, desc: str, body: list[str], ymax: float, fmt) -> str:
    ticks = []
    for frac in (0, 0.5, 1):
        y = H - PAD_B - frac * (H - PAD_B - PAD_T)
        ticks.append(f'<line x1="{PAD_L}" x2="{W}" y1="{y:.1f}" y2="{y:.1f}" class="grid"/>'
                     f'<text x="{PAD_L - 6}" y="{y + 4:.1f}" text-anchor="end">{escape(fmt(ymax * frac))}</text>')
    return (f'<svg viewBox="0 0 {W} {H}" role="img" aria-label="{escape(title)}" class="plot" '
            f'preserveAspectRatio="xMinYMin meet"><title>{escape(title)}</title><desc>{escape(desc)}</desc>'
            + "".join(ticks) + "".join(body) + "</svg>")


def _x_labels(labels: list[str], xs: list[float]) -> list[str]:
    step = max(1, len(labels) // 8)  # at most ~8 labels under the axis
    return [f'<text x="{x:.1f}" y="{H - 8}" text-anchor="middle">{escape(lab[5:] if len(lab) == 10 else lab)}</text>'
            for i, (lab, x) in enumerate(zip(labels, xs)) if i % step == 0 or i == len(labels) - 1]


def bar_chart(title: str, labels: list[str], values: list[float], fmt=lambda v: f"{v:.0f}") -> str:
    """Bars, one per label (e.g. searches per day)."""
    ymax = max(values, default=0) or 1
    slot = (W - PAD_L) / max(1, len(values))
    xs = [PAD_L + slot * (i + 0.5) for i in range(len(values))]
    width = min(slot * 0.7, 40.0)  # one day alone is a bar, not a wall
    body = []
    for lab, v, x in zip(labels, values, xs):
        h = v / ymax * (H - PAD_B - PAD_T)
        body.append(f'<rect x="{x - width / 2:.1f}" y="{H - PAD_B - h:.1f}" width="{width:.1f}" '
                    f'height="{h:.1f}" class="bar"><title>{escape(lab)}: {escape(fmt(v))}</title></rect>')
    desc = "; ".join(f"{lab}: {fmt(v)}" for lab, v in zip(labels, values))
    return _frame(title, desc, body + _x_labels(labels, xs), ymax, fmt)


def line_chart(title: str, labels: list[str], series: dict[str, list[float | None]],
               fmt=lambda v: f"{v:.2f}") -> str:
    """One line per series (e.g. click-through rate and MRR per day); gaps where a value is None."""
    ymax = max((v for vs in series.values() for v in vs if v is not None), default=0) or 1
    n = max(1, len(labels))
    xs = [PAD_L + (W - PAD_L) * (i + 0.5) / n for i in range(len(labels))]
    body = []
    for k, (name, values) in enumerate(series.items()):
        pts = [f"{x:.1f},{H - PAD_B - v / ymax * (H - PAD_B - PAD_T):.1f}" for x, v in zip(xs, values) if v is not None]
        if pts:
            body.append(f'<polyline points="{" ".join(pts)}" class="line line-{k}"/>')
            body += [f'<circle cx="{p.split(",")[0]}" cy="{p.split(",")[1]}" r="3" class="dot line-{k}"/>' for p in pts]
        body.append(f'<text x="{PAD_L + 8 + 150 * k}" y="{PAD_T + 2}" class="legend line-{k}">{escape(name)}</text>')
    desc = "; ".join(f"{name}: " + ", ".join(f"{lab} {fmt(v) if v is not None else 'none'}"
                                            for lab, v in zip(labels, values)) for name, values in series.items())
    return _frame(title, desc, body + _x_labels(labels, xs), ymax, fmt)
