"""Issue 6's acceptance, in a real browser: the district auditor signs in, finds a case of a school of the district
from the top bar's case list, reads who viewed it (the school's psychology teacher, and their own earlier visit),
and exports the review as XLSX.

Runs with the system Chromium (/usr/bin/chromium, or E2E_CHROMIUM); skipped where there is none.
"""

import re

import openpyxl
import pytest

from roster.models import AccessLogEntry
from tests.e2e.test_screening_walkthrough import CHROMIUM, SHOTS, sign_in, with_password
from tests.e2e.test_screening_walkthrough import browser as browser  # noqa: F401, PLC0414 (a fixture)
from workflows.flows import CaseFlow

pytestmark = [
    pytest.mark.skipif(not CHROMIUM, reason="no system Chromium (install Debian's chromium to run browser tests)"),
    pytest.mark.django_db(transaction=True),
]


def test_the_district_auditor_reads_who_viewed_a_case_and_exports_the_review(
    live_server,
    browser,
    world,
    open_case,
    tmp_path,
):
    base = live_server.url
    case, process = open_case(world.student_a1_3, "orange")
    case_page = CaseFlow.instance.reverse("process_detail", args=[process.pk])
    # The school's psychology teacher reads the case first.
    teacher = sign_in(browser, base, with_password(world.counselor_a1))
    teacher.goto(f"{base}{case_page}")
    assert "王小明" in teacher.content()

    page = sign_in(browser, base, with_password(world.auditor_district_a))
    page.click("a.case-list-link")
    page.wait_for_url(re.compile(r".*/work/case/flows/$"))
    row = page.locator("table tbody tr", has_text=f"#{case.pk}")
    assert world.school_a1.name in row.inner_text() and "王*明" in row.inner_text()  # whose case, name masked
    page.screenshot(path=str(SHOTS / "audit-1-cases.png"), full_page=True)
    row.locator("a", has_text=f"#{case.pk}").click()
    page.wait_for_url(re.compile(rf".*{case_page}$"))
    page.locator("a", has_text="审计回顾").click()
    page.wait_for_url(re.compile(r".*/review/$"))
    readers = page.locator("#review").inner_text()
    page.screenshot(path=str(SHOTS / "audit-2-review.png"), full_page=True)
    counselor, auditor = world.counselor_a1.get_short_name(), world.auditor_district_a.get_short_name()
    assert counselor in readers and "心理教师" in readers  # who read it, by name, with their role
    assert auditor in readers  # their own visit of the case page, a moment ago

    page.fill("input[name=person]", "counselor_a1")
    page.click("#review-filter")
    page.wait_for_url(re.compile(r".*person=counselor_a1.*"))
    assert auditor not in page.locator("#review").inner_text()

    with page.expect_download() as download:
        page.click("#review-export")
    saved = tmp_path / "review.xlsx"
    download.value.save_as(saved)
    rows = list(openpyxl.load_workbook(saved).active.iter_rows(values_only=True))
    assert rows[0][:3] == ("时间", "办理人", "类型")
    assert {row[1] for row in rows[1:]} == {counselor}  # the filter holds in the export
    assert AccessLogEntry.objects.filter(actor="auditor_district_a", action="export", object_ids=str(case.pk)).exists()
