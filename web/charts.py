"""Small charts as plain HTML/SVG, drawn on the server: no plotting library in the browser.

Every chart carries its numbers as text (visible labels, or a table a screen reader reads),
so the picture is never the only way to get them. Nothing here holds user text.
"""

from __future__ import annotations

from datetime import date
from typing import Sequence

from shared.reviews import RATINGS


def rating_bars(counts: Sequence[int], *, title: str = "Reviews per rating", elem_id: str = "bars") -> str:
    """One horizontal bar per rating, the highest on top, each with its count as text beside it."""
    most = max(counts) if counts and max(counts) else 1
    rows = []
    for rating, n in reversed(list(zip(RATINGS, map(int, counts)))):
        width = round(100 * n / most, 1)
        noun = "review" if n == 1 else "reviews"
        rows.append(
            f'<li class="bar-row" data-rating="{rating}" data-count="{n}">'
            f'<span class="bar-label">{rating} star{"" if rating == 1 else "s"}</span>'
            f'<span class="bar-track" aria-hidden="true"><span class="bar-fill" style="width: {width}%"></span></span>'
            f'<span class="bar-count">{n:,}<span class="sr-only"> {noun}</span></span></li>')
    return (f'<figure class="bars" id="{elem_id}" aria-labelledby="{elem_id}-title">'
            f'<figcaption id="{elem_id}-title" class="bars-title">{title}</figcaption>'
            f'<ol class="bar-list">{"".join(rows)}</ol></figure>')


def day_series(days: Sequence[date], values: Sequence[float | None], *, title: str, unit: str,
               y_max: float | None = None, y_min: float = 0.0, elem_id: str, digits: int = 0) -> str:
    """A line over days with a point on each day that has a value (so a single day shows as a
    point, not empty axes), and the same numbers in a table under a disclosure."""
    known = [(d, v) for d, v in zip(days, values) if v is not None]
    if not known:
        return f'<p class="chart-empty" id="{elem_id}">{title}: nothing to show in this range.</p>'
    width, height, left, right, top, bottom = 600, 200, 40, 12, 12, 28
    top_value = y_max if y_max is not None else max(v for _, v in known) or 1
    span = max(top_value - y_min, 1e-9)
    count = len(days)

    def x(i: int) -> float:
        return left + (width - left - right) * (0.5 if count == 1 else i / (count - 1))

    def y(v: float) -> float:
        return top + (height - top - bottom) * (1 - (v - y_min) / span)

    index = {d: i for i, d in enumerate(days)}
    points = [(x(index[d]), y(v)) for d, v in known]
    path = " ".join(f"{px:.1f},{py:.1f}" for px, py in points)
    dots = "".join(f'<circle cx="{px:.1f}" cy="{py:.1f}" r="{4 if len(points) < 40 else 2}"></circle>'
                   for px, py in points)
    fmt = f"{{:.{digits}f}}"
    # Three lines, or two when the middle one would round to an end (counts of 0 and 1).
    levels = {fmt.format(v): v for v in (y_min, (y_min + top_value) / 2, top_value)}
    ticks = "".join(
        f'<text x="{left - 6}" y="{y(v) + 4:.1f}" text-anchor="end">{label}</text>'
        f'<line x1="{left}" x2="{width - right}" y1="{y(v):.1f}" y2="{y(v):.1f}" class="grid"></line>'
        for label, v in levels.items())
    first, last = days[0].isoformat(), days[-1].isoformat()
    axis = (f'<text x="{left}" y="{height - 8}" text-anchor="start">{first}</text>'
            + (f'<text x="{width - right}" y="{height - 8}" text-anchor="end">{last}</text>' if count > 1 else ""))
    summary = (f"{title}: {len(known)} day{'s' if len(known) != 1 else ''} from {known[0][0].isoformat()} "
               f"to {known[-1][0].isoformat()}, lowest {fmt.format(min(v for _, v in known))}, "
               f"highest {fmt.format(max(v for _, v in known))} {unit}.")
    table_rows = "".join(f"<tr><td>{d.isoformat()}</td><td>{fmt.format(v)}</td></tr>" for d, v in known[-400:])
    return (f'<figure class="series" id="{elem_id}"><figcaption class="series-title">{title}</figcaption>'
            f'<svg viewBox="0 0 {width} {height}" role="img" aria-label="{summary}">'
            f'<g class="ticks">{ticks}</g><g class="axis">{axis}</g>'
            + (f'<polyline points="{path}" class="line"></polyline>' if len(points) > 1 else "")
            + f'<g class="dots">{dots}</g></svg>'
            f'<details class="series-data"><summary>The numbers</summary>'
            f'<table><thead><tr><th scope="col">Day (UTC)</th><th scope="col">{unit.capitalize()}</th></tr></thead>'
            f'<tbody>{table_rows}</tbody></table></details></figure>')


CSS = """
.sr-only { position: absolute !important; width: 1px; height: 1px; padding: 0; margin: -1px; overflow: hidden;
  clip: rect(0, 0, 0, 0); white-space: nowrap; border: 0; }
.bars { margin: 0; }
.bars-title, .series-title { font-weight: 600; margin-bottom: 6px; color: var(--body-text-color); }
.bar-list { list-style: none; margin: 0; padding: 0; }
.bar-row { display: grid; grid-template-columns: 5.5em 1fr 3.5em; align-items: center; gap: 8px; margin: 4px 0;
  color: var(--body-text-color); }
.bar-track { height: 14px; border-radius: 4px; background: var(--background-fill-secondary); overflow: hidden; }
.bar-fill { display: block; height: 100%; background: #c2410c; }
.dark .bar-fill { background: #fb923c; }
.bar-count { text-align: end; font-variant-numeric: tabular-nums; }
.series { margin: 0 0 12px; }
.series svg { width: 100%; height: auto; max-height: 240px; display: block; }
.series .line { fill: none; stroke: #c2410c; stroke-width: 2; vector-effect: non-scaling-stroke; }
.series .dots circle { fill: #c2410c; }
.series .grid { stroke: var(--border-color-primary); stroke-width: 1; vector-effect: non-scaling-stroke; }
.series text { fill: var(--body-text-color-subdued); font-size: 12px; }
.dark .series .line { stroke: #fb923c; }
.dark .series .dots circle { fill: #fb923c; }
.series-data table { border-collapse: collapse; margin-top: 4px; }
.series-data td, .series-data th { padding: 2px 8px; text-align: start; }
.series-data summary { cursor: pointer; color: var(--link-text-color); text-decoration: underline; }
"""
