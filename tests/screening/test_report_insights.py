"""The group report's charts and breakdowns (issue 7 §1): score distributions, critical items, special groups and the
previous campaign, counted by hand; suppressed below the school level; the printable page and its PDF, legible in
Chinese with the font embedded."""

import datetime
import logging
import re
from collections import defaultdict

import pytest
from django.urls import reverse
from hypothesis import given, settings
from hypothesis import strategies as st

from roster.charts import histogram
from roster.models import AccessLogEntry, SpecialGroup
from roster.pdf import pdf_available
from screening.report_insights import GROUP_COLUMNS, _add_groups, _any_group, _group_tables
from screening.reports import REPORT_TIERS, ReportRow, _suppress_small_cells, total_cell
from tests.factories.roster import StudentFactory
from tests.factories.screening import CampaignFactory
from tests.pdfs import first_page_text_if_legible
from tests.screening.test_reports import record


@pytest.fixture
def screened(world):
    """School A1 grade 7, by hand: 7-3 has 6 green and 2 red (both red pupils and one green are left-behind), 7-5 has
    5 green. A campaign a year earlier screened 7-3: 4 green, 4 yellow."""
    campaign = CampaignFactory(schools=[world.school_a1])
    # (created again where a browser test's flush has emptied the vocabulary roster's data migration loads)
    left_behind, _ = SpecialGroup.objects.get_or_create(code="left_behind", defaults={"name": "留守儿童"})
    greens = [StudentFactory(school_class=world.class_a1_3) for _ in range(6)]
    reds = [StudentFactory(school_class=world.class_a1_3) for _ in range(2)]
    for student in [*reds, greens[0]]:
        student.special_groups.add(left_behind)
    previous = CampaignFactory(
        name="2025秋季测评", schools=[world.school_a1],
        opens_at=campaign.opens_at - datetime.timedelta(days=365),
        closes_at=campaign.opens_at - datetime.timedelta(days=358),
    )  # fmt: skip
    for i, student in enumerate(greens[:4] + reds + greens[4:6]):
        record(previous, student, "green" if i < 4 else "yellow")
    for student in greens:
        record(campaign, student, "green")
    for student in reds:
        record(campaign, student, "red")
    for _ in range(5):
        record(campaign, StudentFactory(school_class=world.class_a1_5), "green")
    return campaign, previous


def insights_of(client, user, campaign, **params):
    client.force_login(user)
    response = client.get(reverse("screening:report", args=[campaign.pk]), params)
    assert response.status_code == 200
    return response.context["insights"]


def critical(insights):
    """Counts by item number: PHQ-9's critical item is 9, the ASQ's are 1 to 5 (no clash)."""
    return {c.number: c.count for c in insights.critical_items}


def test_the_district_sees_every_figure_unsuppressed(client, world, screened):
    campaign, previous = screened
    insights = insights_of(client, world.centre_district_a, campaign, district=world.district_a.pk)
    phq9 = insights.distributions[0]
    assert phq9.values[0] == 0 and phq9.counts[0] == 13 and sum(phq9.counts) == 13  # every calm answer scores 0
    asq = insights.distributions[-1]
    assert dict(zip(asq.values, asq.counts, strict=True))[1] == 2  # the two red pupils: item 1 (item 5 is acuity)
    assert "<svg" in phq9.chart and "<script" not in phq9.chart
    assert [critical(insights)[number] for number in (1, 5)] == [2, 2]
    groups = {g.label: (g.completed, g.tiers) for g in insights.groups}
    assert groups["留守儿童"] == (3, [1, 0, 0, 2])
    assert list(groups)[-1] != "留守儿童" and list(groups.values())[-1] == (10, [10, 0, 0, 0])  # the rest, last
    # The same population a year earlier: 8 of the 15 invited completed then (4 green, 4 yellow); 13 of 15 now.
    assert insights.trend.campaign == previous
    assert insights.trend.completion == 53.3 and insights.trend.shares == [50.0, 50.0, 0.0, 0.0]
    assert insights.trend.now_shares == [84.6, 0.0, 0.0, 15.4]


