"""The individual report (个体评估报告): one student's screenings across campaigns with the rules that fired, and a
summary of their cases; for psychology teachers and above of the student's school, printable and PDF, each reading
logged. Checked against the hand-made cases of tests/workflows/test_ledgers.py."""

import datetime

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from cases import services as case_services
from roster.masking import mask_name
from roster.models import AccessLogEntry
from roster.pdf import pdf_available
from screening.models import ScreeningResult
from screening.services import result_record
from tests.factories.screening import ANSWERS, CampaignFactory
from tests.pdfs import first_page_text_if_legible
from tests.workflows.test_ledgers import cases as cases  # noqa: F401, PLC0414 (a fixture)

SECRET_NOTE = "有自伤想法（保密）"  # the red case's restricted interview note (test_ledgers.cases)


@pytest.fixture
def spring(world):
    """Last spring's campaign, in which 王小明 (student_a1_3) answered yellow: PHQ-9 total 10."""
    now = timezone.now()
    spring = CampaignFactory(name="2026春季测评", opens_at=now - datetime.timedelta(days=200),
                             closes_at=now - datetime.timedelta(days=190), schools=[world.school_a1])  # fmt: skip
    result_record(campaign=spring, student=world.student_a1_3, answers=ANSWERS["yellow"], source="import")
    ScreeningResult.objects.filter(campaign=spring).update(submitted_at=now - datetime.timedelta(days=195))
    return spring


def url(student, name="reports:student_report"):
    return reverse(name, args=[student.pk])


def report_of(client, user, student):
    client.force_login(user)
    response = client.get(url(student))
    assert response.status_code == 200
    return response


def test_the_psychology_teacher_reads_every_screening_and_the_case_summary(client, world, cases, spring):
    response = report_of(client, world.counselor_a1, world.student_a1_3)
    report = response.context["report"]
    assert report.name == "王小明"  # the school's psychology teacher sees the name
    autumn, earlier = report.screenings  # newest first
    assert (earlier.result.campaign, earlier.result.tier, autumn.result.tier) == (spring, "yellow", "red")
    phq9 = [s for s in earlier.scores if "PHQ-9" in s.instrument]
    assert [(s.score, s.band) for s in phq9] == [(10, "中度")]  # the score and its band
    assert earlier.reasons and all(not r.startswith(("phq9-", "asq-")) for r in earlier.reasons)  # texts, not ids
    assert [("ASQ" in c.instrument, c.number, c.answer) for c in autumn.critical] == [(True, 1, "是"), (True, 5, "是")]
    assert "<svg" in report.chart  # scores across the two campaigns
    (summary,) = report.cases
    assert summary.case == cases["red"] and summary.url.endswith(f"/{cases['red_process'].pk}/")
    assert dict(summary.team)["心理教师"] == world.counselor_a1.name  # staff by name, not username
    assert len(summary.team) == 3 and (summary.interviews, summary.restricted_interviews) == (1, 0)
    assert (summary.plans, summary.contacts, summary.follow_ups) == (1, 1, 1)
    assert [str(stage) for _referral, stage in summary.referrals] == ["已收到反馈"]
    page = response.content.decode()
    assert "王小明" in page and "2026春季测评" in page and SECRET_NOTE not in page  # no note's text, ever


def test_the_district_centre_reads_it_masked_with_restricted_notes_counted_not_shown(client, world, cases, spring):
    response = report_of(client, world.centre_district_a, world.student_a1_3)
    report = response.context["report"]
    assert report.name == mask_name("王小明") and "王小明" not in response.content.decode()
    (summary,) = report.cases
    assert (summary.interviews, summary.restricted_interviews) == (1, 1)
    assert "1 份受限" in response.content.decode() and SECRET_NOTE not in response.content.decode()


@pytest.mark.parametrize("persona", ["homeroom_a1_3", "school_admin_a1", "counselor_a2", "admin_district_a",
                                     "city_admin", "nobody"])  # fmt: skip
