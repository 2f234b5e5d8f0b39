"""Issue 20's acceptance, in a real browser, as new users would walk it: a subject teacher raises a concern on a
phone-sized screen (two taps); the school's psychology teacher finds it at the top of the signal queue and triages it
into an orange case, and the teacher is told it was seen (a masked name, nothing clinical); the homeroom teacher logs
a home visit on the phone; the district centre reads the special-groups ledger and the home-visit coverage of its
schools. Screenshots in E2E_SCREENSHOTS/e2e-care.

Runs with the system Chromium (/usr/bin/chromium, or E2E_CHROMIUM); skipped where there is none.
"""

import os
import re
import tempfile
from pathlib import Path

import pytest

from cases import concerns
from cases.models import Case, HomeVisit, Signal, SignalSource, SignalStatus
from roster.models import Notification, SpecialGroup
from roster.roles import Role
from tests.e2e.test_screening_walkthrough import CHROMIUM, PASSWORD, sign_in, with_password
from tests.e2e.test_screening_walkthrough import browser as browser  # noqa: F401, PLC0414 (a fixture)
from tests.factories.roster import staff_with_role
from workflows import signals

pytestmark = [
    pytest.mark.skipif(not CHROMIUM, reason="no system Chromium (install Debian's chromium to run browser tests)"),
    pytest.mark.django_db(transaction=True),
]
SHOTS = Path(os.environ.get("E2E_SCREENSHOTS", tempfile.gettempdir())) / "e2e-care"
PHONE = {"width": 390, "height": 844}


def sign_in_on_phone(browser, base, user):
    """A fresh phone-sized window (390×844, touch) signed in as `user`."""
    page = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True).new_page()
    page.goto(f"{base}/accounts/login/")
    page.fill("input[name=username]", user.username)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit], input[type=submit]")
    page.wait_for_url(f"{base}/")
    return page


def shot(page, name):
    page.screenshot(path=str(SHOTS / name), full_page=True)


