"""Small-cell suppression (issue 7 §2): below the school level a tier count of fewer than k students is "<k", and a
second cell is hidden wherever one hidden cell could be worked back from a row's or a column's sum."""

import pytest
from django.urls import reverse
from hypothesis import given, settings
from hypothesis import strategies as st

from screening.reports import REPORT_TIERS
from screening.suppression import CellSet, small_cells, suppress_table
from tests.factories.roster import SchoolClassFactory, StudentFactory
from tests.factories.screening import CampaignFactory
from tests.screening.test_reports import record, sheet_rows

COLUMNS = ("green", "yellow", "orange", "red")


def test_four_is_small_five_is_not_and_zero_describes_nobody():
    assert small_cells({"green": 5, "yellow": 4, "orange": 0, "red": 1}, 5) == {"yellow", "red"}


def test_a_hidden_count_reads_under_k_only_when_it_is():
    cells = CellSet(5)
    for key, n in {"green": 30, "yellow": 9, "orange": 6, "red": 2}.items():
        cells.add(key, n)
    cells.line(["green", "yellow", "orange", "red"], size=47)
    cells.solve()
    # Red (2) is small; its partner, orange (6), is not: "<5" would be a false number, "*" makes no claim.
    assert [cells.mark(key) for key in ("green", "yellow", "orange", "red")] == [None, None, "*", "<5"]


def test_one_hidden_cell_in_a_row_takes_the_smallest_other_with_it():
    hidden, _ = suppress_table([{"green": 30, "yellow": 6, "orange": 3, "red": 0}], COLUMNS, 5)
    assert hidden == [{"orange", "red"}]  # red (0) hidden too: 30 + 6 + ? + ? = completed bounds, never solves


def test_one_hidden_cell_in_a_column_under_a_visible_total_takes_the_smallest_other_row_with_it():
    rows = [
        {"green": 20, "yellow": 3, "orange": 2, "red": 0},  # yellow and orange small: the row is safe as is
        {"green": 20, "yellow": 9, "orange": 6, "red": 0},
        {"green": 20, "yellow": 7, "orange": 8, "red": 0},
    ]
    hidden, total_hidden = suppress_table(rows, COLUMNS, 5)
    # Yellow and orange columns each had one hidden cell: the smallest other row's cell goes with it (row 2's
    # orange, row 3's yellow); which leaves rows 2 and 3 with one hidden cell each: their red (0) goes too.
    assert hidden == [{"yellow", "orange"}, {"orange", "red"}, {"yellow", "red"}]
    assert total_hidden == set()


table = st.lists(st.fixed_dictionaries({column: st.integers(0, 12) for column in COLUMNS}), min_size=1, max_size=6)


@settings(max_examples=300, deadline=None)
@given(rows=table, k=st.integers(2, 6), total_too=st.booleans())
def test_no_hidden_cell_can_be_worked_back_from_a_sum(rows, k, total_too):
    total = {c: sum(row[c] for row in rows) for c in COLUMNS}
    hidden, total_hidden = suppress_table(rows, COLUMNS, k, total=total if total_too else None)
    for row, row_hidden in zip(rows, hidden, strict=True):
        assert small_cells(row, k) <= row_hidden  # every small cell hidden
        assert len(row_hidden) != 1  # never alone in its row (the completed count is shown)
    if total_too:
        assert small_cells(total, k) <= total_hidden and len(total_hidden) != 1
    if len(rows) == 1 and not total_too:
        return  # one grade under a visible school total: the school's numbers are public at that level anyway
    for column in COLUMNS:
        if total_too and column in total_hidden:
            continue  # the column's sum is hidden: nothing to subtract from
        assert sum(column in row_hidden for row_hidden in hidden) != 1


# --- In the report --------------------------------------------------------------------------------------------


@pytest.fixture
def counted(world):
    """School A1 grade 7, counted by hand: 7-3 has 5 green and 4 yellow, 7-5 5 green and 5 yellow, 7-6 5 green and
    1 yellow (25 results). School A2 has one red pupil: a school's numbers are never suppressed."""
    campaign = CampaignFactory(schools=[world.school_a1, world.school_a2])
    class_7_6 = SchoolClassFactory(school=world.school_a1, grade=7, number=6)
    for school_class, yellow in ((world.class_a1_3, 4), (world.class_a1_5, 5), (class_7_6, 1)):
        for tier in ["green"] * 5 + ["yellow"] * yellow:
            record(campaign, StudentFactory(school_class=school_class), tier)
    record(campaign, world.student_a2, "red")
    return campaign


