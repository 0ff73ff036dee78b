"""The timeline chart: matching items per topic per month, drawn as SVG on the server (no JavaScript)."""

from __future__ import annotations

from markupsafe import Markup, escape

# Drawing sizes in px, tuned for a chart that fits the results column (about 640 px) with one band per topic.
WIDTH = 640
LABEL = 110
BAND = 34
GAP = 8
AXIS = 22


def months_between(first: str, last: str) -> list[str]:
    """Every ``YYYY-MM`` from ``first`` to ``last``, both included."""
    y, m = int(first[:4]), int(first[5:7])
    ly, lm = int(last[:4]), int(last[5:7])
    out = []
    while (y, m) <= (ly, lm):
        out.append(f"{y:04d}-{m:02d}")
        y, m = (y + 1, 1) if m == 12 else (y, m + 1)
    return out


def timeline_svg(series: dict[str, list[tuple[str, int]]], labels: dict[str, str] | None = None) -> Markup:
    """One band of bars per topic over the same months; each bar's ``<title>`` gives its count."""
    labels = labels or {}
    series = {t: pts for t, pts in series.items() if pts}
    if not series:
        return Markup("")
    all_months = sorted({m for pts in series.values() for m, _ in pts})
    months = months_between(all_months[0], all_months[-1])
    top = max(n for pts in series.values() for _, n in pts) or 1
    plot = WIDTH - LABEL - 10
    step = plot / len(months)
    bar = max(1.0, step * 0.8)
    height = len(series) * (BAND + GAP) + AXIS
    desc = "; ".join(f"{labels.get(t, t)}: {sum(n for _, n in pts)} items" for t, pts in series.items())
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="timeline" viewBox="0 0 {WIDTH} {height}" '
        f'width="{WIDTH}" height="{height}" role="img" aria-labelledby="tl-title tl-desc">',
        '<title id="tl-title">Matching items per topic per month</title>',
        f'<desc id="tl-desc">{escape(desc)}</desc>',
    ]
    for row, (topic, pts) in enumerate(series.items()):
        y0 = row * (BAND + GAP)
        counts = dict(pts)
        parts.append(f'<g class="band" data-topic="{escape(topic)}">')
        parts.append(f'<text x="0" y="{y0 + BAND / 2 + 4:.1f}" class="tl-label">{escape(labels.get(topic, topic))}'
                     '</text>')
        parts.append(f'<line x1="{LABEL}" y1="{y0 + BAND}" x2="{WIDTH - 10}" y2="{y0 + BAND}" class="tl-base"/>')
        for i, month in enumerate(months):
            n = counts.get(month, 0)
            if not n:
                continue
            h = max(2.0, BAND * n / top)
            x = LABEL + i * step + (step - bar) / 2
            parts.append(f'<rect x="{x:.1f}" y="{y0 + BAND - h:.1f}" width="{bar:.1f}" height="{h:.1f}" '
                         f'class="tl-bar"><title>{escape(labels.get(topic, topic))}, {month}: {n}</title></rect>')
        parts.append("</g>")
    ticks = sorted({0, len(months) - 1, *range(0, len(months), max(1, len(months) // 6))})
    axis_y = len(series) * (BAND + GAP) + 14
    for i in ticks:
        x = LABEL + i * step + step / 2
        parts.append(f'<text x="{x:.1f}" y="{axis_y}" class="tl-tick" text-anchor="middle">{months[i]}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))
