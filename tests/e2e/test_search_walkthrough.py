"""In a real browser: the psychology teacher searches the case list by student number from the top bar, and the
school admin searches the student admin; the addresses the browser visits never hold the number.

Runs with the system Chromium (/usr/bin/chromium, or E2E_CHROMIUM); skipped where there is none.
"""

import re

import pytest

from tests.e2e.test_screening_walkthrough import CHROMIUM, SHOTS, sign_in, with_password
from tests.e2e.test_screening_walkthrough import browser as browser  # noqa: F401, PLC0414 (a fixture)

pytestmark = [
    pytest.mark.skipif(not CHROMIUM, reason="no system Chromium (install Debian's chromium to run browser tests)"),
    pytest.mark.django_db(transaction=True),
]


def test_searching_by_student_number_keeps_the_number_out_of_every_address(
    live_server,
    browser,
    world,
    open_case,
):
    base = live_server.url
    mine, _ = open_case(world.student_a1_3, "yellow")
    other, _ = open_case(world.student_a1_5, "orange")
    number = world.student_a1_3.student_no
    page = sign_in(browser, base, with_password(world.counselor_a1))
    visited = []
    page.on("request", lambda request: visited.append(request.url))
    page.goto(f"{base}/work/case/flows/")
    page.fill("form.case-search input[name=_search]", number)
    page.click("form.case-search button[type=submit]")
    page.wait_for_url(re.compile(r".*/work/case/flows/\?s=[\w-]+$"))
    rows = page.locator("table tbody").inner_text()
    page.screenshot(path=str(SHOTS / "search-1-cases.png"), full_page=True)
    assert f"#{mine.pk}" in rows and f"#{other.pk}" not in rows
    assert page.input_value("form.case-search input[name=_search]") == number

    admin = sign_in(browser, base, with_password(world.school_admin_a1))
    admin.on("request", lambda request: visited.append(request.url))
    admin.goto(f"{base}/admin/roster/student/")
    admin.fill("#searchbar", number)
    admin.click("#changelist-search input[type=submit]")
    admin.wait_for_url(re.compile(r".*/admin/roster/student/\?s=[\w-]+$"))
    admin.screenshot(path=str(SHOTS / "search-2-students.png"), full_page=True)
    assert admin.locator("#result_list tbody tr").count() == 1
    assert [url for url in visited if number in url] == []
