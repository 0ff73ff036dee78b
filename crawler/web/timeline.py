"""The timeline chart: matching items per topic per month, drawn as SVG on the server (no JavaScript)."""

from __future__ import annotations

from datetime import date

from markupsafe import Markup, escape

# Drawing sizes in px, tuned for a chart that fits the results column (about 640 px) with one band per topic.
WIDTH = 640
LABEL = 160
BAND = 34
GAP = 8
AXIS = 22


def period_label(start: date, bucket: str) -> str:
    return start.strftime("%Y-%m") if bucket == "month" else start.isoformat()


def timeline_svg(bucket: str, periods: list[date], series: dict[str, list[int]],
                 labels: dict[str, str] | None = None) -> Markup:
    """One band of bars per topic over the same periods (weeks or months); each bar's ``<title>`` gives its
    count, so the numbers are there for screen readers and on hover."""
    labels = labels or {}
    series = {t: counts for t, counts in series.items() if any(counts)}
    if not series or not periods:
        return Markup("")
    names = [period_label(p, bucket) for p in periods]
    top = max(max(counts) for counts in series.values()) or 1
    plot = WIDTH - LABEL - 10
    step = plot / len(periods)
    bar = max(1.0, step * 0.8)
    height = len(series) * (BAND + GAP) + AXIS
    per = "week" if bucket == "week" else "month"
    desc = "; ".join(f"{labels.get(t, t)}: {sum(c)} items" for t, c in series.items())
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="timeline" viewBox="0 0 {WIDTH} {height}" '
        f'width="{WIDTH}" height="{height}" role="img" aria-labelledby="tl-title tl-desc">',
        f'<title id="tl-title">Matching items per topic per {per}</title>',
        f'<desc id="tl-desc">{escape(desc)}</desc>',
    ]
    for row, (topic, counts) in enumerate(series.items()):
        y0 = row * (BAND + GAP)
        label = labels.get(topic, topic)
        parts.append(f'<g class="band" data-topic="{escape(topic)}">')
        parts.append(f'<text x="0" y="{y0 + BAND / 2 + 4:.1f}" class="tl-label">{escape(label)}</text>')
        parts.append(f'<line x1="{LABEL}" y1="{y0 + BAND}" x2="{WIDTH - 10}" y2="{y0 + BAND}" class="tl-base"/>')
        for i, n in enumerate(counts):
            if not n:
                continue
            h = max(2.0, BAND * n / top)
            x = LABEL + i * step + (step - bar) / 2
            parts.append(f'<rect x="{x:.1f}" y="{y0 + BAND - h:.1f}" width="{bar:.1f}" height="{h:.1f}" '
                         f'class="tl-bar"><title>{escape(label)}, {per} of {names[i]}: {n}</title></rect>')
        parts.append("</g>")
    axis_y = len(series) * (BAND + GAP) + 14
    for i in _ticks(len(periods), step):
        x = LABEL + i * step + step / 2
        anchor = "end" if i == len(periods) - 1 and i else "middle"  # the last label ends at its bar
        parts.append(f'<text x="{x:.1f}" y="{axis_y}" class="tl-tick" text-anchor="{anchor}">{names[i]}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))


# The least room between two axis labels (a YYYY-MM-DD label is about 60 px at the chart's font size).
TICK_ROOM = 80


def _ticks(count: int, step: float) -> list[int]:
    """Which periods get a label: the first, the last, and evenly spaced ones between that do not collide."""
    every = max(1, round(TICK_ROOM / step + 0.4999))
    ticks = list(range(0, count - 1, every))
    # The last label is drawn ending at its bar (it must not leave the chart): it needs half a label
    # more room from the one before, which is centred on its bar.
    while ticks and (count - 1 - ticks[-1]) * step < TICK_ROOM * 1.5:
        ticks.pop()
    return [*ticks, count - 1]
