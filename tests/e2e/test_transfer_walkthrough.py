"""档案移交 in a real browser (issue 19 item 3): an orange case's student moves from A1 to B1; B1's psychology teacher
finds the acceptance in the inbox, sees the transfer panel, accepts the case and then reads its packet (restricted
notes withheld); A1's psychology teacher then sees the case read-only. Screenshots in E2E_SCREENSHOTS/e2e-transfer.

Runs with the system Chromium (/usr/bin/chromium, or E2E_CHROMIUM); skipped where there is none.
"""

import os
import re
import tempfile
from pathlib import Path

import pytest

from cases.models import CaseTransfer, TransferStatus
from roster.roles import Role
from tests.e2e.test_screening_walkthrough import CHROMIUM, sign_in, with_password
from tests.e2e.test_screening_walkthrough import browser as browser  # noqa: F401, PLC0414 (a fixture)
from tests.factories.cases import case_url
from tests.factories.roster import staff_with_role
from tests.workflows.test_case_transfer import move, worked_orange

pytestmark = [
    pytest.mark.skipif(not CHROMIUM, reason="no system Chromium (install Debian's chromium to run browser tests)"),
    pytest.mark.django_db(transaction=True),
]
SHOTS = Path(os.environ.get("E2E_SCREENSHOTS", tempfile.gettempdir())) / "e2e-transfer"


def test_the_receiving_school_accepts_and_the_sending_school_reads_only(live_server, browser, world, open_case):
    SHOTS.mkdir(parents=True, exist_ok=True)
    base = live_server.url
    counselor_b1 = staff_with_role(Role.PSYCHOLOGY_TEACHER, world.school_b1, username="counselor_b1", name="赵老师")
    staff_with_role(Role.PRINCIPAL, world.school_b1, username="principal_b1", name="钱校长")
    staff_with_role(Role.HOMEROOM_TEACHER, world.class_b1, username="homeroom_b1", name="孙老师")
    staff_with_role(Role.DISTRICT_CENTRE, world.district_b, username="centre_district_b")
    case, process = worked_orange(world, open_case)
    move(world, world.student_a1_3, world.class_b1, world.school_admin_b1)
    with_password(counselor_b1)
    with_password(world.counselor_a1)

    page = sign_in(browser, base, counselor_b1)
    page.click("a.case-inbox-link")
    page.wait_for_url(re.compile(r".*/work/case/inbox/$"))
    row = page.locator("table tr", has_text="接收转入个案")
    assert row.count() == 1 and "王*明" in row.inner_text()
    page.screenshot(path=str(SHOTS / "1-receiver-inbox.png"), full_page=True)

    page.goto(f"{base}{case_url(process)}")
    panel = page.locator("#transfer-panel")
    assert "东湖第一中学 → 西山中学" in panel.inner_text() and "等待接收学校接收" in panel.inner_text()
    assert "同意配合" not in page.content()  # the packet opens once the case is B1's
    page.screenshot(path=str(SHOTS / "2-receiver-before-acceptance.png"), full_page=True)

    page.click("#transfer-accept")
    page.wait_for_url(re.compile(r".*/accept_transfer/\d+/execute/$"))
    page.check("input[name=confirm]")
    page.screenshot(path=str(SHOTS / "3-accept-step.png"), full_page=True)
    page.click("button[name=_case]")
    page.wait_for_url(re.compile(r".*/work/case/\d+/$"))
    assert CaseTransfer.objects.get(case=case).status == TransferStatus.ACCEPTED
    content = page.content()
    assert "同意配合" in content and "学业压力大" in content and "家庭变故" not in content
    assert "未移交" in content and page.locator("#transfer-release-request").count() == 1
    page.screenshot(path=str(SHOTS / "4-receiver-after-acceptance.png"), full_page=True)

    sender = sign_in(browser, base, world.counselor_a1)
    sender.goto(f"{base}{case_url(process)}")
    assert "只读" in sender.locator("#transfer-read-only").inner_text()
    assert "家庭变故" in sender.content()  # its own restricted note
    assert sender.locator("#transfer-release").count() == 1
    sender.screenshot(path=str(SHOTS / "5-sender-read-only.png"), full_page=True)
