"""Charts for reports, drawn on the server by matplotlib as SVG: the same markup goes into the page, its printable
view and its PDF (WeasyPrint runs no JavaScript), and nothing is sent to a third party.

Text stays text in the SVG (`svg.fonttype: none`), set in the page's CJK-capable font stack, so Chinese labels are
drawn by the browser or by WeasyPrint with the font the PDF embeds. matplotlib's own font lookup only sizes the
layout; its "glyph missing" warnings for CJK on machines without a CJK font are silenced for that reason.

Pure drawing: callers pass numbers they may show (already suppressed where small cells must not appear): a value
given as text is a hidden count's mark ("<5", "*"), written where its bar would stand, its bar not drawn. A report's
chart with no bar to draw (every count hidden) is not drawn at all (has_bars): the page says why in its place.

Styles are SVG presentation attributes (fill="…"), not matplotlib's style="…" and `<style>*{…}</style>`: WeasyPrint
reads an inline SVG's style attributes as the page's CSS and warned about each SVG property there (some 190 lines a
PDF), and the `*` rule of an SVG inside a page applied to the whole page.
May import: nothing of ours.
"""

from __future__ import annotations

import hashlib
import io
import logging
import re
import uuid
import warnings
from collections.abc import Sequence
from contextlib import contextmanager

from django.core.cache import cache
from django.utils.safestring import SafeString, mark_safe

FONT_STACK = ["Noto Sans CJK SC", "Noto Sans SC", "Source Han Sans SC", "WenQuanYi Micro Hei", "Microsoft YaHei",
              "PingFang SC", "SimHei", "DejaVu Sans"]  # fmt: skip
TIER_COLOURS = {"green": "#2e7d32", "yellow": "#f9a825", "orange": "#ef6c00", "red": "#c62828"}
BAR_COLOUR = "#2e6b5e"
CHART_VERSION = 4  # part of the cache key: raise it when the drawing changes
# Every text drawn is plain text: a "$" in a school, campaign or instrument name is a dollar sign, not TeX maths
# (which drew it as a formula, or raised on "$x_$" and failed every report of the district). matplotlib reads
# `text.parse_math` when each text is created, inside _style(); nothing here ever hands text to LaTeX.
PLAIN_TEXT = {"svg.fonttype": "none", "font.family": "sans-serif", "font.sans-serif": FONT_STACK,
              "text.parse_math": False, "text.usetex": False}  # fmt: skip
CHART_CACHE_SECONDS = 7 * 24 * 3600

logging.getLogger("matplotlib.font_manager").setLevel(logging.ERROR)  # "findfont: Font family … not found"


@contextmanager
def _style():
    """Our fonts, plain text and text-as-text SVG, around the whole drawing: a text takes its font and its
    parse_math when it is created."""
    import matplotlib

    with matplotlib.rc_context(PLAIN_TEXT), warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "Glyph … missing from font(s)": the viewer draws the text
        yield


def _figure(width: float, height: float):
    from matplotlib.figure import Figure  # not pyplot: no global state, safe in threads

    figure = Figure(figsize=(width, height), dpi=96)
    figure.set_layout_engine("constrained")
    return figure


def _svg(figure) -> SafeString:
    buffer = io.StringIO()
    figure.savefig(buffer, format="svg", metadata={"Date": None})
    markup = _presentation_attributes(buffer.getvalue())
    return mark_safe(markup[markup.index("<svg") :])  # noqa: S308 (markup made here, labels escaped by matplotlib)


# SVG properties that are also presentation attributes: what matplotlib writes in its style="…" (a declaration of any
# other property stays in a style attribute).
PRESENTATION = frozenset({
    "fill", "fill-opacity", "fill-rule", "stroke", "stroke-width", "stroke-opacity", "stroke-linejoin",
    "stroke-linecap", "stroke-miterlimit", "stroke-dasharray", "stroke-dashoffset", "opacity", "text-anchor",
    "font-size", "font-family", "font-style", "font-weight", "dominant-baseline", "alignment-baseline",
})  # fmt: skip
_STYLE_ATTRIBUTE = re.compile(r' style="([^"]*)"')
_STYLE_ELEMENT = re.compile(r'\s*<style type="text/css">\*\{([^}]*)\}</style>')


def _attributes(declarations: str) -> str:
    """`fill: #fff; stroke: #000` as ` fill="#fff" stroke="#000"` (values as matplotlib escaped them already)."""
    attributes, rest = [], []
    for declaration in declarations.split(";"):
        name, _colon, value = (part.strip() for part in declaration.partition(":"))
        if name in PRESENTATION and value:
            attributes.append(f' {name}="{value}"')
        elif name:
            rest.append(f"{name}: {value}")
    return "".join(attributes) + (f' style="{"; ".join(rest)}"' if rest else "")


def _presentation_attributes(markup: str) -> str:
    """matplotlib's styles as presentation attributes; its `*{…}` defaults (inherited properties: stroke-linejoin,
    stroke-linecap) on the root element instead, below every element's own."""
    defaults = _STYLE_ELEMENT.search(markup)
    if defaults:
        markup = markup[: defaults.start()] + markup[defaults.end() :]
        markup = markup.replace("<svg ", "<svg" + _attributes(defaults.group(1)) + " ", 1)
    return _STYLE_ATTRIBUTE.sub(lambda found: _attributes(found.group(1)), markup)


