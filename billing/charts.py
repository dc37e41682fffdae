"""Bar charts as server-rendered SVG. Colours come from the theme's CSS variables through
classes (see billing/static/billing/usage.css), so one picture works in light and dark."""

from __future__ import annotations

from decimal import Decimal

from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

WIDTH, HEIGHT, PAD_LEFT, PAD_BOTTOM, PAD_TOP = 640, 200, 56, 24, 10


def bar_chart_svg(
    points: list[tuple[str, float | Decimal]], *, title: str, unit: str = ""
) -> SafeString:
    """points: (label, value) in order. Labels are drawn under every few bars."""
    values = [float(v) for _label, v in points]
    top = max(values, default=0) or 1.0
    plot_w, plot_h = WIDTH - PAD_LEFT - 8, HEIGHT - PAD_BOTTOM - PAD_TOP
    step = plot_w / max(len(points), 1)
    every = max(1, len(points) // 8)
    bars = []
    labels = []
    for i, (label, value) in enumerate(points):
        h = plot_h * float(value) / top
        x = PAD_LEFT + i * step
        bars.append(
            (
                f"{x + step * 0.1:.1f}",
                f"{PAD_TOP + plot_h - h:.1f}",
                f"{step * 0.8:.1f}",
                f"{h:.1f}",
                f"{label}: {unit}{value}",
            )
        )
        if i % every == 0:
            labels.append((f"{x + step / 2:.1f}", f"{HEIGHT - 6}", label))
    return format_html(
        '<svg class="usage-chart" viewBox="0 0 {} {}" role="img" aria-label="{}">'
        '<line class="chart-axis" x1="{}" y1="{}" x2="{}" y2="{}"/>'
        '<text class="chart-label" x="4" y="{}">{}{}</text>'
        '<text class="chart-label" x="4" y="{}">0</text>'
        "{}{}</svg>",
        WIDTH,
        HEIGHT,
        title,
        PAD_LEFT,
        PAD_TOP + plot_h,
        WIDTH - 8,
        PAD_TOP + plot_h,
        PAD_TOP + 10,
        unit,
        f"{top:,.4g}",
        PAD_TOP + plot_h,
        format_html_join(
            "",
            '<rect class="chart-bar" x="{}" y="{}" width="{}" height="{}"><title>{}</title></rect>',
            bars,
        ),
        format_html_join(
            "", '<text class="chart-label" x="{}" y="{}" text-anchor="middle">{}</text>', labels
        ),
    )
