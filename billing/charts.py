"""Bar charts as server-rendered SVG. Colours come from the theme's CSS variables through
classes (see billing/static/billing/usage.css), so one picture works in light and dark.
Numbers and dates are written in the page's language."""

from __future__ import annotations

import math
from datetime import datetime
from decimal import Decimal

from django.utils import formats, timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

WIDTH, HEIGHT, PAD_LEFT, PAD_BOTTOM, PAD_TOP = 640, 200, 64, 24, 10
LABEL_CHAR_PX = 6.5  # a character of .chart-label (11px) is about this wide
NICE_STEPS = (1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10)


def axis_top(value: float | Decimal) -> Decimal:
    """The axis' top: the value rounded up to a round figure (1, 1.2, 1.5, 2, 2.5, 3, 4, 5,
    6 or 8 times a power of ten), so its label is short and the bars fill most of the chart."""
    value = Decimal(str(value))
    if value <= 0:
        return Decimal(1)
    exponent = math.floor(value.log10())
    mantissa = value.scaleb(-exponent)
    step = next(s for s in NICE_STEPS if Decimal(str(s)) >= mantissa)
    return Decimal(str(step)).scaleb(exponent).normalize()


def number_text(value: float | Decimal | int, *, money: bool = False) -> str:
    """A figure in the page's language, in plain notation: "$0,0950", "10.110". Money gets
    four decimals (more for a fraction of a hundredth of a cent), counts none."""
    value = Decimal(str(value))
    if money:
        places = 4
        while places < 6 and value and abs(value) < Decimal(1).scaleb(-places + 1):
            places += 1
        text = formats.number_format(value, places, use_l10n=True, force_grouping=True)
        return f"${text}"
    places = max(0, -value.normalize().as_tuple().exponent)
    return formats.number_format(value, places, use_l10n=True, force_grouping=True)


def _axis_text(top: Decimal, *, money: bool) -> str:
    places = max(0, -top.as_tuple().exponent)
    if money and top < 1:
        places = max(places, 2)
    text = formats.number_format(top, places, use_l10n=True, force_grouping=True)
    return f"${text}" if money else text


def bucket_label(moment: datetime, bucket: str) -> str:
    """An hour ("16:00", "4 p.m.") or a day ("December 6", "6 de diciembre") of a chart."""
    moment = timezone.localtime(moment)
    if bucket == "hour":
        return formats.time_format(moment, "TIME_FORMAT")
    return formats.date_format(moment, "MONTH_DAY_FORMAT")


def bar_chart_svg(
    points: list[tuple[str, float | Decimal | int]], *, title: str, money: bool = False
) -> SafeString:
    """points: (label, value) in order, one per bucket (empty buckets included, as zero).
    Labels are drawn under as many bars as they fit under."""
    values = [Decimal(str(v)) for _label, v in points]
    top = axis_top(max(values, default=0))
    plot_w, plot_h = WIDTH - PAD_LEFT - 8, HEIGHT - PAD_BOTTOM - PAD_TOP
    step = plot_w / max(len(points), 1)
    widest = max((len(label) for label, _v in points), default=0) * LABEL_CHAR_PX + 12
    every = max(1, math.ceil(widest / step))
    bars = []
    labels = []
    for i, ((label, _value), value) in enumerate(zip(points, values, strict=True)):
        h = plot_h * float(value / top)
        x = PAD_LEFT + i * step
        bars.append(
            (
                f"{x + step * 0.1:.1f}",
                f"{PAD_TOP + plot_h - h:.1f}",
                f"{step * 0.8:.1f}",
                f"{h:.1f}",
                f"{label}: {number_text(value, money=money)}",
            )
        )
        if i % every == 0:
            labels.append((f"{x + step / 2:.1f}", f"{HEIGHT - 6}", label))
    return format_html(
        '<svg class="usage-chart" viewBox="0 0 {} {}" role="img" aria-label="{}">'
        '<line class="chart-axis" x1="{}" y1="{}" x2="{}" y2="{}"/>'
        '<text class="chart-label chart-axis-top" x="4" y="{}">{}</text>'
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
        _axis_text(top, money=money),
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