def _unique_ids(markup: str) -> SafeString:
    """matplotlib numbers its element ids per figure ("patch_1", clip paths): several charts on one page would share
    ids, and a chart could clip itself with another's rectangle. Each chart shown gets its own prefix."""
    prefix = f"c{uuid.uuid4().hex[:8]}-"
    markup = markup.replace(' id="', f' id="{prefix}').replace("url(#", f"url(#{prefix}")
    markup = markup.replace('href="#', f'href="#{prefix}')
    return mark_safe(markup)  # noqa: S308 (markup made by _svg)


def bar_chart(
    categories: Sequence[str],
    series: Sequence[tuple[str, Sequence[float | str | None], str]],
    *,
    title: str = "",
    ylabel: str = "",
    width: float = 7.0,
    height: float = 3.0,
) -> SafeString:
    """Grouped bars: one group per category, one bar per (label, values, colour) series. A value of None is not
    drawn; a text (a hidden count's mark, "<5" or "*") is not drawn either, and written at its bar's place instead.

    Drawn once per distinct input: matplotlib takes ~0.1 s a chart, and a report's charts are the same until its
    numbers change. The cache holds only what the chart shows (labels and counts already suppressed)."""
    drawing = (tuple(categories), tuple((label, tuple(values), colour) for label, values, colour in series), title,
               ylabel, width, height, CHART_VERSION)  # fmt: skip
    key = "chart:" + hashlib.sha256(repr(drawing).encode()).hexdigest()
    markup = cache.get(key)
    if markup is None:
        with _style():
            markup = str(_bar_chart(categories, series, title=title, ylabel=ylabel, width=width, height=height))
        cache.set(key, markup, CHART_CACHE_SECONDS)
    return _unique_ids(markup)


def _drawn(value) -> bool:
    return value is not None and not isinstance(value, str)


def has_bars(series: Sequence[tuple[str, Sequence[float | str | None], str]]) -> bool:
    """Whether a chart of these series would draw a bar: a shown value above zero. A report's chart without one (every
    count of a small group hidden) is not drawn: empty axes (−0.04…0.04) say nothing."""
    return any(_drawn(value) and value > 0 for _label, values, _colour in series for value in values)


def _bar_chart(categories, series, *, title, ylabel, width, height) -> SafeString:
    figure = _figure(width, height)
    axes = figure.add_subplot()
    count = max(len(series), 1)
    bar_width = 0.8 / count
    top = max([v for _, values, _ in series for v in values if _drawn(v)] or [1]) or 1
    for index, (label, values, colour) in enumerate(series):
        positions = [i - 0.4 + bar_width * (index + 0.5) for i in range(len(categories))]
        heights = [v if _drawn(v) else 0 for v in values]
        axes.bar(positions, heights, bar_width, label=label, color=colour)
        for position, value in zip(positions, values, strict=True):
            if isinstance(value, str) and value:  # a hidden count: its mark, never its number
                axes.annotate(value, (position, top * 0.02), ha="center", va="bottom", fontsize=8, color="#555")
    axes.set_xticks(range(len(categories)), list(categories), fontsize=8)
    axes.set_ylabel(ylabel, fontsize=8)
    axes.tick_params(axis="y", labelsize=8)
    axes.spines[["top", "right"]].set_visible(False)
    if title:
        axes.set_title(title, fontsize=10, loc="left")
    if len(series) > 1:  # above the plot, where it never hides a bar
        figure.legend(fontsize=8, frameon=False, ncols=len(series), loc="outside upper right")
    return _svg(figure)


def tier_bars(categories: Sequence[str], shares: dict[str, Sequence[float | str | None]], labels: dict[str, str],
              *, title: str = "", ylabel: str = "%") -> SafeString:  # fmt: skip
    """Tier shares per category (a row of the report, or a campaign), each tier in its colour; a hidden share given
    as its count's mark ("<5", "*") is written in its bar's place. "" where no bar would be drawn (see has_bars)."""
    series = [(labels[tier], shares[tier], TIER_COLOURS[tier]) for tier in shares]
    return bar_chart(categories, series, title=title, ylabel=ylabel) if has_bars(series) else mark_safe("")


def histogram(values: Sequence[int | str], counts: Sequence[int | str | None], *, title: str = "", ylabel: str = "",
              hidden_label: str = "") -> SafeString:  # fmt: skip
    """Counts per score value; a hidden count, given as its mark ("<5", "*"), or as None marked `hidden_label`, is
    not drawn and its mark is written in its bar's place. "" where no bar would be drawn (see has_bars)."""
    series = [("", [hidden_label if c is None else c for c in counts], BAR_COLOUR)]
    if not has_bars(series):
        return mark_safe("")
    return bar_chart([str(v) for v in values], series, title=title, ylabel=ylabel, height=2.4)
