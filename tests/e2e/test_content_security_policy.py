"""The Content-Security-Policy (config/security.py) in a real browser: the staff pages, the Material frontend, the
admin and the proctor page run their scripts and show no violation in Chromium's console.

Runs with the system Chromium (/usr/bin/chromium, or E2E_CHROMIUM); skipped where there is none.
"""

import pytest

from tests.e2e.test_screening_walkthrough import CHROMIUM, sign_in, with_password
from tests.e2e.test_screening_walkthrough import browser as browser  # noqa: F401, PLC0414 (a fixture)
from tests.factories.cases import active, staffed_yellow, task_url
from workflows.flows import CaseFlow

pytestmark = [
    pytest.mark.skipif(not CHROMIUM, reason="no system Chromium (install Debian's chromium to run browser tests)"),
    pytest.mark.django_db(transaction=True),
]


def watched(page) -> list[str]:
    """Chromium reports every blocked script, style or frame on the console."""
    violations: list[str] = []
    page.on("console", lambda m: violations.append(m.text) if "Content Security Policy" in m.text else None)
    return violations


def test_pages_run_their_scripts_without_policy_violations(live_server, browser, world, campaign, open_case):
    base = live_server.url
    _case, process = open_case(world.student_a1_3, "yellow")
    staffed_yellow(world, process)
    interview = active(process, CaseFlow.interview)
    for persona in ("counselor_a1", "school_admin_a1"):
        with_password(getattr(world, persona))

    page = sign_in(browser, base, world.counselor_a1)
    violations = watched(page)
    for url in (
        "/",
        CaseFlow.instance.reverse("inbox"),
        CaseFlow.instance.reverse("process_detail", args=[process.pk]),
        task_url(interview, "execute"),
        f"/screening/campaigns/{campaign.pk}/classes/{world.class_a1_3.pk}/proctor/",
    ):
        response = page.goto(f"{base}{url}")
        assert response.status == 200, url
        page.wait_for_load_state("networkidle")
    # The language switcher submits on change (static/js/app.js).
    page.goto(f"{base}/")
    with page.expect_navigation():
        page.select_option("#language-select", "en")
    assert "Sign out" in page.content()

    admin = sign_in(browser, base, world.school_admin_a1)
    violations += watched(admin)
    for url in ("/admin/", "/admin/roster/student/", "/admin/roster/importjob/add/", "/admin/roster/student/export/"):
        admin.goto(f"{base}{url}")
        admin.wait_for_load_state("networkidle")
    toggle = admin.locator("input[name=select-all-toggle]")
    if toggle.count():  # import-export's own inline handler, allowed by its hash
        toggle.first.uncheck()
        assert not admin.locator("input[type=checkbox][resource-id]").first.is_checked()
    assert violations == []
