"""Small inline SVG bar charts: no script, no image request, a few hundred bytes a bar.

Amounts stay integers; only the pixel geometry is scaled. Each chart carries a <title>
(its accessible name) and every bar a <title> with its exact figure; the pages also
show the same figures in a table, so nothing is only in the picture.

Drawn for a phone first: the picture is 360 units wide, about the width it gets on a 360 px
screen, so its 13-unit text is ~12 px there (CSS caps its width on a desktop, where it is
~17 px). Both axes are labelled: round values on the y axis with gridlines and the unit they
are in ("nghìn ₫"), the categories on the x axis (thinned so that none overlaps) and its title.
A stacked chart with room writes each bar's total above it.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence

from markupsafe import Markup, escape

BARS_MAX = 600  # labels x series drawn in one chart: an explicit bound on the loop and the page size
WIDTH, HEIGHT = 360, 250
PAD_TOP, PAD_BOTTOM, PAD_RIGHT = 26, 44, 4  # room for the y axis title; x labels and x axis title
FONT = 13  # user units; ~12 px on a 360 px screen (tests/web/test_screens.py measures it)
CHAR_WIDTH = 0.62 * FONT  # a generous average advance of a digit or letter in a system sans-serif
TICKS_WANTED = 4
Unit = tuple[int, str]  # (divisor, the axis title saying what the tick numbers count)


def _nice_step(span: int) -> int:
    """The smallest of 1, 2, 5 x 10^k that divides `span` into at most TICKS_WANTED parts (integers only)."""
    magnitude = 1
    while True:
        for factor in (1, 2, 5):
            if factor * magnitude * TICKS_WANTED >= span:
                return factor * magnitude
        magnitude *= 10


def _text_width(text: str) -> float:
    return len(text) * CHAR_WIDTH


def bar_chart(chart_id: str, title: str, labels: Sequence[str],
              series: Sequence[tuple[str, str, Sequence[int]]], *, stacked: bool,
              value_text: Callable[[int], str], tick_text: Callable[[int], str], units: Sequence[Unit],
              x_title: str) -> Markup:
    """`series` is (name, css class, one integer per label); stacked or side by side; negatives go down.

    `units` are the y axis's scales, smallest first (`[(1, "₫"), (1000, "nghìn ₫"), …]`): the largest
    that is not above the tick step is used, and `tick_text` writes tick values in it.
    """
    assert all(len(values) == len(labels) for _, _, values in series), "one value per label in every series"
    assert len(labels) * max(len(series), 1) <= BARS_MAX, "too many bars for an inline chart"
    assert units and units[0][0] == 1, "the first unit counts ones"
    if stacked:
        highs = [sum(max(0, s[2][i]) for s in series) for i in range(len(labels))]
        lows = [sum(min(0, s[2][i]) for s in series) for i in range(len(labels))]
    else:
        highs = [max([0, *(s[2][i] for s in series)]) for i in range(len(labels))]
        lows = [min([0, *(s[2][i] for s in series)]) for i in range(len(labels))]
    high, low = max([*highs, 0]), min([*lows, 0])
    step = _nice_step(max(high - low, 1))
    top = -(-high // step) * step if high > 0 else (step if low == 0 else 0)
    bottom = (low // step) * step
    plot_height = HEIGHT - PAD_BOTTOM - PAD_TOP
    if stacked and high > 0 and plot_height * (top - high) / (top - bottom) < FONT + 6:
        top += step  # headroom for the totals written above the bars
    span = top - bottom
    divisor, unit_title = [unit for unit in units if unit[0] <= step][-1]
    ticks = [(value, tick_text(value // divisor)) for value in range(bottom, top + 1, step)]
    pad_left = max(_text_width(text) for _, text in ticks) + 8
    plot_width = WIDTH - pad_left - PAD_RIGHT

    def y_of(value: int) -> float:
        return PAD_TOP + plot_height * (top - value) / span

    zero_y = y_of(0)
    slot = plot_width / max(len(labels), 1)
    bar_width = slot * 0.7 / (1 if stacked else max(len(series), 1))
    parts = [(f'<svg class="chart" id="{escape(chart_id)}" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
              f'aria-labelledby="{escape(chart_id)}-title" preserveAspectRatio="xMinYMin meet">'),
             f'<title id="{escape(chart_id)}-title">{escape(title)}</title>',
             f'<text class="axis-title y-title" x="2" y="{FONT}">{escape(unit_title)}</text>']
    for value, text in ticks:
        y = y_of(value)
        parts.append(f'<line class="grid" x1="{pad_left - 3:.1f}" x2="{WIDTH - PAD_RIGHT}" y1="{y:.1f}" y2="{y:.1f}"/>'
                     f'<text class="tick y-tick" x="{pad_left - 5:.1f}" y="{y + FONT * 0.35:.1f}" '
                     f'text-anchor="end">{escape(text)}</text>')
    parts.append(f'<line class="axis" x1="{pad_left:.1f}" x2="{WIDTH - PAD_RIGHT}" y1="{zero_y:.1f}" '
                 f'y2="{zero_y:.1f}"/>')
    widest = max([_text_width(label) for label in labels] or [0])
    label_every = max(1, -int(-(widest + 6) // slot))  # no two x labels overlap, however many months
    for index, label in enumerate(labels):
        x0 = pad_left + slot * index + slot * 0.15
        up, down = 0.0, 0.0
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
        middle = x0 + slot * 0.35
        if stacked and highs[index] > 0:
            total = value_text(highs[index] + lows[index])
            if _text_width(total) <= slot * 0.98 and up >= 0:
                parts.append(f'<text class="bar-value" x="{middle:.1f}" y="{zero_y - up - 4:.1f}" '
                             f'text-anchor="middle">{escape(total)}</text>')
        if index % label_every == 0:
            parts.append(f'<text class="tick x-tick" x="{middle:.1f}" y="{HEIGHT - PAD_BOTTOM + FONT + 5}" '
                         f'text-anchor="middle">{escape(label)}</text>')
    parts.append(f'<text class="axis-title x-title" x="{WIDTH - PAD_RIGHT}" y="{HEIGHT - 4}" '
                 f'text-anchor="end">{escape(x_title)}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))


def legend(series: Sequence[tuple[str, str, Sequence[int]]]) -> Markup:
    items = "".join(f'<li><svg class="swatch" viewBox="0 0 10 10" aria-hidden="true"><rect class="{escape(css)}" '
                    f'width="10" height="10"/></svg>{escape(name)}</li>' for name, css, _ in series)
    return Markup(f'<ul class="legend">{items}</ul>')