def cells(report):
    return [(r.labels[-1], r.tier_cells) for r in report.rows], report.total.tier_cells


def test_a_class_report_shows_four_as_under_five_and_five_as_five(client, world, counted):
    client.force_login(world.counselor_a1)
    url = reverse("screening:report", args=[counted.pk])
    response = client.get(url, {"school": world.school_a1.pk, "grade": 7})
    rows, total = cells(response.context["report"])
    assert [cells for _, cells in rows] == [
        [5, "<5", "<5", 0],  # 4 yellow hidden, with orange (0) beside it so the row's sum cannot give it back
        [5, 5, 0, 0],  # exactly five: shown
        [5, "<5", "<5", 0],
    ]
    assert total == [15, 10, 0, 0]  # the grade: 10 yellow; 10 - 5 leaves two hidden cells, never one
    page = response.content.decode()
    assert "&lt;5" in page
    # The export says the same.
    exported = sheet_rows(client.get(reverse("screening:report_xlsx", args=[counted.pk]),
                                     {"school": world.school_a1.pk, "grade": 7}))  # fmt: skip
    assert [list(row[-4:]) for row in exported[1:-1]] == [[5, "<5", "<5", 0], [5, 5, 0, 0], [5, "<5", "<5", 0],
                                                           [15, 10, 0, 0]]  # fmt: skip
    assert exported[-1][0].startswith("<5：少于5名学生；*：")  # the marks' legend, as on the page


def test_the_threshold_is_a_setting(client, world, counted, settings):
    settings.REPORT_MIN_CELL = 6
    client.force_login(world.counselor_a1)
    response = client.get(reverse("screening:report", args=[counted.pk]), {"school": world.school_a1.pk, "grade": 7})
    rows, _ = cells(response.context["report"])
    assert [cells for _, cells in rows] == [["<6", "<6", 0, 0]] * 3  # five is too few now


def test_school_and_district_rows_are_never_suppressed(client, world, counted):
    client.force_login(world.centre_district_a)
    response = client.get(reverse("screening:report", args=[counted.pk]), {"district": world.district_a.pk})
    rows, total = cells(response.context["report"])
    assert rows == [(world.school_a1.name, [15, 10, 0, 0]), (world.school_a2.name, [0, 0, 0, 1])]
    assert total == [15, 10, 0, 1]
    assert REPORT_TIERS == ("green", "yellow", "orange", "red")


@pytest.fixture
def fives(world):
    """School A1 grade 7, by hand: 7-3 has 8 green, 5 yellow, 6 orange and 1 red; 7-5 has 6 green. The grade's
    yellow is exactly 5."""
    campaign = CampaignFactory(schools=[world.school_a1])
    for tier in ["green"] * 8 + ["yellow"] * 5 + ["orange"] * 6 + ["red"]:
        record(campaign, StudentFactory(school_class=world.class_a1_3), tier)
    for _ in range(6):
        record(campaign, StudentFactory(school_class=world.class_a1_5), "green")
    return campaign


def test_a_count_of_five_hidden_beside_a_small_one_reads_star_never_under_five(client, world, fives):
    client.force_login(world.counselor_a1)
    params = {"school": world.school_a1.pk, "grade": 7}
    response = client.get(reverse("screening:report", args=[fives.pk]), params)
    rows, total = cells(response.context["report"])
    # The one red pupil is "<5"; the smallest other count of its row (and of the grade's), yellow 5, goes with it.
    assert [cells for _, cells in rows] == [[8, "*", 6, "<5"], [6, 0, 0, 0]]
    assert total == [14, "*", 6, "<5"]
    page = response.content.decode()
    table = page.split('class="data report"')[1].split("</table>")[0]
    assert table.count(">*<") == 2 and table.count(">&lt;5<") == 2
    assert "&lt;5：少于5名学生；*：为防止由其他数字推算出小数目而隐去" in page
    exported = sheet_rows(client.get(reverse("screening:report_xlsx", args=[fives.pk]), params))
    assert [list(row[-4:]) for row in exported[1:-1]] == [[8, "*", 6, "<5"], [6, 0, 0, 0], [14, "*", 6, "<5"]]
    assert exported[-1][0] == "<5：少于5名学生；*：为防止由其他数字推算出小数目而隐去"
