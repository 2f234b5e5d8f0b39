"""Issue 19 items 5 and 6 in a real browser, in Chinese: the receiving school's psychology teacher reads the case page
of a student who changed school (the case it follows, the story across both schools) and the individual report;
the earlier school's psychology teacher hands over the case of a student who left.

Runs with the system Chromium (/usr/bin/chromium, or E2E_CHROMIUM); skipped where there is none. Screenshots go to
$E2E_SCREENSHOTS/e2e-archive (the temp folder by default).
"""

import os
import re
import tempfile
from pathlib import Path

import pytest
from django.urls import reverse

from cases.models import CaseStatus
from roster.models import StudentStatus
from tests.cases.test_student_archive import A_SCHOOL, B_SCHOOL
from tests.cases.test_student_archive import story as story  # noqa: F401, PLC0414 (a fixture)
from tests.e2e.test_screening_walkthrough import CHROMIUM, sign_in, with_password
from tests.e2e.test_screening_walkthrough import browser as browser  # noqa: F401, PLC0414 (a fixture)
from tests.factories.cases import case_url, staffed_yellow
from tests.factories.roster import StudentFactory
from tests.workflows.test_leavers import set_status

pytestmark = [
    pytest.mark.skipif(not CHROMIUM, reason="no system Chromium (install Debian's chromium to run browser tests)"),
    pytest.mark.django_db(transaction=True),
]
SHOTS = Path(os.environ.get("E2E_SCREENSHOTS", tempfile.gettempdir())) / "e2e-archive"


def test_the_receiving_school_reads_the_students_story_across_both_schools(live_server, browser, world, story):
    SHOTS.mkdir(parents=True, exist_ok=True)
    base = live_server.url
    page = sign_in(browser, base, with_password(world.counselor_b1))
    page.goto(f"{base}{case_url(story['process'])}")
    links = page.locator("#case-links").inner_text()
    assert f"接续{A_SCHOOL}的个案" in links  # the earlier case: a line, no link
    archive = page.locator("#case-archive").inner_text()
    assert A_SCHOOL in archive and B_SCHOOL in archive and "2025-2026学年" in archive and "学生转学" in archive
    page.screenshot(path=str(SHOTS / "archive-1-case-page.png"), full_page=True)
    page.click("#student-report-link")
    page.wait_for_url(re.compile(rf".*/reports/students/{story['student'].pk}/$"))
    report = page.locator(".individual-archive").inner_text()
    assert "内容不在您的查看范围内" in report and "2026秋季测评" in report
    page.screenshot(path=str(SHOTS / "archive-2-report.png"), full_page=True)


def test_a_leavers_case_is_handed_over_from_its_task(live_server, browser, world, open_case):
    SHOTS.mkdir(parents=True, exist_ok=True)
    base = live_server.url
    student = StudentFactory(school_class=world.class_a1_3, name="李小红")
    case, process = open_case(student, "yellow")
    staffed_yellow(world, process)
    set_status(student, StudentStatus.TRANSFERRED)
    page = sign_in(browser, base, with_password(world.counselor_a1))
    page.goto(f"{base}{case_url(process)}")
    assert "计时已于" in page.locator("#case-paused").inner_text()
    page.screenshot(path=str(SHOTS / "archive-3-paused-case.png"), full_page=True)
    page.locator("#open-steps a", has_text="移交或结案").click()
    page.wait_for_url(re.compile(r".*/hand_over/\d+/execute/$"))
    page.check("input[name=outcome][value=handed_over]")
    page.fill("input[name=institution]", "外省某中学")
    page.fill("textarea[name=note]", "已将档案寄送对方学校心理教师")
    page.screenshot(path=str(SHOTS / "archive-4-hand-over.png"), full_page=True)
    page.click("#step-submit")
    page.wait_for_url(re.compile(r".*/work/case/inbox/$"))
    case.refresh_from_db()
    assert case.status == CaseStatus.TRANSFERRED
    page.goto(f"{base}{reverse('reports:student_report', args=[student.pk])}")
    assert "已转出" in page.locator(".individual-cases").inner_text()