def test_a_grade_hides_small_counts_in_every_figure(client, world, screened):
    campaign, _ = screened
    insights = insights_of(client, world.counselor_a1, campaign, school=world.school_a1.pk, grade=7)
    assert insights.suppressed
    asq = dict(zip(insights.distributions[-1].values, insights.distributions[-1].counts, strict=True))
    assert asq[0] == 11 and asq[1] == "<5"
    assert sum(1 for count in asq.values() if count == "<5") == 2  # and one more, so 13 - 11 cannot give it back
    shown = critical(insights)
    assert shown[1] == "<5" and shown[5] == "<5"
    assert 2 not in shown.values()
    left_behind = next(g for g in insights.groups if g.label == "留守儿童")
    assert left_behind.tiers[0] == "<5" and left_behind.tiers[3] == "<5"


def test_a_class_hides_small_counts_in_every_figure_and_the_shares_that_would_give_them_back(client, world, screened):
    """Class 7-3 by hand: 9 invited, 8 answered: 6 green, 2 red (both left-behind, with one green). A year earlier 8 of
    them answered: 4 green, 4 yellow. Shown: what describes 5 or more; the rest "<5", its share "—"."""
    campaign, _ = screened
    params = {"school": world.school_a1.pk, "grade": 7, "class": world.class_a1_3.pk}
    insights = insights_of(client, world.counselor_a1, campaign, **params)
    assert insights.suppressed
    assert insights.trend.shares == [None, None, 0.0, 0.0]  # 4 green and 4 yellow: both under 5
    assert insights.trend.now_shares[0] == 75.0 and insights.trend.now_shares[3] is None  # 2 of 8 would be 25 %
    left_behind = next(g for g in insights.groups if g.label == "留守儿童")
    assert (left_behind.completed, left_behind.tiers[0], left_behind.tiers[3]) == ("<5", "<5", "<5")  # 3: 1 + 2
    rest = next(g for g in insights.groups if g.label != "留守儿童")
    # The other five answered green; shown, they would give the group's figures back from the class's totals above.
    # Hidden, five reads "*": "<5" would be a false number.
    assert (rest.completed, rest.tiers) == ("*", ["*", "<5", "<5", "<5"])
    assert [critical(insights)[number] for number in (1, 5)] == ["<5", "<5"]
    page = client.get(reverse("screening:report", args=[campaign.pk]), params).content.decode()
    trend = page.split("report-trend")[1].split("</section>")[0]
    assert "25.0" not in trend and "50.0" not in trend and trend.count("—") == 4  # 2 then, red and a partner now


def test_the_city_sees_the_district_figures_for_the_whole_city(client, world, screened):
    """The city centre at the top: the same hand-counted figures as the district (only district A screened)."""
    campaign, _ = screened
    insights = insights_of(client, world.city_centre, campaign)
    assert not insights.suppressed
    assert insights.distributions[0].counts[0] == 13 and [critical(insights)[n] for n in (1, 5)] == [2, 2]
    assert {g.label: (g.completed, g.tiers) for g in insights.groups}["留守儿童"] == (3, [1, 0, 0, 2])
    assert insights.trend.now_shares == [84.6, 0.0, 0.0, 15.4]


def test_a_school_hides_small_counts_of_special_groups_only(client, world, screened):
    campaign, _ = screened
    insights = insights_of(client, world.principal_a1, campaign, school=world.school_a1.pk)
    assert not insights.suppressed
    assert [critical(insights)[number] for number in (1, 5)] == [2, 2]
    left_behind = next(g for g in insights.groups if g.label == "留守儿童")
    assert 1 not in left_behind.tiers and 2 not in left_behind.tiers


def test_a_homeroom_teacher_gets_no_figures(client, world, screened):
    campaign, _ = screened
    assert insights_of(client, world.homeroom_a1_3, campaign) is None


def test_the_printable_page_has_the_table_and_the_charts_and_is_logged(client, world, screened):
    campaign, _ = screened
    client.force_login(world.centre_district_a)
    response = client.get(reverse("screening:report_print", args=[campaign.pk]), {"district": world.district_a.pk})
    page = response.content.decode()
    assert response.status_code == 200 and response["Cache-Control"].startswith("max-age=0")
    assert world.school_a1.name in page and page.count("<svg") >= 4 and "topbar" not in page
    assert AccessLogEntry.objects.filter(actor="centre_district_a", object_type="screening.report",
                                         action="view").exists()  # fmt: skip


