"""Issue 18 item 11, the part that HTML and CSS show without a browser: the portal's question page has its one h1, the
tier badges' colours meet WCAG AA, tables have no empty header cells, the campaign form's date and time boxes have
names. The browser check of the whole pages with axe-core: tests/e2e/test_accessibility.py."""

import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
from django.conf import settings
from django.urls import reverse

from roster.access_codes import access_codes_issue
from roster.models import Student
from screening.services import result_record
from tests.factories.cases import case_url
from tests.factories.screening import ANSWERS
from tests.screening.test_portal import walk_to_questions
from workflows.views import tier_chip

CSS = Path(settings.BASE_DIR) / "static" / "css"
TIERS = ("green", "yellow", "orange", "red")


def luminance(hex_colour: str) -> float:
    """WCAG 2's relative luminance of #rgb or #rrggbb."""
    digits = hex_colour.lstrip("#")
    if len(digits) == 3:
        digits = "".join(d * 2 for d in digits)
    channels = [int(digits[i : i + 2], 16) / 255 for i in (0, 2, 4)]
    r, g, b = (c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(one: str, other: str) -> float:
    light, dark = sorted((luminance(one), luminance(other)), reverse=True)
    return (light + 0.05) / (dark + 0.05)


def palette() -> dict[str, str]:
    text = (CSS / "palette.css").read_text()
    return dict(re.findall(r"--([\w-]+):\s*(#[0-9a-fA-F]{3,6})\b", text))


def test_contrast_is_computed_as_wcag_defines_it():
    assert round(contrast("#000", "#fff"), 1) == 21.0
    assert round(contrast("#767676", "#fff"), 2) == 4.54  # the lightest grey that passes on white


@pytest.mark.parametrize("tier", TIERS)
def test_each_tier_badge_meets_aa_contrast_for_small_text(tier):
    colours = palette()
    background, text = colours[f"tier-{tier}"], colours[f"on-tier-{tier}"]
    assert contrast(background, text) >= 4.5, (tier, background, text)


def test_every_tier_badge_takes_its_colours_from_the_palette():
    """The report pages (app.css) and the task pages (tier_chip's inline style) use the same checked pairs."""
    app_css = (CSS / "app.css").read_text()
    for tier in TIERS:
        (rule,) = re.findall(rf"\.tier-{tier}\s*\{{([^}}]*)\}}", app_css)
        assert f"var(--tier-{tier})" in rule and f"var(--on-tier-{tier})" in rule, rule
        chip = str(tier_chip(tier, "x"))
        assert f"var(--tier-{tier}" in chip and f"var(--on-tier-{tier}" in chip, chip
    assert not re.search(r"\.tier\s*\{[^}]*color:\s*#fff", app_css)  # white text is no longer every badge's default


class Headings(HTMLParser):
    def __init__(self):
        super().__init__()
        self.h1, self.th, self.in_th = 0, [], False

    def handle_starttag(self, tag, attrs):
        if tag == "h1":
            self.h1 += 1
        if tag == "th":
            self.th.append("")
            self.in_th = True

    def handle_endtag(self, tag):
        if tag == "th":
            self.in_th = False

    def handle_data(self, data):
        if self.in_th:
            self.th[-1] += data


def parsed(response) -> Headings:
    assert response.status_code == 200
    page = Headings()
    page.feed(response.content.decode())
    return page


@pytest.mark.parametrize("language", ["zh-hans", "en"])
def test_the_portal_question_page_has_exactly_one_h1(client, world, campaign, language):
    (code,) = access_codes_issue(actor=None, students=Student.objects.filter(pk=world.student_a1_3.pk))
    client.get(reverse("portal:language", args=[language]))
    questions = walk_to_questions(client, code)
    assert questions.redirect_chain[-1][0] == reverse("portal:answer")
    assert parsed(questions).h1 == 1


def test_the_report_and_the_case_page_have_no_empty_table_header(client, world, campaign, open_case):
    _case, process = open_case(world.student_a1_3, "yellow")
    result_record(campaign=campaign, student=world.student_a1_5, answers=ANSWERS["green"], source="import")
    client.force_login(world.centre_district_a)
    report = parsed(client.get(reverse("screening:report", args=[campaign.pk])))
    assert "合计" in report.th  # the total row is there, one header across the label columns
    client.force_login(world.counselor_a1)
    case_page = parsed(client.get(case_url(process)))
    for page in (report, case_page):
        assert page.th and all(text.strip() for text in page.th), page.th


def test_the_campaign_forms_date_and_time_boxes_have_names(client, world):
    client.force_login(world.city_admin)
    form = client.get(reverse("admin:screening_campaign_add")).content.decode()
    for box, name in (("opens_at_0", "日期"), ("opens_at_1", "时间"), ("closes_at_0", "日期"), ("closes_at_1", "时间")):
        (tag,) = re.findall(rf'<input[^>]*id="id_{box}"[^>]*>', form)
        assert f'aria-label="{name}"' in tag, tag
