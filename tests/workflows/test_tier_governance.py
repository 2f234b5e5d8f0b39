"""Tier governance and the crisis loop's steps, walked through the case process as its people would (issue 16, items
2, 6 and 7): raising takes effect at once, lowering orange or red needs an independent approval, no path closes a red
screening inside the school, red closures climb to the city crisis centre, a team asks the district for support, and
a non-acute critical answer gets a brief safety assessment before the student goes home."""

import datetime

import pytest
from django.core.exceptions import PermissionDenied
from django.utils import timezone
from viewflow.workflow.status import STATUS

from cases import services as case_services
from cases.models import CaseStatus, ClosureEvaluation, Decision, SafetyOutcome, SupportStatus, TeamSeat
from roster.models import Notification
from screening.services import result_record
from tests.factories.cases import active, nodes_open, take
from tests.factories.screening import ANSWERS, CampaignFactory
from workflows import forms, selectors, services
from workflows.flows import CaseFlow
from workflows.models import CaseProcess

PHQ9_CALM = dict.fromkeys(range(1, 10), "0")
ANSWERS_CRITICAL = {**ANSWERS["green"], "PHQ9": {**PHQ9_CALM, 9: "1"}}  # item 9 "several days": orange, non-acute


@pytest.fixture
def campaign(world):
    return CampaignFactory(schools=[world.school_a1, world.school_b1])


@pytest.fixture
def flagged(world, django_capture_on_commit_callbacks):
    """A screening answered at the portal, through the task worker (sync in tests): the case, its main process."""

    def flagged(student, answers, campaign=None):
        campaign = campaign or CampaignFactory(schools=[world.school_a1, world.school_b1])
        with django_capture_on_commit_callbacks(execute=True):
            result = result_record(campaign=campaign, student=student, answers=answers, source="portal").result
        case = result.cases.get()
        return case, services.main_processes(case).first()

    return flagged


def seated(world, case, process):
    """Triage confirms the tier and the team is seated: the case is being worked."""
    services.triage_done(world.counselor_a1, take(world.counselor_a1, process, CaseFlow.triage), tier=case.tier,
                         reason="确认")  # fmt: skip
    services.staffing_done(world.counselor_a1, take(world.counselor_a1, process, CaseFlow.staffing),
                           case_services.team_proposal(case))  # fmt: skip
    case.refresh_from_db()
    return case


def test_lowering_red_at_triage_is_refused_by_the_form_and_only_asked_of_an_independent_approver(world, flagged):
    case, process = flagged(world.student_a1_3, ANSWERS["red"])
    triage = take(world.counselor_a1, process, CaseFlow.triage)
    form = forms.TriageForm({"tier": "yellow", "reason": "面谈后情绪平稳"}, case=case, user=world.counselor_a1)
    assert not form.is_valid() and "lowering_needs_approval" in form.errors
    # The service never lowers it by itself: the request waits for an approver, the tier stands.
    services.triage_done(world.counselor_a1, triage, tier="yellow", reason="面谈后情绪平稳")
    case.refresh_from_db()
    assert case.tier == "red" and case.tier_changes.get().decision == Decision.PENDING
    assert nodes_open(process) == ["approve_lowering"]
    with pytest.raises(PermissionDenied):  # not the one who asked
        services.task_claim(world.counselor_a1, active(process, CaseFlow.approve_lowering))
    services.tier_change_decided(world.principal_a1, take(world.principal_a1, process, CaseFlow.approve_lowering),
                                 approve=True)  # fmt: skip
    case.refresh_from_db()
    assert case.tier == "yellow" and nodes_open(process) == ["staffing"]


