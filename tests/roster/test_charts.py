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
