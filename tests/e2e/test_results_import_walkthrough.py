"""Issue 18 item 3 in a real browser: a district centre imports an i++-style export in the admin, choosing the source
platform, sees the platform's levels beside our tiers on the check page, confirms, and finds the level on the result.
In Chinese and in English; screenshots go to $E2E_SCREENSHOTS/results-import (default: the temporary folder).

Runs with the system Chromium (/usr/bin/chromium, or E2E_CHROMIUM); skipped where there is none.
"""

import os
import re
import tempfile
from pathlib import Path

import pytest
from django.conf import settings

from screening.models import ScreeningResult
from tests.e2e.test_screening_walkthrough import CHROMIUM, PASSWORD
from tests.e2e.test_screening_walkthrough import browser as browser  # noqa: F401, PLC0414 (a fixture)
from tests.factories.screening import CampaignFactory
from tests.screening.platform_files import ipp_file, xinshu_file

pytestmark = [
    pytest.mark.skipif(not CHROMIUM, reason="no system Chromium (install Debian's chromium to run browser tests)"),
    pytest.mark.django_db(transaction=True),
]
SHOTS = Path(os.environ.get("E2E_SCREENSHOTS", tempfile.gettempdir())) / "results-import"


@pytest.mark.parametrize("language", ["zh-hans", "en"])
def test_an_ipp_export_is_imported_with_its_levels_beside_our_tiers(live_server, browser, world, tmp_path, language):
    SHOTS.mkdir(parents=True, exist_ok=True)
    campaign = CampaignFactory(schools=[world.school_a1, world.school_a2])
    user = world.centre_district_a
    user.set_password(PASSWORD)
    user.save()
    export = tmp_path / "i++导出.xlsx"
    export.write_bytes(
        ipp_file(
            [
                (world.student_a1_3, "calm", (1, 0, 0, 0, 1), "一级预警"),
                (world.student_a1_5, "calm", (0, 0, 0, 0, None), "二级预警"),
                (world.student_a2, "moderate", (0, 0, 0, 0, None), "无预警"),
            ]
        )
    )
    base = live_server.url
    context = browser.new_context(viewport={"width": 1366, "height": 900})
    context.add_cookies([{"name": settings.LANGUAGE_COOKIE_NAME, "value": language, "url": base}])
    page = context.new_page()
    page.goto(f"{base}/accounts/login/")
    page.fill("input[name=username]", user.username)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit], input[type=submit]")
    page.wait_for_url(f"{base}/")

    # A 心数 file with a bare number where the platform writes letters: every bad cell listed, nothing saved.
    bad = tmp_path / "心数导出.csv"
    good = xinshu_file([(world.student_a1_3, "calm", (0, 0, 0, 0, None), "低风险")]).decode("gbk")
    bad.write_bytes(good.replace(",B,B,B,B,", ",1,B,B,B,", 1).encode("gbk"))
    page.goto(f"{base}/admin/screening/screeningresult/import/")
    page.select_option("select[name=campaign]", str(campaign.pk))
    page.set_input_files("input[name=import_file]", str(bad))
    page.click("input[type=submit]")
    page.wait_for_selector("#results-errors")
    assert "ASQ第1题" in page.inner_text("#results-errors")
    page.screenshot(path=str(SHOTS / f"0-refused-{language}.png"), full_page=True)
    assert not ScreeningResult.objects.exists()

    page.goto(f"{base}/admin/screening/screeningresult/import/")
    page.select_option("select[name=campaign]", str(campaign.pk))
    page.select_option("select[name=platform]", "ipp")
    page.set_input_files("input[name=import_file]", str(export))
    page.click("#results-platforms summary")  # the other platforms' layouts, folded by default
    page.screenshot(path=str(SHOTS / f"1-import-form-{language}.png"), full_page=True)

    page.click("input[type=submit]")
    page.wait_for_selector("#results-levels")
    assert page.inner_text("#results-platform") == ("i++ 式导出" if language == "zh-hans" else "i++-style export")
    assert not ScreeningResult.objects.exists()
    page.screenshot(path=str(SHOTS / f"2-check-{language}.png"), full_page=True)

    page.click("input[name=confirm]")
    page.wait_for_url(re.compile(r".*/admin/screening/screeningresult/$"))
    page.screenshot(path=str(SHOTS / f"3-list-{language}.png"), full_page=True)
    result = ScreeningResult.objects.get(student=world.student_a1_5)
    assert (result.tier, result.platform, result.platform_level) == ("green", "ipp", "二级预警")

    page.goto(f"{base}/admin/screening/screeningresult/{result.pk}/change/")
    assert "二级预警" in page.content()
    page.screenshot(path=str(SHOTS / f"4-result-{language}.png"), full_page=True)
    context.close()
