"""A school move in a real browser (issue 19 items 1-2): school B1's admin imports a class list holding a student of
school A1 (same 全国学籍号), sees the move counted on the preview, finds it on the admin index and in the review list,
compares the two records side by side and confirms. Screenshots in E2E_SCREENSHOTS/moves (Chinese).

Runs with the system Chromium (/usr/bin/chromium, or E2E_CHROMIUM); skipped where there is none.
"""

import datetime
import os
import tempfile
from pathlib import Path

import pytest

from roster.identity import national_id_digest
from roster.models import MoveStatus, SchoolMove, Student
from tests.e2e.test_screening_walkthrough import CHROMIUM, sign_in, with_password
from tests.e2e.test_screening_walkthrough import browser as browser  # noqa: F401, PLC0414 (a fixture)
from tests.roster_files import STUDENT_HEADER, xlsx_bytes

pytestmark = [
    pytest.mark.skipif(not CHROMIUM, reason="no system Chromium (install Debian's chromium to run browser tests)"),
    pytest.mark.django_db(transaction=True),
]
SHOTS = Path(os.environ.get("E2E_SCREENSHOTS", tempfile.gettempdir())) / "moves"
NUMBER = "G990101201303051234"


def test_the_receiving_school_admin_confirms_a_move_found_on_import(live_server, browser, world, tmp_path):
    SHOTS.mkdir(parents=True, exist_ok=True)
    student = world.student_a1_3  # 王小明, 7年级3班 at 东湖第一中学
    Student.objects.filter(pk=student.pk).update(
        birth_date=datetime.date(2013, 3, 5), national_id_digest=national_id_digest(NUMBER), national_id_tail="1234"
    )
    roster = tmp_path / "西山中学八年级.xlsx"
    school = ["9901020001", "八年级", "2班"]
    rows = [
        [*STUDENT_HEADER, "全国学籍号"],
        [*school, "B2026001", "王小明", "女", "2013-03-05", "王大明", "13912345678", "", NUMBER],
        [*school, "B2026002", "李小红", "女", "2013-05-01", "李大红", "13912345679", "", ""],
    ]
    roster.write_bytes(xlsx_bytes(rows))
    base = live_server.url
    page = sign_in(browser, base, with_password(world.school_admin_b1))

    page.goto(f"{base}/admin/roster/importjob/add/")
    page.set_input_files("input[name=file]", str(roster))
    page.click("input[type=submit]")
    page.wait_for_selector("#preview-moved")
    assert "1 行：转学，待审核" in page.inner_text("#content-main")
    assert NUMBER not in page.content() and "••••1234" in page.inner_text("#preview-moved")
    page.screenshot(path=str(SHOTS / "1-preview.png"), full_page=True)
    page.click("input[name=_confirm]")
    page.wait_for_selector("#moves-note")
    page.screenshot(path=str(SHOTS / "2-imported.png"), full_page=True)
    assert Student.objects.filter(school=world.school_b1, student_no="B2026002").exists()
    assert not Student.objects.filter(school=world.school_b1, student_no="B2026001").exists()

    page.goto(f"{base}/admin/")
    assert "1 条待审核" in page.inner_text("#content-main")
    page.screenshot(path=str(SHOTS / "3-index.png"), full_page=True)
    page.click("text=转学（1 条待审核）")
    assert "王*明" in page.inner_text("#result_list")
    page.screenshot(path=str(SHOTS / "4-list.png"), full_page=True)
    page.click("#result_list tbody tr a")
    page.wait_for_selector("#move-compare")
    compare = page.inner_text("#move-compare")
    assert "东湖第一中学" in compare and "西山中学" in compare and "••••1234" in compare
    page.screenshot(path=str(SHOTS / "5-review.png"), full_page=True)
    page.click("input[name=_confirm]")
    page.wait_for_selector(".messagelist")
    page.screenshot(path=str(SHOTS / "6-confirmed.png"), full_page=True)
    student.refresh_from_db()
    assert (student.school, student.student_no) == (world.school_b1, "B2026001")
    assert SchoolMove.objects.get().status == MoveStatus.CONFIRMED
    page.goto(f"{base}/admin/roster/schoolmove/{SchoolMove.objects.get().pk}/history/")
    page.screenshot(path=str(SHOTS / "7-history.png"), full_page=True)