def test_a_red_screening_lowered_and_proposed_for_closure_still_closes_through_the_district_and_city(world, flagged):
    case, process = flagged(world.student_a1_3, ANSWERS["red"])
    services.triage_done(world.counselor_a1, take(world.counselor_a1, process, CaseFlow.triage), tier="green",
                         reason="误报")  # fmt: skip
    case.refresh_from_db()
    assert case.status == CaseStatus.CLOSING
    # The principal is offered nothing and may take nothing: a red screening is not closed inside the school.
    task = active(process, CaseFlow.approve_false_positive)
    assert task not in selectors.queue(world.principal_a1)
    with pytest.raises(PermissionDenied):
        services.task_claim(world.principal_a1, task)
    services.closure_decided(world.centre_district_a, take(world.centre_district_a, process, task.flow_task),
                             approve=True, evaluation="区县评估：同意")  # fmt: skip
    case.refresh_from_db()
    assert case.status == CaseStatus.CLOSING  # the city crisis centre evaluates next
    city_task = active(process, CaseFlow.approve_false_positive)
    assert city_task in selectors.queue(world.city_centre)
    services.closure_decided(world.city_centre, take(world.city_centre, process, city_task.flow_task), approve=True,
                             evaluation="市级结案评估：同意")  # fmt: skip
    case.refresh_from_db()
    assert case.status == CaseStatus.CLOSED
    levels = list(ClosureEvaluation.objects.order_by("level").values_list("level", "role", "approved"))
    assert levels == [(0, "district_centre", True), (1, "city_centre", True)]


def test_a_red_closure_proposed_at_follow_up_is_evaluated_by_the_district_then_the_city(world, flagged):
    case, process = flagged(world.student_a1_3, ANSWERS["red"])
    seated(world, case, process)
    services.interview_done(world.counselor_a1, active(process, CaseFlow.interview), note="谈话")
    services.parent_contact_done(world.homeroom_a1_3, active(process, CaseFlow.parent_contact), guardian="母亲",
                                 channel="phone", outcome="已沟通", consent="given")  # fmt: skip
    services.plan_done(world.counselor_a1, active(process, CaseFlow.plan), goals="稳定情绪", needs_referral=False,
                       review_on=datetime.date(2027, 1, 5), measures=[("每周谈话", world.counselor_a1)])  # fmt: skip
    services.follow_up_done(world.counselor_a1, active(process, CaseFlow.follow_up), note="稳定",
                            outcome="propose_closure", reason="连续随访稳定")  # fmt: skip
    district = take(world.centre_district_a, process, CaseFlow.approve_closure)
    services.closure_decided(world.centre_district_a, district, approve=True, evaluation="同意")
    city = take(world.city_centre, process, CaseFlow.approve_closure)
    services.closure_decided(world.city_centre, city, approve=False, evaluation="再随访一个月")
    case.refresh_from_db()
    assert case.status == CaseStatus.OPEN and nodes_open(process) == ["follow_up"]


def test_a_re_screen_that_raises_yellow_to_red_re_staffs_and_starts_the_red_deadlines(world, flagged, campaign):
    case, process = flagged(world.student_a1_3, ANSWERS["yellow"])
    seated(world, case, process)
    services.interview_done(world.counselor_a1, active(process, CaseFlow.interview), note="一般")
    assert {m.seat for m in case.team.filter(left_at__isnull=True)} == {TeamSeat.PSYCHOLOGY_TEACHER,
                                                                          TeamSeat.HOMEROOM_TEACHER}  # fmt: skip
    before = timezone.now()
    case, restarted = flagged(world.student_a1_3, ANSWERS["red"])
    assert case.tier == "red"
    seats = dict(case.team.filter(left_at__isnull=True).values_list("seat", "user"))
    assert seats[TeamSeat.SCHOOL_LEADER] == world.principal_a1.pk  # 三包一 at once
    process.refresh_from_db()
    assert process.status == STATUS.CANCELED and restarted.pk != process.pk
    assert nodes_open(restarted) == ["interview", "parent_contact"]
    for node in (CaseFlow.interview, CaseFlow.parent_contact):  # red: 24 h from the raise
        due = active(restarted, node).clock.due_at
        assert before + datetime.timedelta(hours=24) <= due <= timezone.now() + datetime.timedelta(hours=24)
    # The district centre was told at the moment of the raise, not at some later approval.
    assert Notification.objects.filter(recipient=world.centre_district_a, kind="case_red").exists()


def test_a_raise_before_triage_moves_the_waiting_triage_to_the_red_clock(world, flagged):
    case, process = flagged(world.student_a1_3, ANSWERS["yellow"])
    yellow_due = active(process, CaseFlow.triage).clock.due_at
    case, same = flagged(world.student_a1_3, ANSWERS["red"])
    assert same.pk == process.pk and case.tier == "red"
    red_due = active(process, CaseFlow.triage).clock.due_at
    assert red_due < yellow_due and red_due <= timezone.now() + datetime.timedelta(hours=1)


