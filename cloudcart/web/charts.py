"""Charts for the management pages, drawn on the server as inline SVG.

Inline SVG markup is neither script nor a style attribute, so it passes the pages' strict
CSP, and the charts need no JavaScript. Colours come from site.css classes (`bar-rect`,
`bar-prev`, `axis`); the `fill`/`stroke` presentation attributes are only a fallback for a
chart seen without the stylesheet. Every chart is an `<svg role="img">` with an
`aria-label` and a `<title>`, each bar has its own `<title>` (a tooltip), and the pages
show the same numbers in a table, so nothing is conveyed by the picture alone.

Every piece of text is escaped with `markupsafe.escape`: labels come from the API (search
queries typed by shoppers, product ids) and the result is returned as `Markup`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from markupsafe import Markup, escape

Formatter = Callable[[float], str]

BAR_FILL = "#0b5cab"
PREVIOUS_FILL = "#9db8d6"
AXIS_STROKE = "#d5dae0"
TEXT_FILL = "#4f5863"
MAX_X_LABELS = 8
MAX_LABEL_CHARS = 26
DASH = "\N{EN DASH}"
"""What a figure that does not exist shows."""


def plain(value: float) -> str:
    """A number as text: whole numbers without decimals, others with up to two."""
    if float(value).is_integer():
        return f"{int(value):,}"
    return f"{value:,.2f}"


def compact(value: float) -> str:
    """A number short enough for an axis: 950, 12.5k, 3.2M."""
    for size, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= size:
            return f"{value / size:.1f}".rstrip("0").rstrip(".") + suffix
    return plain(round(value, 2))


def _num(value: float) -> str:
    """A coordinate: at most two decimals, no trailing zeros."""
    text = f"{value:.2f}".rstrip("0").rstrip(".")
    return text if text not in ("", "-0") else "0"


def _shorten(text: str, limit: int = MAX_LABEL_CHARS) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _svg_open(title: str, width: int, height: int, kind: str) -> str:
    label = escape(title)
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart-svg {kind}" role="img" '
        f'aria-label="{label}" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" preserveAspectRatio="xMinYMin meet">'
        f"<title>{label}</title>"
    )


def _empty(title: str, width: int, height: int, text: str) -> Markup:
    # Every text in the markup went through escape(); the rest are numbers and constants.
    return Markup(  # noqa: S704
        _svg_open(title, width, height, "empty")
        + f'<text class="empty" x="{width // 2}" y="{height // 2}" text-anchor="middle" '
        f'fill="{TEXT_FILL}">{escape(text)}</text></svg>'
    )


def bar_chart(
    points: Sequence[tuple[str, float]],
    *,
    title: str,
    previous: Sequence[float] | None = None,
    previous_label: str = "previous period",
    format_value: Formatter = plain,
    format_axis: Formatter | None = None,
    width: int = 640,
    height: int = 240,
    empty_text: str = "No data for this period",
) -> Markup:
    """Vertical bars, one per point, scaled so the largest value fills the plot.

    With `previous`, each point gets a second, lighter bar beside it (the same bucket of the
    period compared with); both series share one scale. When every value is zero (or there
    are no points) the chart is an empty-state text instead of flat bars. The axis shows
    the largest value with `format_axis` (default: `compact` of the raw value).
    """
    axis = format_axis or compact
    before = list(previous or [])
    values = [max(0.0, float(v)) for _, v in points] + [max(0.0, float(v)) for v in before]
    top = max(values, default=0.0)
    if not points or top <= 0:
        return _empty(title, width, height, empty_text)
    left, right, top_pad, bottom = 56, 8, 16, 28
    plot_w = width - left - right
    plot_h = height - top_pad - bottom
    base_y = top_pad + plot_h
    slot = plot_w / len(points)
    series = 2 if previous is not None else 1
    bar_w = max(1.0, slot * 0.8 / series)
    every = max(1, -(-len(points) // MAX_X_LABELS))
    parts = [
        _svg_open(title, width, height, "bars"),
        f'<line class="axis" x1="{left}" y1="{base_y}" x2="{width - right}" y2="{base_y}" '
        f'stroke="{AXIS_STROKE}"/>',
        f'<line class="axis" x1="{left}" y1="{top_pad}" x2="{width - right}" y2="{top_pad}" '
        f'stroke="{AXIS_STROKE}" stroke-dasharray="4 4"/>',
        f'<text class="y-label" x="{left - 6}" y="{top_pad + 4}" text-anchor="end" '
        f'fill="{TEXT_FILL}">{escape(axis(top))}</text>',
        f'<text class="y-label" x="{left - 6}" y="{base_y}" text-anchor="end" '
        f'fill="{TEXT_FILL}">{escape(axis(0))}</text>',
    ]
    for index, (label, raw) in enumerate(points):
        x0 = left + index * slot + slot * 0.1
        bars: list[tuple[float, str, str, str]] = [
            (float(raw), "bar-rect", BAR_FILL, f"{label}: {format_value(float(raw))}")
        ]
        if previous is not None:
            old = float(before[index]) if index < len(before) else 0.0
            bars.append(
                (old, "bar-prev", PREVIOUS_FILL, f"{label}, {previous_label}: {format_value(old)}")
            )
        for offset, (value, css, fill, tip) in enumerate(bars):
            bar_h = max(0.0, value) / top * plot_h
            x = x0 + offset * bar_w
            parts.append(
                f'<rect class="{css}" x="{_num(x)}" y="{_num(base_y - bar_h)}" '
                f'width="{_num(bar_w)}" height="{_num(bar_h)}" fill="{fill}" '
                f'data-value="{_num(value)}"><title>{escape(tip)}</title></rect>'
            )
        if index % every == 0:
            parts.append(
                f'<text class="x-label" x="{_num(left + index * slot + slot / 2)}" '
                f'y="{height - 8}" text-anchor="middle" fill="{TEXT_FILL}">'
                f"{escape(_shorten(label, 12))}</text>"
            )
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 (every text part went through escape())


def hbar_chart(
    points: Sequence[tuple[str, float]],
    *,
    title: str,
    value_labels: Sequence[str] | None = None,
    format_value: Formatter = plain,
    width: int = 640,
    row_height: int = 28,
    empty_text: str = "No data for this period",
) -> Markup:
    """Horizontal bars with their labels on the left and values on the right, scaled so
    the largest value spans the plot: top products, funnel steps, durations.

    `value_labels` replaces the formatted values shown at the bars' ends (for example a
    count with its share of the first step).
    """
    top = max((max(0.0, float(v)) for _, v in points), default=0.0)
    height = max(row_height * len(points), row_height) + 8
    if not points or top <= 0:
        return _empty(title, width, max(height, 80), empty_text)
    label_w = int(width * 0.36)
    value_w = int(width * 0.22)
    plot_w = width - label_w - value_w - 8
    parts = [_svg_open(title, width, height, "hbars")]
    for index, (label, raw) in enumerate(points):
        value = max(0.0, float(raw))
        y = 4 + index * row_height
        bar_w = value / top * plot_w
        shown = value_labels[index] if value_labels else format_value(value)
        middle = y + row_height / 2 + 4
        parts.append(
            f'<text class="row-label" x="{label_w - 6}" y="{_num(middle)}" text-anchor="end" '
            f'fill="{TEXT_FILL}">{escape(_shorten(label))}<title>{escape(label)}</title></text>'
            f'<rect class="bar-rect" x="{label_w}" y="{_num(y + 4)}" width="{_num(bar_w)}" '
            f'height="{row_height - 8}" fill="{BAR_FILL}" data-value="{_num(value)}">'
            f"<title>{escape(f'{label}: {shown}')}</title></rect>"
            f'<text class="row-value" x="{_num(label_w + bar_w + 6)}" y="{_num(middle)}" '
            f'fill="{TEXT_FILL}">{escape(shown)}</text>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 (every text part went through escape())


def duration(seconds: float | None) -> str:
    """Seconds as a short duration: "45 s", "12 min", "3 h 5 min", "2 d 4 h"."""
    if seconds is None:
        return DASH
    total = int(seconds)
    if total < 60:
        return f"{total} s"
    minutes, _ = divmod(total, 60)
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h" if hours else f"{days} d"
