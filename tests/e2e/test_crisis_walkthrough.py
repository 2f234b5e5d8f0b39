"""Issue 16's acceptance, in a real browser: the psychology teacher's inbox is open in one window when a student
answers "yes" to the acute suicide item on a phone-sized window; the red banner appears without a reload within
15 s, one click opens the alert, "我来处理" opens the triage and stops the escalation; the homeroom teacher who
proctors the class is told to keep the student, and nothing more (no tier, score or answer).

The school's hours are set to the whole day and today is marked a school day, so the walk-through does not depend on
the wall clock (out of hours an alert starts at the district duty and no proctor is told).
Runs with the system Chromium (/usr/bin/chromium, or E2E_CHROMIUM); skipped where there is none.
Screenshots: $E2E_SCREENSHOTS/e2e-crisis (default /tmp/e2e_crisis).
"""

import datetime
import re

import pytest
from django.utils import timezone

from cases import alerts
from cases.models import AlertStatus, CrisisAlert, CrisisAlertStep
from roster import duty
from roster.access_codes import access_codes_issue
from roster.models import CalendarDayKind, DutyKind, Notification, Student
from screening.definitions import shipped_instruments
from tests.e2e.test_screening_walkthrough import CHROMIUM, SHOTS, playwright_api, sign_in, with_password
from tests.e2e.test_screening_walkthrough import browser as browser  # noqa: F401, PLC0414 (a fixture)
from tests.factories.screening import CampaignFactory

pytestmark = [
    pytest.mark.skipif(not CHROMIUM, reason="no system Chromium (install Debian's chromium to run browser tests)"),
    pytest.mark.django_db(transaction=True),
]
CRISIS_SHOTS = SHOTS.parent / "e2e_crisis"
KEEP = "请留下该生，心理教师马上到"
expect = playwright_api.expect


def all_day_school_day(world):
    """School A1 keeps school hours all day today, today is a school day, and its psychology teacher is on duty."""
    school = world.school_a1
    school.day_starts, school.day_ends = datetime.time(0, 0), datetime.time(23, 59, 59)
    school.save(update_fields=["day_starts", "day_ends"])
    today = timezone.localdate()
    duty.calendar_day_set(None, district=world.district_a, day=today, kind=CalendarDayKind.WORKDAY, name="e2e")
    duty.duty_slot_add(None, where=school, user=world.counselor_a1, kind=DutyKind.PSYCHOLOGY_TEACHER,
                       weekday=today.weekday(), starts=datetime.time(0, 0), ends=datetime.time(23, 59, 59))  # fmt: skip
    assert duty.in_school_hours(school)


def result_bearing_words() -> list[str]:
    """What a proctor must never read: tier words, instrument names and every item's text (in Chinese)."""
    words = ["红", "橙", "黄色", "绿色", "red", "orange", "yellow", "风险", "得分", "分数", "PHQ", "GAD", "ASQ"]
    for instrument in shipped_instruments().values():
        words += [item.text.get("zh-hans", "") for item in instrument.items]
    return [w for w in words if w]


def assert_nothing_result_bearing(text: str) -> None:
    shown = [word for word in result_bearing_words() if word.lower() in text.lower()]
    assert not shown, f"the proctor reads {shown!r}"