def test_the_team_asks_the_district_centre_for_support_and_the_centre_logs_its_coordination(world, flagged):
    case, process = flagged(world.student_a1_3, ANSWERS["orange"])
    seated(world, case, process)
    services.support_request_and_start(world.counselor_a1, case, "家长拒绝配合，需协调社区与卫健")
    (support,) = CaseProcess.objects.filter(case=case, data__side="district_support")
    task = active(support, CaseFlow.district_support)
    assert task in selectors.queue(world.centre_district_a)
    assert task not in selectors.queue(world.principal_a1)
    services.support_done(world.centre_district_a, take(world.centre_district_a, support, CaseFlow.district_support),
                          agency="community", contact="东湖街道社区", agreed="社区网格员明日家访")  # fmt: skip
    request = case.support_requests.get()
    assert (request.status, request.accepted_by) == (SupportStatus.ACCEPTED, world.centre_district_a)
    entry = case.coordination_entries.get()
    assert (entry.agency, entry.support_request, entry.author) == ("community", request, world.centre_district_a)
    # The case's own process goes on untouched.
    assert services.main_processes(case).first().pk == process.pk


def test_a_non_acute_critical_answer_opens_a_brief_safety_assessment_due_before_the_school_day_ends(
    world, flagged, django_capture_on_commit_callbacks
):
    from roster import duty

    case, process = flagged(world.student_a1_3, ANSWERS_CRITICAL)
    (safety,) = CaseProcess.objects.filter(case=case, data__side="safety_assessment")
    task = active(safety, CaseFlow.safety_assessment)
    assert task in selectors.queue(world.counselor_a1)
    school = case.school
    assert task.clock.due_at <= duty.school_day_end(school, task.created)
    with django_capture_on_commit_callbacks(execute=True):
        services.safety_assessment_done(world.counselor_a1,
                                        take(world.counselor_a1, safety, CaseFlow.safety_assessment),
                                        outcome=SafetyOutcome.NOT_SAFE, parents_informed=True,
                                        note="有具体计划，家长已到校")  # fmt: skip
    case.refresh_from_db()
    assert case.tier == "red"  # not safe to go home: red at once, and the waiting triage is due within the hour
    assert active(process, CaseFlow.triage).clock.due_at <= timezone.now() + datetime.timedelta(hours=1)
    assessment = case.safety_assessments.get()
    assert assessment.alert == case.crisis_alerts.get() and assessment.assessed_by == world.counselor_a1


def test_an_acute_answer_gets_no_separate_safety_assessment_its_red_triage_is_due_within_the_hour(world, flagged):
    case, process = flagged(world.student_a1_3, ANSWERS["red"])
    assert not CaseProcess.objects.filter(case=case, data__side="safety_assessment").exists()
    assert active(process, CaseFlow.triage).clock.due_at <= timezone.now() + datetime.timedelta(hours=1)


def test_the_case_page_asks_for_district_support_and_the_centre_records_its_coordination(world, flagged, client):
    case, process = flagged(world.student_a1_3, ANSWERS["orange"])
    seated(world, case, process)
    page_url = CaseFlow.instance.reverse("process_detail", args=[process.pk])
    client.force_login(world.counselor_a1)
    page = client.get(page_url).content.decode()
    support_url = CaseFlow.instance.reverse("support_request", args=[process.pk])
    assert support_url in page and "申请区县支持" in page
    assert client.post(support_url, {"reason": ""}).status_code == 200  # a reason is needed; nothing recorded
    assert not case.support_requests.exists()
    response = client.post(support_url, {"reason": "家长拒绝就医，需协调卫健"})
    assert response.status_code == 302 and case.support_requests.get().status == SupportStatus.OPEN
    assert support_url not in client.get(page_url).content.decode()  # asked once
    (support,) = CaseProcess.objects.filter(case=case, data__side="district_support")
    assert active(support, CaseFlow.district_support) in selectors.queue(world.centre_district_a)
    client.force_login(world.counselor_a2)  # another school: the page and the action are missing
    assert client.post(support_url, {"reason": "x"}).status_code == 404
    client.force_login(world.centre_district_a)
    coordination_url = CaseFlow.instance.reverse("coordination_add", args=[process.pk])
    response = client.post(coordination_url, {"agency": "health", "contact": "区卫健委", "agreed": "安排精神科评估"})
    assert response.status_code == 302
    assert case.coordination_entries.get().author == world.centre_district_a