def test_others_get_a_404_and_the_refusal_is_logged(client, world, cases, persona):
    user = getattr(world, persona)
    client.force_login(user)
    for name in ("reports:student_report", "reports:student_report_print", "reports:student_report_pdf"):
        assert client.get(url(world.student_a1_3, name)).status_code == 404
    assert AccessLogEntry.objects.filter(actor=user.username, object_type="roster.student", outcome="denied",
                                         object_ids=str(world.student_a1_3.pk)).count() == 3  # fmt: skip


def test_the_principal_and_the_city_centre_read_it_too(client, world, cases):
    assert report_of(client, world.principal_a1, world.student_a1_3).context["report"].name == "王小明"
    assert report_of(client, world.city_centre, world.student_a1_3).context["report"].name == mask_name("王小明")


def test_a_reading_is_logged_for_the_student_and_each_case_summarised(client, world, cases):
    report_of(client, world.auditor_district_a, world.student_a1_3)
    entries = AccessLogEntry.objects.filter(actor="auditor_district_a", action="view", outcome="ok")
    assert set(entries.values_list("object_type", "object_ids")) == {
        ("roster.student", str(world.student_a1_3.pk)),
        ("cases.case", str(cases["red"].pk)),
    }


def test_the_printable_page_has_no_navigation(client, world, cases):
    client.force_login(world.counselor_a1)
    response = client.get(url(world.student_a1_3, "reports:student_report_print"))
    page = response.content.decode()
    assert response.status_code == 200 and "个体评估报告" in page and "topbar" not in page and "print.css" in page


@pytest.mark.skipif(not pdf_available(), reason="WeasyPrint or Pango is not installed here")
def test_the_pdf_is_legible_in_chinese_and_its_export_logged(client, world, cases, spring):
    client.force_login(world.counselor_a1)
    response = client.get(url(world.student_a1_3, "reports:student_report_pdf"))
    assert response.status_code == 200 and response["Content-Type"] == "application/pdf"
    text = first_page_text_if_legible(response.content)
    assert "个体评估报告" in text and "王小明" in text and world.student_a1_3.student_no in text
    assert AccessLogEntry.objects.filter(actor="counselor_a1", action="export", object_type="roster.student").exists()


def test_the_report_is_reached_from_the_case_page_and_the_flagged_list(client, world, cases, campaign):
    client.force_login(world.counselor_a1)
    from workflows.flows import CaseFlow

    case_page = client.get(CaseFlow.instance.reverse("process_detail", args=[cases["red_process"].pk]))
    assert url(world.student_a1_3) in case_page.content.decode()
    flagged = client.get(reverse("screening:flagged", args=[campaign.pk]))
    assert url(world.student_a1_3) in flagged.content.decode()
    client.force_login(world.homeroom_a1_3)  # on the red case's team, but no reader of screenings: no link
    case_page = client.get(CaseFlow.instance.reverse("process_detail", args=[cases["red_process"].pk]))
    assert case_page.status_code == 200 and url(world.student_a1_3) not in case_page.content.decode()


def test_the_report_runs_the_same_number_of_queries_whatever_the_history(client, world, cases, spring, campaign):
    client.force_login(world.counselor_a1)

    def queries(student) -> int:
        with CaptureQueriesContext(connection) as ctx:
            assert client.get(url(student)).status_code == 200
        return len(ctx.captured_queries)

    small = queries(world.student_a1_5)  # one campaign, one case with nothing recorded
    large = queries(world.student_a1_3)  # two campaigns, a case with every kind of record
    case_services.closure_propose(world.counselor_a1, cases["red"], "情况稳定")
    assert small == large == queries(world.student_a1_3)


def test_where_no_pdf_can_be_made_the_printable_page_is_offered_with_a_message(client, world, cases, monkeypatch):
    from workflows import views_individual

    monkeypatch.setattr(views_individual, "pdf_available", lambda: False)  # a server without Pango
    client.force_login(world.counselor_a1)
    response = client.get(url(world.student_a1_3, "reports:student_report_pdf"), follow=True)
    assert response.redirect_chain == [(url(world.student_a1_3, "reports:student_report_print"), 302)]
    assert "无法生成 PDF" in response.content.decode()
    assert not AccessLogEntry.objects.filter(actor="counselor_a1", action="export").exists()
