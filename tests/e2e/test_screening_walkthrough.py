"""Issue 4's acceptance, in a real browser: a city admin creates a campaign in the admin, the school admin prints
the codes of a class, a student answers on a phone-sized window, the psychology teacher sees the result in the
flagged list and the report.

Runs with the system Chromium (/usr/bin/chromium, or E2E_CHROMIUM); skipped where there is none.
"""

import os
import re
import shutil
import tempfile
from pathlib import Path

import pytest

from roster.models import AccessCode
from screening.models import Campaign, ScreeningResult
from tests.factories.screening import shipped_definitions_loaded

CHROMIUM = os.environ.get("E2E_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
playwright_api = pytest.importorskip("playwright.sync_api")
pytestmark = [
    pytest.mark.skipif(not CHROMIUM, reason="no system Chromium (install Debian's chromium to run browser tests)"),
    pytest.mark.django_db(transaction=True),
]
SHOTS = Path(os.environ.get("E2E_SCREENSHOTS", tempfile.gettempdir())) / "e2e-screening"
PASSWORD = "walk-through-2026"  # noqa: S105 (a test account)


@pytest.fixture
def browser(monkeypatch):
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")  # this thread runs Playwright's loop and the ORM
    SHOTS.mkdir(parents=True, exist_ok=True)
    with playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
        )
        yield browser
        browser.close()


def sign_in(browser, base, user):
    """A fresh desktop window signed in as `user`."""
    page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
    page.goto(f"{base}/accounts/login/")
    page.fill("input[name=username]", user.username)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit], input[type=submit]")
    page.wait_for_url(f"{base}/")
    return page


def with_password(user):
    user.set_password(PASSWORD)
    user.save()
    return user


def test_campaign_codes_phone_answers_flagged_list_and_report(live_server, browser, world):
    shipped_definitions_loaded()
    base = live_server.url
    for persona in ("city_admin", "school_admin_a1", "counselor_a1", "homeroom_a1_3"):
        with_password(getattr(world, persona))

    # 1. The city admin creates a campaign over the whole city in the admin.
    page = sign_in(browser, base, world.city_admin)
    page.goto(f"{base}/admin/screening/campaign/add/")
    page.fill("input[name=name]", "2026秋季筛查")
    page.fill("input[name=school_year]", "2026-2027")
    page.select_option("select[name=term]", "autumn")
    page.click("input[name=opens_at_0] ~ span a >> text=/今天|Today/")
    page.click("input[name=opens_at_1] ~ span a >> text=/现在|Now/")
    page.fill("input[name=closes_at_0]", "2099-01-31")
    page.fill("input[name=closes_at_1]", "18:00:00")
    page.screenshot(path=str(SHOTS / "1-campaign-form.png"), full_page=True)
    page.click("input[name=_save]")
    page.wait_for_url(re.compile(r".*/admin/screening/campaign/$"))
    campaign = Campaign.objects.get()
    assert set(campaign.schools.all()) == {world.school_a1, world.school_a2, world.school_b1}

    # The schedule opens it (the worker would run this within a minute).
    from screening.campaigns import campaigns_open_and_close

    campaigns_open_and_close()

    # 2. The school admin issues and prints the codes of class 7-3.
    page = sign_in(browser, base, world.school_admin_a1)
    page.goto(f"{base}/admin/roster/schoolclass/")
    page.check(f"input[name=_selected_action][value='{world.class_a1_3.pk}']")
    page.select_option("select[name=action]", "issue_access_codes_action")
    page.click("button[name=index]")
    page.wait_for_url(re.compile(r".*/admin-tools/access-slips/.*"))
    page.screenshot(path=str(SHOTS / "2-slips.png"), full_page=True)
    printed = page.locator(".slip .code").first.inner_text()
    assert printed.replace(" ", "") == AccessCode.objects.get(student=world.student_a1_3).code

    # 3. The student answers on a phone-sized window: code, "this is me", three pages, submit.
    phone = browser.new_context(viewport={"width": 375, "height": 740}, is_mobile=True, has_touch=True)
    student = phone.new_page()
    student.goto(f"{base}/s/")
    student.fill("#code", printed.lower())
    student.click("button[type=submit]")
    assert "王*明" in student.content()
    student.screenshot(path=str(SHOTS / "3-confirm.png"), full_page=True)
    student.click("button[value=yes]")
    # The form page's script hides parts 2 and 3 once it has loaded: wait for that, not for the click to return.
    playwright_api.expect(student.locator("#step-2")).to_be_hidden()
    assert student.locator("#progress-text").inner_text() == "第 1 部分，共 3 部分"
    for n in range(1, 10):
        student.check(f"input[name=PHQ9-{n}][value='1']")
    student.screenshot(path=str(SHOTS / "4-phq9.png"), full_page=True)
    student.locator("#step-1 .js-next").click()
    for n in range(1, 8):
        student.check(f"input[name=GAD7-{n}][value='0']")
    student.locator("#step-2 .js-next").click()
    assert student.locator(".item[data-name=ASQ-5]").is_hidden()  # asked only after a yes
    student.locator("#step-3 .js-submit").click()  # incomplete: stays, marks what is missing
    assert student.locator("#step-3 .step-error").is_visible()
    student.check("input[name=ASQ-1][value=yes]")
    for n in range(2, 5):
        student.check(f"input[name=ASQ-{n}][value=no]")
    assert student.locator(".item[data-name=ASQ-5]").is_visible()
    student.check("input[name=ASQ-5][value=yes]")
    student.screenshot(path=str(SHOTS / "5-asq.png"), full_page=True)
    student.locator("#step-3 .js-submit").click()
    student.wait_for_url(f"{base}/s/done/")
    assert "12356" in student.content() and "12355" in student.content()
    student.screenshot(path=str(SHOTS / "6-thanks.png"), full_page=True)
    result = ScreeningResult.objects.get()
    assert (result.student, result.tier) == (world.student_a1_3, "red")

    # 4. The psychology teacher sees the student in the flagged list and the report.
    page = sign_in(browser, base, world.counselor_a1)
    page.goto(f"{base}/screening/campaigns/")
    page.click(f"a[href='/screening/campaigns/{campaign.pk}/flagged/']")
    flagged = page.content()
    assert world.student_a1_3.student_no in flagged and "王*明" in flagged and "王小明" not in flagged
    page.screenshot(path=str(SHOTS / "7-flagged.png"), full_page=True)
    page.goto(f"{base}/screening/campaigns/{campaign.pk}/report/")
    page.screenshot(path=str(SHOTS / "8-report.png"), full_page=True)
    report = page.locator("table").first.inner_text()
    assert "50.0%" in report  # 1 of the 2 invited students of the school answered

    # 5. The homeroom teacher sees completion of the class, never the tier.
    page = sign_in(browser, base, world.homeroom_a1_3)
    page.goto(f"{base}/screening/campaigns/{campaign.pk}/report/")
    page.screenshot(path=str(SHOTS / "9-homeroom-report.png"), full_page=True)
    shown = page.locator("main").inner_text()
    assert "100.0%" in shown and "红色" not in shown and "风险等级" not in shown