@pytest.mark.skipif(not pdf_available(), reason="WeasyPrint or Pango is not installed here")
@pytest.mark.slow
def test_the_pdf_is_legible_in_chinese_with_its_font_embedded(client, world, screened):
    campaign, _ = screened
    client.force_login(world.centre_district_a)
    response = client.get(reverse("screening:report_pdf", args=[campaign.pk]), {"district": world.district_a.pk})
    assert response.status_code == 200 and response["Content-Type"] == "application/pdf"
    assert f"screening-report-{campaign.pk}-district" in response["Content-Disposition"]
    text = first_page_text_if_legible(response.content)
    assert "完成情况报告" in text and world.school_a1.name in text
    assert AccessLogEntry.objects.filter(actor="centre_district_a", object_type="screening.report",
                                         action="export").exists()  # fmt: skip


TOO_SMALL = "这个群体人数太少，为保护学生隐私不显示图表。"


@pytest.fixture
def small_class(world):
    """Class 7-3 with 2 answers (one green, one red) of 3 invited: every count of its report is hidden."""
    campaign = CampaignFactory(schools=[world.school_a1])
    record(campaign, world.student_a1_3, "red")
    record(campaign, StudentFactory(school_class=world.class_a1_3), "green")
    StudentFactory(school_class=world.class_a1_3)
    return campaign, {"school": world.school_a1.pk, "grade": 7, "class": world.class_a1_3.pk}


@pytest.mark.parametrize("view", ["screening:report", "screening:report_print"])
def test_a_class_whose_every_count_is_hidden_says_so_instead_of_drawing_empty_charts(client, world, small_class, view):
    campaign, params = small_class
    client.force_login(world.counselor_a1)
    page = client.get(reverse(view, args=[campaign.pk]), params).content.decode()
    assert "&lt;5" in page.split("report-chart")[0]  # the table still shows its marks
    assert "<svg" not in page and "−0.04" not in page
    assert page.split("report-chart")[1].split("</section>")[0].count(TOO_SMALL) == 1  # the tier chart's place
    assert page.split("report-distributions")[1].split("</section>")[0].count(TOO_SMALL) == 1  # one for all scales


@pytest.mark.skipif(not pdf_available(), reason="WeasyPrint or Pango is not installed here")
def test_the_pdf_of_a_class_whose_every_count_is_hidden_says_so_instead_of_drawing_empty_charts(
    client, world, small_class
):
    campaign, params = small_class
    client.force_login(world.counselor_a1)
    text = first_page_text_if_legible(client.get(reverse("screening:report_pdf", args=[campaign.pk]), params).content)
    assert "−0.04" not in text and "0.04" not in text
    assert text.replace("\r\n", "").count(TOO_SMALL) == 2


@pytest.mark.skipif(not pdf_available(), reason="WeasyPrint or Pango is not installed here")
@pytest.mark.slow
def test_the_pdf_prints_each_tier_count_apart_from_its_share(client, world, screened):
    """Grade 7: 7-5 has 5 green of 5 (100.0 %) and 0 of every other tier; side by side they read "5 100.0%"."""
    campaign, _ = screened
    client.force_login(world.counselor_a1)
    response = client.get(
        reverse("screening:report_pdf", args=[campaign.pk]), {"school": world.school_a1.pk, "grade": 7}
    )
    rows = first_page_text_if_legible(response.content).split("各行风险等级分布")[0]
    assert "100.0%" in rows and "0.0%" in rows
    assert "5 100.0%" not in rows and "0 0.0%" not in rows and "11 84.6%" not in rows  # each share on its own line