def test_a_concern_on_a_phone_becomes_a_case_a_visit_is_logged_and_the_district_sees_ledger_and_coverage(
    live_server, browser, world
):
    SHOTS.mkdir(parents=True, exist_ok=True)
    base = live_server.url
    xiaoming = world.student_a1_3
    subject = with_password(staff_with_role(Role.SUBJECT_TEACHER, world.class_a1_3, username="subject_a1_3",
                                            name="李老师"))  # fmt: skip
    for persona in (world.counselor_a1, world.homeroom_a1_3, world.centre_district_a):
        with_password(persona)
    # A transactional test's flush empties the migrations' vocabulary: put the ledger group back where it is gone.
    left_behind, _created = SpecialGroup.objects.update_or_create(
        code="left_behind", defaults={"name": "留守儿童", "ledger": True, "grade": None, "active": True}
    )
    xiaoming.special_groups.add(left_behind)
    # Already waiting, raised earlier, less urgent: the new orange concern must still come first.
    concerns.concern_raise(world.counselor_a1, world.student_a1_5, what_was_seen=["withdrawn"], urgency="watch")

    # 1. The subject teacher, on a phone: 上报关注 in the header, the student, one chip, 尽快.
    phone = sign_in_on_phone(browser, base, subject)
    shot(phone, "1-subject-home.png")
    phone.click("a.concern-link")
    phone.wait_for_url(re.compile(r".*/care/concern/new/$"))
    phone.locator("#care-pick a", has_text="王小明").click()
    phone.wait_for_url(re.compile(rf".*/care/concern/new/\?student={xiaoming.pk}$"))
    assert "王小明" in phone.locator("#care-student").inner_text()
    phone.locator("#care-seen label", has_text="情绪低落").click()  # tap the chip
    assert phone.locator("#care-seen input[value=mood]").is_checked()
    shot(phone, "2-concern-two-taps.png")
    phone.click("#care-urgency button[value=soon]")  # the second tap sends it
    phone.wait_for_url(re.compile(r".*/care/concern/mine/$"))
    signal = Signal.objects.get(student=xiaoming)
    assert (signal.source, signal.tier, signal.status, signal.raised_by) == (
        SignalSource.CONCERN, "orange", SignalStatus.OPEN, subject,
    )  # fmt: skip
    assert phone.locator("#my-concerns .seen-no").count() == 1 and phone.locator("#my-concerns .seen-yes").count() == 0
    assert "王*明" in phone.locator("#my-concerns").inner_text()
    shot(phone, "3-my-concerns-not-yet-seen.png")

    # 2. The psychology teacher: 关注信号, the orange concern on top, opened and triaged into an orange case.
    desk = sign_in(browser, base, world.counselor_a1)
    desk.click("a.signals-link")
    desk.wait_for_url(re.compile(r".*/care/signals/$"))
    rows = desk.locator("#signal-queue tbody tr.signal-row")
    assert rows.count() == 2
    top = rows.first
    assert "王*明" in top.inner_text() and top.locator(".tier-orange").count() == 1
    assert "王小明" not in desk.locator("#signal-queue").inner_text()
    shot(desk, "4-signal-queue.png")
    top.locator("a").click()
    desk.wait_for_url(re.compile(rf".*/care/signals/{signal.pk}/$"))
    assert desk.locator("#triage-open select[name=open-tier]").input_value() == "orange"
    desk.fill("#triage-open textarea[name=open-note]", "任课教师反映近期情绪低落，约谈")
    shot(desk, "5-signal-triage.png")
    desk.click("#triage-open button[type=submit]")
    desk.wait_for_url(re.compile(r".*/care/signals/$"))
    signal.refresh_from_db()
    case = Case.objects.get(student=xiaoming)
    assert (signal.status, signal.case, signal.decided_by, case.tier) == (
        SignalStatus.CASE_OPENED, case, world.counselor_a1, "orange",
    )  # fmt: skip
    assert desk.locator("#signal-queue tbody tr.signal-row").count() == 1  # only the yellow one still waits
    shot(desk, "6-queue-after-triage.png")

    # The subject teacher learns it was seen: my concerns, and a notification with a masked name and nothing clinical.
    phone.reload()
    assert phone.locator("#my-concerns .seen-yes").count() == 1 and phone.locator("#my-concerns .seen-no").count() == 0
    shot(phone, "7-my-concerns-seen.png")
    (note,) = Notification.objects.filter(recipient=subject, kind=signals.SEEN_KIND)
    phone.click("a.notifications-link")
    phone.wait_for_url(re.compile(r".*/notifications/$"))
    shown = phone.locator("main").inner_text()
    assert note.title in shown and "王*明" in shown and "王小明" not in shown
    for clinical in ("橙", "个案", "开案", "约谈", "情绪低落"):
        assert clinical not in shown, clinical
    shot(phone, "8-subject-notification.png")

    # 3. The homeroom teacher, on a phone: 我的学生 → 记录家访.
    homeroom = sign_in_on_phone(browser, base, world.homeroom_a1_3)
    homeroom.click("a.my-students-link")
    homeroom.wait_for_url(re.compile(r".*/care/students/$"))
    shot(homeroom, "9-homeroom-my-students.png")
    homeroom.locator(f"li.care-student[data-student='{xiaoming.pk}'] a.visit-link").click()
    homeroom.wait_for_url(re.compile(rf".*/care/students/{xiaoming.pk}/visit/$"))
    homeroom.fill("input[name=met]", "祖父母")
    homeroom.fill("textarea[name=note]", "父母在外务工，祖父母照顾，家中整洁")
    shot(homeroom, "10-home-visit-form.png")
    homeroom.click("#care-save")
    homeroom.wait_for_url(re.compile(r".*/care/students/$"))
    visit = HomeVisit.objects.get(student=xiaoming)
    assert (visit.author, visit.school, visit.met, visit.signal) == (
        world.homeroom_a1_3,
        world.school_a1,
        "祖父母",
        None,
    )
    row = homeroom.locator(f"li.care-student[data-student='{xiaoming.pk}'] .last-visit")
    assert row.inner_text() == visit.visited_on.isoformat()
    shot(homeroom, "11-visit-recorded.png")

    # 4. The district centre: the special-groups ledger (报表 → 特殊群体台账), then the coverage of its schools.
    centre = sign_in(browser, base, world.centre_district_a)
    centre.click("a.dashboard-link")
    centre.click("a[href='/reports/ledgers/groups/']")
    centre.wait_for_url(re.compile(r".*/reports/ledgers/groups/$"))
    ledger = centre.locator("table.ledger-groups tbody").inner_text()
    assert "王*明" in ledger and "留守儿童" in ledger and xiaoming.student_no in ledger and "王小明" not in ledger
    shot(centre, "12-centre-group-ledger.png")
    centre.goto(f"{base}/")
    centre.click("#care-links a[href='/care/coverage/']")
    centre.wait_for_url(re.compile(r".*/care/coverage/$"))
    # By hand: school A1 has two students (7-3 and 7-5), one visited; school A2 has one, none visited.
    assert centre.locator(f"#coverage tr[data-node='{world.school_a1.pk}'] td.visited").inner_text().startswith("1 / 2")
    assert centre.locator(f"#coverage tr[data-node='{world.school_a2.pk}'] td.visited").inner_text().startswith("0 / 1")
    assert centre.locator("#coverage tfoot th.visited").inner_text().startswith("1 / 3")
    assert world.school_b1.name not in centre.locator("#coverage").inner_text()  # another district's school
    shot(centre, "13-centre-coverage.png")
