"""Issue 7's acceptance, in a real browser, as a new user would: the district centre opens the campaign's report,
which starts at its district's schools, drills school → grade → one class, and downloads the XLSX and the PDF of that
class; both are opened and read: the XLSX's figures suppressed as on the page, the PDF rendered to an image, its
Chinese text drawn with the font the file embeds.

Runs with the system Chromium (/usr/bin/chromium, or E2E_CHROMIUM); skipped where there is none.
"""

import re

import openpyxl
import pytest

from roster.models import AccessLogEntry
from roster.pdf import pdf_available
from tests.e2e.test_screening_walkthrough import CHROMIUM, SHOTS, sign_in, with_password
from tests.e2e.test_screening_walkthrough import browser as browser  # noqa: F401, PLC0414 (a fixture)
from tests.pdfs import first_page_text_if_legible
from tests.screening.test_report_insights import screened as screened  # noqa: F401, PLC0414 (a fixture)

pytestmark = [
    pytest.mark.skipif(not CHROMIUM, reason="no system Chromium (install Debian's chromium to run browser tests)"),
    pytest.mark.skipif(not pdf_available(), reason="WeasyPrint or Pango is not installed here"),
    pytest.mark.django_db(transaction=True),
]


def cells(page, row) -> list[str]:
    return [c.strip() for c in page.locator("table.report tbody tr").nth(row).locator("td").all_inner_texts()]


def test_the_district_centre_drills_to_a_class_and_reads_its_xlsx_and_pdf(
    live_server,
    browser,  # noqa: F811
    world,
    screened,  # noqa: F811
    tmp_path,
):
    campaign, _previous = screened
    base = live_server.url
    page = sign_in(browser, base, with_password(world.centre_district_a))
    page.goto(f"{base}/screening/campaigns/")
    page.locator("a", has_text="完成情况报告").first.click()
    page.wait_for_url(re.compile(rf".*/screening/campaigns/{campaign.pk}/report/$"))
    # The district's schools: A1, 15 invited (王小明 and the hand-made pupils), 13 answered, every figure shown.
    assert cells(page, 0)[:5] == [world.school_a1.code, world.school_a1.name, "15", "13", "86.7%"]
    assert page.locator("svg").count() >= 4  # tier shares and score distributions, drawn on the server

    page.locator("table.report a", has_text=world.school_a1.name).click()
    page.wait_for_url(re.compile(r".*school=\d+$"))
    page.locator("table.report a", has_text="7年级").click()
    page.wait_for_url(re.compile(r".*grade=7$"))
    assert [cells(page, i)[1] for i in range(2)] == ["7年级3班", "7年级5班"]
    page.locator("table.report a", has_text="7年级3班").click()
    page.wait_for_url(re.compile(r".*class=\d+$"))
    page.screenshot(path=str(SHOTS / "report-1-class.png"), full_page=True)
    # One class: 9 invited, 8 answered: 6 green and 2 red; the 2 is below 5 and shows as "<5".
    row = cells(page, 0)
    assert row[1:4] == ["7年级3班", "9", "8"] and row[5].startswith("6") and row[8] == "<5"
    assert "crumb" not in page.url and page.locator("nav.drill").inner_text().startswith("东湖区")

    with page.expect_download() as download:
        page.locator("a", has_text="导出 XLSX").click()
    saved = tmp_path / "class.xlsx"
    download.value.save_as(saved)
    rows = list(openpyxl.load_workbook(saved).active.iter_rows(values_only=True))
    assert rows[0][:5] == ("学校", "班级", "应测人数", "已完成", "完成率 %")
    assert rows[1][1:4] == ("7年级3班", 9, 8) and rows[1][5] == 6 and rows[1][8] == "<5"  # as on the page
    assert 2 not in rows[1]  # the two red pupils are not given away by the file either

    with page.expect_download() as download:
        page.locator("a", has_text="下载 PDF").click()
    saved = tmp_path / "class.pdf"
    download.value.save_as(saved)
    text = first_page_text_if_legible(saved.read_bytes())
    assert "完成情况报告" in text and "7年级3班" in text and "<5" in text
    import pypdfium2 as pdfium

    pdfium.PdfDocument(saved.read_bytes())[0].render(scale=1.5).to_pil().save(SHOTS / "report-2-class-pdf.png")
    assert AccessLogEntry.objects.filter(actor="centre_district_a", object_type="screening.report",
                                         action="export").count() == 2  # fmt: skip
