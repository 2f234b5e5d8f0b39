"""Issue 5's acceptance, in a real browser: a psychology teacher signs in, opens the task inbox from the top bar,
completes the interview of a case, and the case page's timeline shows it.

Runs with the system Chromium (/usr/bin/chromium, or E2E_CHROMIUM); skipped where there is none.
"""

import re

import pytest

from cases.models import InterviewNote
from tests.e2e.test_screening_walkthrough import CHROMIUM, SHOTS, sign_in, with_password
from tests.e2e.test_screening_walkthrough import browser as browser  # noqa: F401, PLC0414 (a fixture)
from tests.factories.cases import active, staffed_yellow
from workflows.flows import CaseFlow

pytestmark = [
    pytest.mark.skipif(not CHROMIUM, reason="no system Chromium (install Debian's chromium to run browser tests)"),
    pytest.mark.django_db(transaction=True),
]


def test_a_psychology_teacher_completes_an_interview_from_the_inbox(live_server, browser, world, open_case):
    base = live_server.url
    case, process = open_case(world.student_a1_3, "yellow")
    staffed_yellow(world, process)
    interview = active(process, CaseFlow.interview)
    with_password(world.counselor_a1)

    page = sign_in(browser, base, world.counselor_a1)
    page.click("a.case-inbox-link")
    page.wait_for_url(re.compile(r".*/work/case/inbox/$"))
    assert "我的待办" in page.content() or "我的任务" in page.content()
    page.screenshot(path=str(SHOTS / "case-1-inbox.png"), full_page=True)
    row = page.locator("table tr", has_text="访谈学生")
    assert row.count() == 1
    assert "王*明" in row.inner_text()  # the list masks the name
    row.locator("a", has_text="访谈学生").click()
    page.wait_for_url(re.compile(rf".*/interview/{interview.pk}/execute/$"))
    assert "王小明" in page.content()  # the team's own step shows the name
    page.fill("textarea[name=note]", "学生近期失眠，同意每周面谈一次。")
    page.screenshot(path=str(SHOTS / "case-2-interview.png"), full_page=True)
    page.click("#step-submit")
    page.wait_for_url(re.compile(r".*/work/case/inbox/$"))
    assert InterviewNote.objects.get(case=case).note == "学生近期失眠，同意每周面谈一次。"

    page.goto(f"{base}{CaseFlow.instance.reverse('process_detail', args=[process.pk])}")
    timeline = page.locator("#timeline").inner_text()
    page.screenshot(path=str(SHOTS / "case-3-case-page.png"), full_page=True)
    assert "访谈记录" in timeline and "访谈学生" in timeline
    assert world.counselor_a1.username in timeline or (world.counselor_a1.get_full_name() in timeline)
