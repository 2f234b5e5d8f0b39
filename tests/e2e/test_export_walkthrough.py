"""Issue 18 item 2 in a real browser: a district centre exports a key-help ledger above the background threshold,
watches the progress page fill as the task worker writes (the worker is run by hand here, mid-way and to the end),
finds the notification with the link, downloads the file, and later finds the link expired; in Chinese and English.
Screenshots go to $E2E_SCREENSHOTS/exports.

Runs with the system Chromium (/usr/bin/chromium, or E2E_CHROMIUM); skipped where there is none.
"""

import re
from datetime import timedelta

import openpyxl
import pytest
from django.utils import timezone

from roster import exports
from roster.models import ExportJob, ExportStatus
from tests.e2e.test_screening_walkthrough import CHROMIUM, SHOTS, sign_in, with_password
from tests.e2e.test_screening_walkthrough import browser as browser  # noqa: F401, PLC0414 (a fixture)
from tests.factories.roster import StudentFactory

pytestmark = [
    pytest.mark.skipif(not CHROMIUM, reason="no system Chromium (install Debian's chromium to run browser tests)"),
    pytest.mark.django_db(transaction=True),
]
SHOTS_DIR = SHOTS.parent / "exports"
playwright_api = pytest.importorskip("playwright.sync_api")


@pytest.fixture
def queued(monkeypatch):
    """The task queue as a list: the jobs wait until the test runs them (a worker that has not picked them up)."""
    from django_q import tasks

    jobs, run = [], tasks.async_task

    def async_task(func, *args, **kwargs):
        return jobs.append(args[0]) if func == "roster.tasks.export_job_run" else run(func, *args, **kwargs)

    monkeypatch.setattr(tasks, "async_task", async_task)
    return jobs


@pytest.mark.parametrize("language", ["zh-hans", "en"])
def test_a_large_ledger_export_shows_progress_notifies_and_expires(
    live_server,
    browser,  # noqa: F811
    world,
    open_case,
    settings,
    queued,
    tmp_path,
    language,
):
    settings.EXPORT_BACKGROUND_ROWS = 3
    settings.EXPORT_ROOT = str(tmp_path / "exports")
    for tier in ("red", "orange", "orange", "red", "orange", "orange"):
        open_case(StudentFactory(school_class=world.class_a1_5), tier)
    zh = language == "zh-hans"
    SHOTS_DIR.mkdir(parents=True, exist_ok=True)
    base = live_server.url
    page = sign_in(browser, base, with_password(world.centre_district_a))
    page.context.add_cookies([{"name": settings.LANGUAGE_COOKIE_NAME, "value": language, "url": base}])

    page.goto(f"{base}/reports/ledgers/key-help/")
    assert page.locator(".ledger-export-note").is_visible()
    page.locator("a.ledger-export").click()
    page.wait_for_url(re.compile(r".*/exports/\d+/$"))
    (job_id,) = queued
    assert page.locator("#export-progress").is_visible()
    page.screenshot(path=str(SHOTS_DIR / f"1-waiting-{language}.png"), full_page=True)

    ExportJob.objects.filter(pk=job_id).update(status=ExportStatus.RUNNING, processed_rows=4)  # the worker, mid-way
    playwright_api.expect(page.locator("#progress-text")).to_contain_text("4 / 6")  # polled every second
    assert page.locator("#bar").get_attribute("style") == "width: 67%;"
    page.screenshot(path=str(SHOTS_DIR / f"2-progress-{language}.png"), full_page=True)

    exports.export_job_run(job_id)  # the worker finishes; the page reloads by itself
    page.locator("#export-download").wait_for()
    page.screenshot(path=str(SHOTS_DIR / f"3-ready-{language}.png"), full_page=True)

    page.goto(f"{base}/notifications/")
    note = page.locator("li.notification").first
    assert ("您的导出已就绪" if zh else "Your export is ready") in note.inner_text()
    page.screenshot(path=str(SHOTS_DIR / f"4-notification-{language}.png"), full_page=True)
    with page.expect_download() as download:
        note.locator("button").click()  # "open and mark as read": the link is the download
    saved = tmp_path / "ledger.xlsx"
    download.value.save_as(saved)
    assert len(list(openpyxl.load_workbook(saved).active.iter_rows())) == 1 + 6

    exports.export_sweep_expired(now=timezone.now() + timedelta(hours=25))
    page.goto(f"{base}/exports/{job_id}/download/")
    expired = page.locator("#export-expired").inner_text()
    assert expired == ("此导出已过期，请重新导出。" if zh else "This export has expired. Please export again.")
    page.screenshot(path=str(SHOTS_DIR / f"5-expired-{language}.png"), full_page=True)