@pytest.mark.skipif(not pdf_available(), reason="WeasyPrint or Pango is not installed here")
@pytest.mark.slow
def test_making_a_report_pdf_with_charts_logs_almost_no_css_warnings(client, world, screened, caplog):
    """It logged some 190 a PDF: WeasyPrint read the charts' SVG styles as the page's CSS."""
    campaign, _ = screened
    client.force_login(world.counselor_a1)
    with caplog.at_level(logging.WARNING, logger="weasyprint"):
        response = client.get(reverse("screening:report_pdf", args=[campaign.pk]),
                              {"school": world.school_a1.pk, "grade": 7})  # fmt: skip
    assert response.status_code == 200 and response["Content-Type"] == "application/pdf"
    warned = [
        r.getMessage() for r in caplog.records if r.name.startswith("weasyprint") and r.levelno >= logging.WARNING
    ]
    assert len(warned) < 5, warned


@pytest.mark.slow
def test_a_hidden_bar_of_the_tier_chart_carries_the_tables_mark_not_its_number(client, world):
    """Grade 7 by hand: 7-3 has 8 green, 5 yellow, 6 orange and 1 red (red hidden, yellow 5 beside it); 7-5 has 6
    green. The chart draws neither hidden bar and writes the mark in its place: "*" for the 5, "<5" for the 1."""
    campaign = CampaignFactory(schools=[world.school_a1])
    for tier in ["green"] * 8 + ["yellow"] * 5 + ["orange"] * 6 + ["red"]:
        record(campaign, StudentFactory(school_class=world.class_a1_3), tier)
    for _ in range(6):
        record(campaign, StudentFactory(school_class=world.class_a1_5), "green")
    client.force_login(world.counselor_a1)
    response = client.get(reverse("screening:report", args=[campaign.pk]), {"school": world.school_a1.pk, "grade": 7})
    assert response.context["report"].rows[0].tier_cells == [8, "*", 6, "<5"]
    chart = str(response.context["insights"].tier_chart)
    marks = re.findall(r">([^<>]*)</text>", chart)
    assert marks.count("*") == 1 and marks.count("&lt;5") == 1
    assert "25.0" not in chart and "5.0" not in marks  # the hidden share (5 of 20) is nowhere


def test_a_score_histogram_writes_each_hidden_bars_mark_in_its_place():
    chart = str(histogram([0, 1, 2, 3], [9, "*", "<5", 0], title="PHQ-9", ylabel="学生"))
    assert re.findall(r">([^<>]*)</text>", chart).count("*") == 1 and ">&lt;5</text>" in chart


_students = st.lists(
    st.tuples(st.sampled_from(REPORT_TIERS), st.frozensets(st.sampled_from([1, 2, 3]))), max_size=24
)  # a class's answers: each student's tier and special groups (several or none)


@given(students=_students, school_level=st.booleans())
@settings(max_examples=300, deadline=None)
def test_the_total_less_the_students_in_no_group_is_never_a_small_count(students, school_level):
    """For any class, groups overlapping or not: in every column of the special-groups table, the row in no group is
    hidden, or the total above it is, or the two differ by 0 or by k or more. And no row of the table, nor the unprinted
    row of the students in some group, is left with one hidden cell its sum would give back."""
    counts, any_group = defaultdict(lambda: defaultdict(int)), defaultdict(int)
    for tier, groups in students:
        for group in groups or [None]:
            counts[group][tier] += 1
        any_group[tier] += 1 if groups else 0
    tiers = {t: sum(tier == t for tier, _groups in students) for t in REPORT_TIERS}
    row, total = (ReportRow(["7-3"], len(students), len(students), dict(tiers)) for _ in range(2))
    cells = _suppress_small_cells([row], total, total_too=not school_level)  # the table's, solved first
    tables = _group_tables(counts, {1: "留守儿童", 2: "单亲家庭", 3: "困境"})
    _add_groups(cells, tables, any_group)
    cells.solve()
    for i, (group, table) in enumerate(tables):
        assert sum(cells.is_hidden(("group", i, c)) for c in GROUP_COLUMNS) != 1, (group, table)
        if group is not None:
            continue
        for column in GROUP_COLUMNS:
            above = len(students) if column == "completed" else tiers[column]
            if not cells.is_hidden(("group", i, column)) and (column == "completed" or
                                                              not cells.is_hidden(total_cell(column))):  # fmt: skip
                assert not 0 < above - table[column] < cells.k, (column, tables, any_group)
    if None in counts and any(any_group.values()):
        assert sum(cells.is_hidden(_any_group(c)) for c in GROUP_COLUMNS) != 1
