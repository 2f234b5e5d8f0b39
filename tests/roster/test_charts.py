"""roster.charts: server-drawn SVG charts, drawn once per distinct input."""

import re

from django.core.cache import cache

from roster import charts


def _ids(markup: str) -> set[str]:
    return set(re.findall(r' id="([^"]+)"', markup))


def test_a_chart_is_drawn_once_and_each_copy_shown_gets_its_own_ids(monkeypatch):
    cache.clear()
    drawn = []
    real = charts._bar_chart
    monkeypatch.setattr(charts, "_bar_chart", lambda *a, **kw: drawn.append(1) or real(*a, **kw))
    first = charts.histogram([0, 1, 2], [5, None, 7], title="PHQ-9 抑郁", ylabel="学生", hidden_label="<5")
    second = charts.histogram([0, 1, 2], [5, None, 7], title="PHQ-9 抑郁", ylabel="学生", hidden_label="<5")
    assert len(drawn) == 1
    assert "<svg" in first and "PHQ-9 抑郁" in first and "&lt;5" in first
    assert _ids(first) and not _ids(first) & _ids(second)  # two copies on one page never share an id
    assert re.sub(r"c[0-9a-f]{8}-", "", first) == re.sub(r"c[0-9a-f]{8}-", "", second)
    charts.histogram([0, 1, 2], [5, 6, 7], title="PHQ-9 抑郁", ylabel="学生")  # other numbers: drawn again
    assert len(drawn) == 2


def test_a_report_chart_whose_every_bar_is_hidden_is_not_drawn():
    """A small group's chart, every count hidden (zeros beside them draw nothing either): no empty −0.04…0.04 axes."""
    assert charts.histogram([0, 1, 2, 3], ["<5", "*", 0, None], title="PHQ-9", ylabel="学生", hidden_label="<5") == ""
    labels = {"green": "绿色", "red": "红色"}
    assert charts.tier_bars(["7年级3班"], {"green": ["<5"], "red": ["*"]}, labels) == ""
    assert "<svg" in charts.tier_bars(["7年级3班"], {"green": [75.0], "red": ["<5"]}, labels)  # one bar: drawn


def test_a_chart_is_styled_by_attributes_that_pdfs_read_without_warnings():
    """WeasyPrint read matplotlib's style="fill: …" as the page's CSS and warned about every SVG property in it; and
    its `<style>*{…}</style>` would style the whole page the chart sits in."""
    markup = str(charts.histogram([0, 1], [5, 7], title="PHQ-9 抑郁", ylabel="学生"))
    assert "<style" not in markup and not re.search(r' style="[^"]*(fill|stroke|text-anchor)', markup)
    assert 'fill="#2e6b5e"' in markup and 'stroke-linejoin="round"' in markup.split(">", 1)[0]
