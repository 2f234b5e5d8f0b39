"""Issue 18 item 11: axe-core on the key pages, in the system Chromium. Serious and critical findings stay at 0, and so
do the best-practice rules the issue named (a page without an h1, duplicate landmarks, empty table headers).

axe-core comes from the PyPI package axe-playwright-python, which ships axe.min.js (axe-core, MPL-2.0) inside its
wheel: pinned in constraints.txt like every other test tool, nothing fetched at test time and no browser download.
Its `Axe().run` injects the script with `page.evaluate` (the DevTools protocol is not bound by the page's CSP) and runs
axe.run with the WCAG 2 A and AA rules and axe's best practices; a failure lists each rule, its nodes and axe's reason.

One live server, one seeded world and one browser for the whole module: each page is a parametrised test that only
reads, so nothing a test does changes what the next one sees (the portal's "done" page uses a code of its own).
Runs with the system Chromium (/usr/bin/chromium, or E2E_CHROMIUM); skipped where there is none.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import pytest
from django.urls import reverse

from tests.e2e.test_screening_walkthrough import CHROMIUM, PASSWORD, playwright_api
from tests.factories.cases import active, case_url, staffed_yellow, task_url
from tests.factories.screening import ANSWERS, CALM

axe_playwright = pytest.importorskip("axe_playwright_python.sync_playwright")

pytestmark = [
    pytest.mark.skipif(not CHROMIUM, reason="no system Chromium (install Debian's chromium to run browser tests)"),
    pytest.mark.xdist_group("accessibility"),  # one worker, one seed, under `-n ... --dist loadgroup`
]
SHOTS = Path(os.environ.get("E2E_SCREENSHOTS", "/tmp/shots")) / "a11y"  # noqa: S108 (screenshots to look at)
AXE_OPTIONS = {
    "runOnly": {"type": "tag", "values": ["wcag2a", "wcag2aa", "best-practice"]},
    "resultTypes": ["violations"],
}
# The issue's own findings, which axe files as best practice (impact moderate or minor): held at 0 like the serious.
NAMED_RULES = {
    "page-has-heading-one",
    "landmark-unique",
    "landmark-no-duplicate-banner",
    "landmark-no-duplicate-contentinfo",
    "landmark-no-duplicate-main",
    "landmark-one-main",
    "empty-table-header",
}
DESKTOP, PHONE = {"width": 1366, "height": 768}, {"width": 375, "height": 740}


@dataclass(frozen=True)
class Page:
    persona: str | None  # None: not signed in
    path: Callable[[SimpleNamespace], str]
    phone: bool = False  # 375x740, as a student's phone
    status: int = 200
    walk: Callable | None = None  # for the portal: the steps from the start page to this one


def portal_confirm(page, site, code):
    page.fill("#code", code)
    with page.expect_navigation():
        page.click("button[type=submit]")
    page.wait_for_selector("button[value=yes]")  # the start page answers with "is this you?" at its own address


def portal_question(page, site, code):
    portal_confirm(page, site, code)
    with page.expect_navigation():
        page.click("button[value=yes]")
    page.wait_for_url(re.compile(r".*/s/answer/$"))
    playwright_api.expect(page.locator("#step-2")).to_be_hidden()  # the script has laid out the first part


def portal_done(page, site, code):
    portal_question(page, site, code)
    # The answers of a calm student, sent as the form would send them (the step-by-step clicks are the walk-through's).
    page.evaluate(
        """answers => { for (const [name, value] of Object.entries(answers)) {
               document.querySelector(`input[name="${name}"][value="${value}"]`).checked = true; }
           document.getElementById("answers").submit(); }""",
        {f"{code}-{n}": v for code, items in CALM.items() for n, v in items.items()},
    )
    page.wait_for_url(re.compile(r".*/s/(done|received)/$"))


PAGES = {
    "login": Page(None, lambda s: "/accounts/login/"),
    "home-counsellor": Page("counselor_a1", lambda s: "/"),
    "home-principal": Page("principal_a1", lambda s: "/"),
    "home-district-centre": Page("centre_district_a", lambda s: "/"),
    "task-list": Page("counselor_a1", lambda s: s.flow.reverse("inbox")),
    "task-execute": Page("counselor_a1", lambda s: task_url(s.interview, "execute")),
    "case-page": Page("counselor_a1", lambda s: case_url(s.process)),
    "case-queue": Page("counselor_a1", lambda s: s.flow.reverse("queue")),
    "case-list": Page("counselor_a1", lambda s: s.flow.reverse("process_list")),
    "notifications": Page("counselor_a1", lambda s: reverse("notifications")),
    "flagged-list": Page("counselor_a1", lambda s: reverse("screening:flagged", args=[s.campaign.pk])),
    "report": Page("centre_district_a", lambda s: reverse("screening:report", args=[s.campaign.pk])),
    "dashboard": Page("centre_district_a", lambda s: reverse("reports:dashboard")),
    "ledger": Page("centre_district_a", lambda s: reverse("reports:ledger_key_help")),
    "individual-report": Page(
        "counselor_a1", lambda s: reverse("reports:student_report", args=[s.world.student_a1_3.pk])
    ),
    "admin-index": Page("city_admin", lambda s: reverse("admin:index")),
    "roster-import": Page("school_admin_a1", lambda s: reverse("admin:roster_importjob_add")),
    "campaign-form": Page("city_admin", lambda s: reverse("admin:screening_campaign_add")),
    "portal-start": Page(None, lambda s: reverse("portal:start"), phone=True),
    "portal-confirm": Page(None, lambda s: reverse("portal:start"), phone=True, walk=portal_confirm),
    "portal-question": Page(None, lambda s: reverse("portal:start"), phone=True, walk=portal_question),
    "portal-question-en": Page(
        None, lambda s: reverse("portal:language", args=["en"]), phone=True, walk=portal_question
    ),
    "portal-done": Page(None, lambda s: reverse("portal:start"), phone=True, walk=portal_done),
    "error-404": Page("counselor_a1", lambda s: "/no-such-page/", status=404),
    "error-403": Page("school_admin_a1", lambda s: reverse("admin:screening_campaign_add"), status=403),
}


@pytest.fixture(scope="module")
def site(django_db_setup, django_db_blocker):
    """The personas, a campaign with a case at each stage a page shows, portal codes, and a live server: once."""
    from django.test.testcases import TransactionTestCase
    from pytest_django.live_server_helper import LiveServer

    from cases import services as case_services
    from roster.access_codes import access_codes_issue
    from roster.models import Student
    from screening.services import result_record
    from tests.conftest import build_world
    from tests.factories.roster import StudentFactory
    from tests.factories.screening import CampaignFactory
    from workflows import services
    from workflows.flows import CaseFlow

    with django_db_blocker.unblock():
        from django.db import connection

        name = connection.settings_dict["NAME"]
        in_memory = connection.vendor == "sqlite" and connection.is_in_memory_db()
        assert in_memory or str(name).startswith("test_"), f"not a test database: {name}"  # it is emptied at the end
        world = build_world()
        for persona in {p.persona for p in PAGES.values() if p.persona}:
            user = getattr(world, persona)
            user.set_password(PASSWORD)
            user.save()
        campaign = CampaignFactory(schools=[world.school_a1, world.school_a2, world.school_b1])

        def open_case(student, tier):
            result = result_record(campaign=campaign, student=student, answers=ANSWERS[tier], source="import").result
            return services.case_process_start(case_services.case_open_for_flag(result).case)

        process = open_case(world.student_a1_3, "yellow")  # staffed: the interview is the counsellor's task
        staffed_yellow(world, process)
        open_case(world.student_a1_5, "orange")  # waits for triage in the school's queue
        open_case(StudentFactory(school_class=world.class_a1_5), "red")  # a crisis alert: the banner on every page
        result_record(campaign=campaign, student=world.student_a2, answers=ANSWERS["green"], source="import")
        answering = [StudentFactory(school_class=world.class_a1_3) for _ in range(2)]
        codes = access_codes_issue(actor=None, students=Student.objects.filter(pk__in=[s.pk for s in answering]))
        site = SimpleNamespace(
            world=world,
            campaign=campaign,
            process=process,
            interview=active(process, CaseFlow.interview),
            flow=CaseFlow.instance,
            codes=[c.code for c in codes],
        )
        server = LiveServer("localhost")
        server._live_server_modified_settings.enable()
        site.url = server.url
        try:
            yield site
        finally:
            server._live_server_modified_settings.disable()
            server.stop()
            TransactionTestCase()._fixture_teardown()  # empty, as a transactional test leaves it (tests/conftest.py)


@pytest.fixture(scope="module")
def chromium():
    os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")  # this thread runs Playwright's loop and the ORM
    SHOTS.mkdir(parents=True, exist_ok=True)
    with playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
        )
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def signed_in(site, chromium):
    """One desktop window per persona, signed in through the form once for the module."""
    contexts = {}

    def context_for(persona):
        if persona not in contexts:
            page = chromium.new_context(viewport=DESKTOP).new_page()
            page.goto(f"{site.url}/accounts/login/")
            page.fill("input[name=username]", persona)
            page.fill("input[name=password]", PASSWORD)
            page.click("button[type=submit], input[type=submit]")
            page.wait_for_url(f"{site.url}/")
            page.close()
            contexts[persona] = page.context
        return contexts[persona]

    yield context_for
    for context in contexts.values():
        context.close()


@pytest.fixture
def transactional_db():
    """Stands in for pytest-django's own. A test that asks for `transactional_db` is what makes pytest-django create
    the test database, but the original would also empty it after each test, and with it the module's seed: `site`
    keeps the database unblocked for the module and empties it once, at the end."""


def findings(page) -> list[dict]:
    result = axe_playwright.Axe().run(page, options=AXE_OPTIONS)
    return result.response["violations"]


def blocking(violations: list[dict]) -> list[str]:
    """One line per rule: its id, impact and help, where (up to 8 nodes), and axe's reason for the first node."""

    def why(node):
        checks = node.get("any", []) + node.get("all", []) + node.get("none", [])
        return checks[0]["message"] if checks else ""

    return [
        f"{v['id']} ({v['impact']}): {v['help']} at "
        + "; ".join(" ".join(n["target"]) for n in v["nodes"][:8])
        + f" [{why(v['nodes'][0])}]"
        for v in violations
        if v["impact"] in ("serious", "critical") or v["id"] in NAMED_RULES
    ]


@pytest.mark.parametrize("name", list(PAGES))
def test_the_page_has_no_serious_accessibility_finding(name, transactional_db, site, chromium, signed_in):
    spec = PAGES[name]
    if spec.persona:
        page = signed_in(spec.persona).new_page()
    else:
        viewport = PHONE if spec.phone else DESKTOP
        page = chromium.new_context(viewport=viewport, is_mobile=spec.phone, has_touch=spec.phone).new_page()
    try:
        response = page.goto(f"{site.url}{spec.path(site)}")
        if spec.walk:
            code = site.codes[1] if name == "portal-done" else site.codes[0]
            spec.walk(page, site, code)
        else:
            assert response.status == spec.status, name
        page.wait_for_load_state("networkidle")
        page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=not spec.phone)  # a phone: what its screen shows
        violations = findings(page)
        # Every finding, the moderate and minor ones too, in the log of the run (pytest shows it for a failure).
        for v in violations:
            print(f"{name}: {v['id']} ({v['impact']}) at " + "; ".join(" ".join(n["target"]) for n in v["nodes"][:3]))
        assert blocking(violations) == [], f"{name}: " + "\n".join(blocking(violations))
    finally:
        page.close() if spec.persona else page.context.close()
