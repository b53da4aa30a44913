"""Small inline SVG bar charts: no script, no image request, a few hundred bytes a bar.

Amounts stay integers; only the pixel geometry is scaled. Each chart carries a <title>
(its accessible name) and every bar a <title> with its exact figure; the pages also
show the same figures in a table, so nothing is only in the picture.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence

from markupsafe import Markup, escape

BARS_MAX = 600  # labels x series drawn in one chart: an explicit bound on the loop and the page size
WIDTH, HEIGHT, PAD_LEFT, PAD_BOTTOM, PAD_TOP = 640, 220, 8, 28, 10


def bar_chart(chart_id: str, title: str, labels: Sequence[str],
              series: Sequence[tuple[str, str, Sequence[int]]], *, stacked: bool,
              value_text: Callable[[int], str]) -> Markup:
    """`series` is (name, css class, one integer per label); stacked or side by side; negatives go down."""
    assert all(len(values) == len(labels) for _, _, values in series), "one value per label in every series"
    assert len(labels) * max(len(series), 1) <= BARS_MAX, "too many bars for an inline chart"
    if stacked:
        highs = [sum(max(0, s[2][i]) for s in series) for i in range(len(labels))]
        lows = [sum(min(0, s[2][i]) for s in series) for i in range(len(labels))]
    else:
        highs = [max([0, *(s[2][i] for s in series)]) for i in range(len(labels))]
        lows = [min([0, *(s[2][i] for s in series)]) for i in range(len(labels))]
    top, bottom = max([*highs, 1]), min([*lows, 0])
    span = top - bottom
    plot_height = HEIGHT - PAD_BOTTOM - PAD_TOP
    zero_y = PAD_TOP + plot_height * top / span
    slot = (WIDTH - PAD_LEFT) / max(len(labels), 1)
    bar_width = slot * 0.7 / (1 if stacked else max(len(series), 1))
    parts = [(f'<svg class="chart" id="{escape(chart_id)}" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
              f'aria-labelledby="{escape(chart_id)}-title" preserveAspectRatio="xMidYMid meet">'),
             f'<title id="{escape(chart_id)}-title">{escape(title)}</title>',
             f'<line class="axis" x1="{PAD_LEFT}" x2="{WIDTH}" y1="{zero_y:.1f}" y2="{zero_y:.1f}"/>']
    label_every = max(1, len(labels) // 12)  # at most ~12 axis labels stay legible on a phone
    for index, label in enumerate(labels):
        x0 = PAD_LEFT + slot * index + slot * 0.15
        up, down = 0, 0
        for number, (name, css, values) in enumerate(series):
            value = values[index]
            height = plot_height * abs(value) / span
            if stacked:
                y = zero_y - (up + height if value >= 0 else -down)
                up, down = (up + height, down) if value >= 0 else (up, down + height)
                x = x0
            else:
                y = zero_y - height if value >= 0 else zero_y
                x = x0 + bar_width * number
            parts.append(f'<rect class="{escape(css)}" x="{x:.1f}" y="{y:.1f}" width="{bar_width:.1f}" '
                         f'height="{max(height, 0.5 if value else 0):.1f}"><title>{escape(label)} · {escape(name)}: '
                         f'{escape(value_text(value))}</title></rect>')
        if index % label_every == 0:
            parts.append(f'<text class="tick" x="{x0 + slot * 0.35:.1f}" y="{HEIGHT - 8}" '
                         f'text-anchor="middle">{escape(label)}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))


def legend(series: Sequence[tuple[str, str, Sequence[int]]]) -> Markup:
    items = "".join(f'<li><svg class="swatch" viewBox="0 0 10 10" aria-hidden="true"><rect class="{escape(css)}" '
                    f'width="10" height="10"/></svg>{escape(name)}</li>' for name, css, _ in series)
    return Markup(f'<ul class="legend">{items}</ul>')
