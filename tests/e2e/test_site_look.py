"""One look, in a real browser at 1366x768 (issue 18, items 5 and 7): the site header's navigation stays on one row in
English for the person with the most links, its language switch works on a task page too, and the campaign form's
school picker has its label above the lists.

Runs with the system Chromium (/usr/bin/chromium, or E2E_CHROMIUM); skipped where there is none.
"""

import pytest

from tests.e2e.test_screening_walkthrough import CHROMIUM, PASSWORD, with_password
from tests.e2e.test_screening_walkthrough import browser as browser  # noqa: F401, PLC0414 (a fixture)
from workflows.flows import CaseFlow

pytestmark = [
    pytest.mark.skipif(not CHROMIUM, reason="no system Chromium (install Debian's chromium to run browser tests)"),
    pytest.mark.django_db(transaction=True),
]


def desktop(browser, base, user, language):  # noqa: F811
    context = browser.new_context(viewport={"width": 1366, "height": 768})
    context.add_cookies([{"name": "django_language", "value": language, "url": base}])
    page = context.new_page()
    page.goto(f"{base}/accounts/login/")
    page.fill("input[name=username]", user.username)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/")
    return page


def test_the_header_fits_one_row_and_switches_language_on_a_task_page(live_server, browser, world):  # noqa: F811
    page = desktop(browser, live_server.url, with_password(world.centre_district_a), "en")
    for url in ("/", CaseFlow.instance.reverse("inbox"), "/admin/"):
        page.goto(f"{live_server.url}{url}")
        links = page.locator("header .site-nav a")
        assert links.count() == 9, url  # the district centre's links, 关注信号 (issue 20) included
        tops = {round(links.nth(n).bounding_box()["y"]) for n in range(links.count())}
        assert len(tops) == 1, url  # no link wrapped to a second row
        assert page.locator("header .site-nav a[aria-current=page]").count() == 1, url

    page.goto(f"{live_server.url}{CaseFlow.instance.reverse('inbox')}")
    with page.expect_navigation():
        page.select_option("#language-select", "zh-hans")
    assert page.locator("header .site-nav a.case-inbox-link").inner_text() == "任务"


def test_the_campaign_forms_school_picker_has_its_label_above_it(live_server, browser, world):  # noqa: F811
    page = desktop(browser, live_server.url, with_password(world.centre_district_a), "zh-hans")
    page.goto(f"{live_server.url}/admin/screening/campaign/add/")
    label = page.locator(".field-chosen_schools label[for=id_chosen_schools]").bounding_box()
    lists = page.locator(".field-chosen_schools .selector").bounding_box()
    assert label["y"] + label["height"] <= lists["y"]  # above the lists, not beside or below them
