"""The case page is the team's work surface (issue 16 item 8): why the student was flagged, the crisis alerts and who
took them, the plan, contacts, referrals, follow-ups, district support, closure evaluations; each section for those
who may read it (a homeroom teacher on the team sees no tier, score, answer or critical item), in a constant number
of queries; change reasons and field changes in the reader's language; a process chart with Chinese labels."""

import datetime
import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from cases import individual
from cases import services as case_services
from cases.models import (
    Agency,
    AlertKind,
    AlertStatus,
    Closure,
    ClosureEvaluation,
    CoordinationEntry,
    CrisisAlert,
    CrisisAlertStep,
    FollowUp,
    InterventionPlan,
    ParentContact,
    PlanMeasure,
    Referral,
    SupportRequest,
)
from roster.roles import Role
from tests.factories.cases import case_url, page, take
from workflows import services
from workflows.flows import CaseFlow


def add_records(world, case, n: int, start: int = 0) -> None:
    """n records of every kind the page shows (as the services would have left them)."""
    now = timezone.now()
    for i in range(start, start + n):
        plan = InterventionPlan.objects.create(
            case=case, goals=f"目标{i}", review_on=datetime.date(2031, 1, 1), author=world.counselor_a1, created_at=now
        )
        PlanMeasure.objects.create(plan=plan, description=f"措施{i}", responsible=world.homeroom_a1_3)
        ParentContact.objects.create(
            case=case,
            contacted_by=world.homeroom_a1_3,
            contacted_at=now,
            guardian="母亲",
            channel="phone",
            outcome=f"家长同意{i}",
            consent="given",
        )
        Referral.objects.create(
            case=case,
            institution=f"市精神卫生中心{i}",
            reason="需要专业评估",
            parental_consent="given",
            requested_by=world.counselor_a1,
            requested_at=now,
            decision="approved",
            decided_by=world.principal_a1,
            decided_at=now,
            referred_on=datetime.date(2030, 5, 1),
            outcome="已就诊",
            feedback=f"机构反馈{i}",
            feedback_received_on=datetime.date(2030, 5, 9),
        )
        FollowUp.objects.create(
            case=case,
            held_by=world.counselor_a1,
            held_at=now,
            note=f"随访记录{i}",
            reassessment_score=7,
            outcome="continue",
        )
        alert = CrisisAlert.objects.create(
            student=case.student,
            school=case.school,
            case=case,
            kind=AlertKind.CRITICAL,
            event_key=f"test:{i}",
            raised_at=now,
            in_school_hours=True,
            level=1,
            status=AlertStatus.ACKNOWLEDGED,
            acknowledged_by=world.counselor_a1,
            acknowledged_at=now,
        )
        CrisisAlertStep.objects.create(
            alert=alert, level=1, audiences="duty_psychology", recipients=[world.counselor_a1.pk], at=now
        )
        support = SupportRequest.objects.create(
            case=case, reason=f"需要协调卫健{i}", requested_by=world.counselor_a1, requested_at=now
        )
        CoordinationEntry.objects.create(
            case=case,
            support_request=support,
            agency=Agency.HEALTH,
            contact="区卫健委",
            agreed=f"安排医生{i}",
            author=world.counselor_a1,
            recorded_at=now,
        )
        closure = Closure.objects.create(
            case=case, reason=f"目标达成{i}", proposed_by=world.counselor_a1, proposed_at=now, decision="rejected"
        )
        ClosureEvaluation.objects.create(
            closure=closure,
            level=0,
            role=Role.PRINCIPAL,
            approved=False,
            evaluation=f"再观察{i}",
            decided_by=world.principal_a1,
            decided_at=now,
        )


@pytest.fixture
def worked_case(world, open_case):
    case, process = open_case(world.student_a1_3, "orange")  # ASQ item 1 answered yes: a critical item
    triage = take(world.counselor_a1, process, CaseFlow.triage)
    services.triage_done(world.counselor_a1, triage, tier="orange", reason="确认")
    services.staffing_done(
        world.counselor_a1, take(world.counselor_a1, process, CaseFlow.staffing), case_services.team_proposal(case)
    )  # three-on-one: the homeroom teacher sits on it
    case.refresh_from_db()
    return case, process