def test_a_critical_answer_reaches_the_inbox_live_and_the_proctor_only_keeps_the_student(live_server, browser, world):  # noqa: F811
    base = live_server.url
    CRISIS_SHOTS.mkdir(parents=True, exist_ok=True)
    all_day_school_day(world)
    campaign = CampaignFactory(schools=[world.school_a1])
    student = world.student_a1_3
    (code,) = access_codes_issue(actor=None, students=Student.objects.filter(pk=student.pk))
    for persona in ("counselor_a1", "homeroom_a1_3"):
        with_password(getattr(world, persona))

    # 1. The psychology teacher opens the task inbox and leaves it open.
    counselor = sign_in(browser, base, world.counselor_a1)
    counselor.click("a.case-inbox-link")
    counselor.wait_for_url(re.compile(r".*/work/case/inbox/$"))
    inbox_url = counselor.url
    counselor.evaluate("window.__sameDocument = true")  # gone if the page reloads or navigates
    banner = counselor.locator("#live-alerts .live-alert--crisis")
    expect(banner).to_have_count(0)
    counselor.screenshot(path=str(CRISIS_SHOTS / "1-inbox-before.png"), full_page=True)

    # 2. The student answers on a phone: ASQ item 1 yes, and the acuity item (5) yes.
    phone = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    portal = phone.new_page()
    portal.goto(f"{base}/s/")
    portal.fill("#code", code.code)
    portal.click("button[type=submit]")
    portal.click("button[value=yes]")
    expect(portal.locator("#step-2")).to_be_hidden()
    for n in range(1, 10):
        portal.check(f"input[name=PHQ9-{n}][value='0']")
    portal.locator("#step-1 .js-next").click()
    for n in range(1, 8):
        portal.check(f"input[name=GAD7-{n}][value='0']")
    portal.locator("#step-2 .js-next").click()
    portal.check("input[name=ASQ-1][value=yes]")
    for n in range(2, 5):
        portal.check(f"input[name=ASQ-{n}][value=no]")
    portal.check("input[name=ASQ-5][value=yes]")
    portal.screenshot(path=str(CRISIS_SHOTS / "2-phone-asq.png"), full_page=True)
    portal.locator("#step-3 .js-submit").click()
    portal.wait_for_url(f"{base}/s/done/")
    submitted = timezone.now()
    portal.screenshot(path=str(CRISIS_SHOTS / "3-phone-done.png"), full_page=True)
    alert = CrisisAlert.objects.get(student=student)
    assert alert.in_school_hours and alert.case_id is not None

    # 3. Without a reload, the inbox shows the red banner within 15 s.
    expect(banner).to_be_visible(timeout=15_000)
    seen = timezone.now()
    assert counselor.url == inbox_url and counselor.evaluate("window.__sameDocument === true")
    assert "王*明" in banner.inner_text() and "王小明" not in banner.inner_text()
    counselor.screenshot(path=str(CRISIS_SHOTS / "4-inbox-banner.png"), full_page=False)

    # 4. One click opens the alert; "我来处理" takes it and opens the triage.
    banner.locator("a.live-alert__open").click()
    counselor.wait_for_url(re.compile(rf".*/work/alerts/{alert.pk}/$"))
    counselor.screenshot(path=str(CRISIS_SHOTS / "5-alert-page.png"), full_page=True)
    take = counselor.locator("#take-alert")
    expect(take).to_have_text(re.compile("我来处理"))
    take.click()
    counselor.wait_for_url(re.compile(r".*triage.*"))
    # Taken: the banner leaves with the visit (Turbo keeps the script: it asks again, not after the next 10 s poll).
    expect(banner).to_have_count(0, timeout=3_000)
    counselor.screenshot(path=str(CRISIS_SHOTS / "6-triage.png"), full_page=True)
    alert.refresh_from_db()
    assert (alert.status, alert.acknowledged_by) == (AlertStatus.ACKNOWLEDGED, world.counselor_a1)

    # 5. Taken: an hour later the chain has not climbed, nobody new was told.
    steps, notices = CrisisAlertStep.objects.count(), Notification.objects.count()
    assert alerts.crisis_alerts_escalate_due(now=timezone.now() + datetime.timedelta(hours=1)) == 0
    assert (CrisisAlertStep.objects.count(), Notification.objects.count()) == (steps, notices)
    alert.refresh_from_db()
    assert alert.level == 1

    counselor.goto(f"{base}/")
    counselor.screenshot(path=str(CRISIS_SHOTS / "7-counselor-home.png"), full_page=True)

    # 6. The homeroom teacher (the class's proctor) is told to keep the student, and nothing more.
    # Two care instructions: keep the student, then who is coming (once the counselor took the alert).
    care, coming = Notification.objects.filter(recipient=world.homeroom_a1_3, kind="care_instruction").order_by("pk")
    assert KEEP in care.title and world.counselor_a1.name in coming.title
    for notice in (care, coming):
        assert_nothing_result_bearing(f"{notice.title} {notice.body}")
    assert not Notification.objects.filter(recipient=world.homeroom_a1_3).exclude(kind="care_instruction").exists()
    homeroom = sign_in(browser, base, world.homeroom_a1_3)
    care_banner = homeroom.locator("#live-alerts")
    expect(homeroom.locator("#live-alerts .live-alert--care").first).to_be_visible(timeout=15_000)
    expect(care_banner).to_contain_text(world.counselor_a1.name)  # who is coming
    expect(homeroom.locator("#live-alerts .live-alert--crisis")).to_have_count(0)
    homeroom.screenshot(path=str(CRISIS_SHOTS / "8-homeroom-home.png"), full_page=True)
    assert_nothing_result_bearing(care_banner.inner_text())
    homeroom.goto(f"{base}/notifications/")
    listing = homeroom.locator("main").inner_text()
    homeroom.screenshot(path=str(CRISIS_SHOTS / "9-homeroom-notifications.png"), full_page=True)
    assert KEEP in listing
    assert_nothing_result_bearing(listing)
    homeroom.goto(f"{base}{care.link}")
    assert f"/campaigns/{campaign.pk}/classes/{world.class_a1_3.pk}/proctor/" in homeroom.url
    row = homeroom.locator("table.proctor-table tr", has_text=student.student_no)
    expect(row).to_contain_text(KEEP)
    homeroom.screenshot(path=str(CRISIS_SHOTS / "10-homeroom-proctor.png"), full_page=True)
    assert_nothing_result_bearing(homeroom.locator("main").inner_text())
    assert_nothing_result_bearing(homeroom.locator("#live-alerts").inner_text())
    print(f"banner seen {(seen - submitted).total_seconds():.1f} s after the submit")