def test_the_psychology_teacher_sees_every_section(client, world, worked_case):
    case, process = worked_case
    add_records(world, case, 1)
    client.force_login(world.counselor_a1)
    html = page(client.get(case_url(process)))
    for section in (
        "case-flag",
        "case-alerts",
        "case-plans",
        "case-contacts",
        "case-referrals",
        "case-follow-ups",
        "case-support",
        "case-closures",
        "process-chart",
    ):
        assert f'id="{section}"' in html, section
    flag = individual.screening_of(world.counselor_a1, case.screening_result_id)
    assert flag.critical and flag.critical[0].text in html  # the critical item answered
    assert all(reason in html for reason in flag.reasons)  # the rules that fired, in Chinese
    assert "预警原因" in html and "危机预警" in html
    assert "措施0" in html and "负责人" in html and "2031-01-01" in html  # the plan's measure, who, review date
    assert "家长同意0" in html and "市精神卫生中心0" in html and "机构反馈0" in html and "随访记录0" in html
    assert "需要协调卫健0" in html and "安排医生0" in html and "再观察0" in html
    assert f"由{world.counselor_a1.get_short_name()}于" in html  # who took the alert
    assert "值班心理教师" in html  # who was told at the chain's step


def test_a_homeroom_teacher_on_the_team_sees_no_tier_score_answer_or_clinical_record(client, world, worked_case):
    case, process = worked_case
    add_records(world, case, 1)
    assert case.team.filter(user=world.homeroom_a1_3, left_at__isnull=True).exists()
    client.force_login(world.homeroom_a1_3)
    response = client.get(case_url(process))
    assert response.status_code == 200
    html = page(response)
    flag = individual.screening_of(world.counselor_a1, case.screening_result_id)
    for hidden in (
        'id="case-flag"',
        'id="case-alerts"',
        'id="case-referrals"',
        'id="case-follow-ups"',
        'id="case-support"',
        "case-tier",
        "黄色",
        "橙色",
        "红色",
        flag.critical[0].text,
        flag.critical[0].answer,
        "随访记录0",
        "市精神卫生中心0",
        "安排医生0",
    ):
        assert hidden not in html, hidden
    assert all(reason not in html for reason in flag.reasons)
    # What the homeroom teacher works with is there: the plan with their measure, the parent contacts, the closures'
    # decisions; not the psychology teacher's and principal's words about the student (issue 17, finding 8).
    assert "措施0" in html and "家长同意0" in html and 'id="case-closures"' in html
    assert "目标达成0" not in html and "再观察0" not in html


def test_the_case_page_runs_the_same_queries_for_one_or_ten_records_of_each_kind(client, world, worked_case):
    case, process = worked_case
    add_records(world, case, 1)
    client.force_login(world.counselor_a1)
    client.get(case_url(process))  # warm caches (content types, sessions)
    with CaptureQueriesContext(connection) as one:
        assert client.get(case_url(process)).status_code == 200
    add_records(world, case, 9, start=1)
    with CaptureQueriesContext(connection) as ten:
        response = client.get(case_url(process))
    assert "措施9" in page(response) and "随访记录9" in page(response)
    assert len(ten) == len(one), [q["sql"][:120] for q in ten.captured_queries]


ENGLISH_REASONS = ("opened by", "triage:", "staffing", "screening flag", "closure", "referral")


def test_the_timeline_reads_in_chinese(client, world, worked_case):
    case, process = worked_case
    client.force_login(world.counselor_a1)
    html = page(client.get(case_url(process)))
    timeline = html[html.index('id="timeline"') :]
    assert not [reason for reason in ENGLISH_REASONS if reason in timeline]
    assert "因筛查预警立案" in timeline and "分诊：橙色 → 橙色：确认" in timeline and "组建帮扶小组" in timeline


def test_the_audit_review_shows_reasons_and_field_changes_in_chinese(client, world, worked_case):
    case, process = worked_case
    client.force_login(world.auditor_district_a)
    response = client.get(CaseFlow.instance.reverse("case_review", args=[process.pk]))
    assert response.status_code == 200
    html = page(response)
    assert "因筛查预警立案" in html and "分诊：橙色 → 橙色：确认" in html
    assert not [reason for reason in ENGLISH_REASONS if reason in html]
    assert "否 → 是" in html  # triage confirmed the tier: a boolean reads 是/否
    assert "True" not in html and "False" not in html


def test_the_process_chart_is_large_and_labelled_in_chinese(client, world, worked_case):
    case, process = worked_case
    client.force_login(world.counselor_a1)
    html = page(client.get(case_url(process)))
    assert 'id="process-chart"' in html and "mdc-layout-grid__cell--span-12" in html and "查看完整流程图" in html
    svg = page(client.get(CaseFlow.instance.reverse("process_chart", args=[process.pk])))
    labels = re.findall(r"<text[^>]*>([^<]*)</text>|<title>([^<]*)</title>", svg)
    texts = [a or b for a, b in labels]
    assert "分诊：确认风险等级" in texts and "是" in texts
    english = sorted({t for t in texts if re.search(r"[A-Za-z]{3,}", t)})
    assert not english, english
