"""The case process, walked through its tasks as the people of tests/conftest.py would, through workflows.services
(the same calls the task pages make): every tier to closure, approvals, the follow-up loop, who may take what.
Deadlines and the overdue chain: tests/workflows/test_deadlines.py."""

import datetime

import pytest
from django.core.exceptions import PermissionDenied
from django.utils import timezone
from viewflow.workflow.models import Task
from viewflow.workflow.status import STATUS

from cases import services as case_services
from cases.models import CaseStatus, Decision, TeamSeat
from roster.roles import Role
from screening.services import result_record
from tests.factories.cases import active, nodes_open, take, to_follow_up
from tests.factories.roster import staff_with_role
from tests.factories.screening import ANSWERS, CampaignFactory
from workflows import services
from workflows.flows import CaseFlow


def test_a_yellow_case_from_triage_to_closure(world, open_case):
    case, process = open_case(world.student_a1_3, "yellow")
    triage = active(process, CaseFlow.triage)
    assert triage.status == STATUS.NEW  # in the school's queue
    for outsider in (world.counselor_a2, world.homeroom_a1_3, world.principal_a1, world.school_admin_a1):
        assert not triage.flow_task.can_assign(outsider, triage)
    services.task_claim(world.counselor_a1, triage)
    services.triage_done(world.counselor_a1, triage, tier="yellow", reason="面谈确认：学业压力")

    staffing = take(world.counselor_a1, process, CaseFlow.staffing)
    services.staffing_done(world.counselor_a1, staffing, case_services.team_proposal(case))
    assert nodes_open(process) == ["interview"]  # yellow: parent contact is not a required step
    interview = active(process, CaseFlow.interview)
    assert interview.status == STATUS.ASSIGNED and interview.owner == world.counselor_a1
    services.interview_done(world.counselor_a1, interview, note="学业压力大，睡眠差")

    plan = active(process, CaseFlow.plan)
    services.plan_done(world.counselor_a1, plan, goals="改善睡眠", review_on=datetime.date(2027, 1, 10),
                       needs_referral=False, measures=[("每周谈话一次", world.counselor_a1),
                                                       ("关注课堂情绪", world.homeroom_a1_3)])  # fmt: skip
    assert nodes_open(process) == ["follow_up"]
    follow_up = to_follow_up(process)
    assert follow_up.owner == world.counselor_a1
    services.follow_up_done(world.counselor_a1, follow_up, note="情况稳定", outcome="propose_closure",
                            reassessment_score=4)  # fmt: skip
    approval = active(process, CaseFlow.approve_closure)
    assert not approval.flow_task.can_assign(world.counselor_a1, approval)  # on the team
    assert not approval.flow_task.can_assign(world.centre_district_a, approval)  # yellow: the principal's
    services.task_claim(world.principal_a1, approval)
    services.closure_decided(world.principal_a1, approval, approve=True, evaluation="同意结案")
    process.refresh_from_db()
    case.refresh_from_db()
    assert process.status == STATUS.DONE and case.status == CaseStatus.CLOSED


def test_an_orange_case_with_parent_contact_and_a_referral(world, open_case):
    vice = staff_with_role(Role.PRINCIPAL, world.school_a1, username="vice_principal_a1")
    case, process = open_case(world.student_a1_3, "orange")
    services.triage_done(world.counselor_a1, take(world.counselor_a1, process, CaseFlow.triage), tier="orange",
                         reason="确认")  # fmt: skip
    services.staffing_done(world.counselor_a1, take(world.counselor_a1, process, CaseFlow.staffing),
                           case_services.team_proposal(case))  # fmt: skip
    assert nodes_open(process) == ["interview", "parent_contact"]
    contact = active(process, CaseFlow.parent_contact)
    assert contact.owner == world.homeroom_a1_3
    services.parent_contact_done(world.homeroom_a1_3, contact, guardian="母亲", channel="phone",
                                 outcome="家长同意配合", consent="given")  # fmt: skip
    assert nodes_open(process) == ["first_steps_done", "interview"]  # the join waits for the interview
    services.interview_done(world.counselor_a1, active(process, CaseFlow.interview), note="有自伤想法")
    services.plan_done(world.counselor_a1, active(process, CaseFlow.plan), goals="安全计划", needs_referral=True,
                       review_on=datetime.date(2027, 1, 5), measures=[("转介评估", world.counselor_a1)])  # fmt: skip
    services.referral_requested(world.counselor_a1, active(process, CaseFlow.request_referral),
                                institution="市精神卫生中心", reason="需要诊断", parental_consent="given")  # fmt: skip
    approval = active(process, CaseFlow.approve_referral)
    assert not approval.flow_task.can_assign(world.principal_a1, approval)  # the principal sits on this team
    services.task_claim(vice, approval)
    services.referral_decided(vice, approval, approve=True)
    services.referral_made(world.counselor_a1, active(process, CaseFlow.make_referral),
                           referred_on=datetime.date(2026, 12, 8), outcome="已预约门诊")  # fmt: skip
    assert case.referrals.get().decision == Decision.APPROVED
    follow_up = to_follow_up(process)
    services.follow_up_done(world.counselor_a1, follow_up, note="好转", outcome="propose_closure")
    approval = active(process, CaseFlow.approve_closure)
    assert not approval.flow_task.can_assign(vice, approval)  # orange: the district centre evaluates
    services.task_claim(world.centre_district_a, approval)
    services.closure_decided(world.centre_district_a, approval, approve=False, evaluation="再观察一个周期")
    assert nodes_open(process) == ["follow_up"]  # rejected: back to the follow-up loop
    case.refresh_from_db()
    assert case.status == CaseStatus.OPEN


def test_green_at_triage_is_closed_when_the_principal_confirms_the_false_positive(world, open_case):
    case, process = open_case(world.student_a1_3, "yellow")
    services.triage_done(world.counselor_a1, take(world.counselor_a1, process, CaseFlow.triage), tier="green",
                         reason="误报")  # fmt: skip
    approval = take(world.principal_a1, process, CaseFlow.approve_false_positive)
    services.closure_decided(world.principal_a1, approval, approve=True)
    process.refresh_from_db()
    assert process.status == STATUS.DONE and case.closures.get().decision == Decision.APPROVED


def test_escalation_from_a_follow_up_takes_effect_at_once_re_staffs_and_restarts_the_first_steps(
    world, open_case, django_capture_on_commit_callbacks
):
    case, process = open_case(world.student_a1_3, "yellow")
    services.triage_done(world.counselor_a1, take(world.counselor_a1, process, CaseFlow.triage), tier="yellow",
                         reason="确认")  # fmt: skip
    services.staffing_done(world.counselor_a1, take(world.counselor_a1, process, CaseFlow.staffing),
                           case_services.team_proposal(case))  # fmt: skip
    services.interview_done(world.counselor_a1, active(process, CaseFlow.interview), note="一般")
    services.plan_done(world.counselor_a1, active(process, CaseFlow.plan), goals="观察", needs_referral=False,
                       review_on=datetime.date(2027, 1, 5), measures=[("观察", world.homeroom_a1_3)])  # fmt: skip
    with django_capture_on_commit_callbacks(execute=True):
        services.follow_up_done(world.counselor_a1, to_follow_up(process), note="出现自伤行为", outcome="escalate",
                                to_tier="orange")  # fmt: skip
    case.refresh_from_db()
    process.refresh_from_db()
    # No approval: the raise is in force, the team is 三包一, and a new process runs the orange first steps.
    assert case.tier == "orange" and not case.tier_changes.exists()
    assert case.team.get(seat=TeamSeat.SCHOOL_LEADER, left_at__isnull=True).user == world.principal_a1
    assert process.status == STATUS.DONE
    restarted = services.main_processes(case).first()
    assert restarted.pk != process.pk
    assert nodes_open(restarted) == ["interview", "parent_contact"]
    contact = active(restarted, CaseFlow.parent_contact)
    assert contact.clock.due_at - timezone.now() < datetime.timedelta(hours=48, minutes=1)  # orange: 48 h


def test_a_task_done_by_one_person_is_refused_to_the_next_with_a_clear_message(world, open_case):
    case, process = open_case(world.student_a1_3, "yellow")
    triage = take(world.counselor_a1, process, CaseFlow.triage)
    other = staff_with_role(Role.PSYCHOLOGY_TEACHER, world.school_a1, username="counselor2_a1")
    with pytest.raises(services.TaskUnavailable):
        services.task_claim(other, triage)
    with pytest.raises(PermissionDenied):
        services.triage_done(other, triage, tier="orange", reason="我来")
    services.triage_done(world.counselor_a1, triage, tier="yellow", reason="确认")
    with pytest.raises(services.TaskUnavailable):
        services.triage_done(world.counselor_a1, triage, tier="orange", reason="再来一次")
    case.refresh_from_db()
    assert case.tier == "yellow" and case.history.filter(history_change_reason__contains="再来一次").count() == 0


def test_a_principal_never_reaches_another_schools_task(world, open_case):
    principal_b1 = staff_with_role(Role.PRINCIPAL, world.school_b1, username="principal_b1")
    case, process = open_case(world.student_a1_3, "yellow")
    services.triage_done(world.counselor_a1, take(world.counselor_a1, process, CaseFlow.triage), tier="green",
                         reason="误报")  # fmt: skip
    approval = active(process, CaseFlow.approve_false_positive)
    assert not approval.flow_task.can_assign(principal_b1, approval)
    with pytest.raises(PermissionDenied):
        services.task_claim(principal_b1, approval)


def test_a_flag_opens_a_case_waiting_for_triage_and_a_second_flag_opens_no_other(
    world, campaign, django_capture_on_commit_callbacks
):
    from cases.models import Case
    from workflows.models import CaseProcess

    with django_capture_on_commit_callbacks(execute=True):
        result_record(campaign=campaign, student=world.student_a1_3, answers=ANSWERS["orange"], source="portal")
    (case,) = Case.objects.all()
    (process,) = services.main_processes(case)
    assert case.tier == "orange" and nodes_open(process) == ["triage"]
    # The orange answer was a critical one (ASQ): a brief safety assessment waits beside the triage.
    (safety,) = CaseProcess.objects.filter(case=case).exclude(pk=process.pk)
    assert nodes_open(safety) == ["safety_assessment"]
    other = CampaignFactory(schools=[world.school_a1])
    with django_capture_on_commit_callbacks(execute=True):
        result_record(campaign=other, student=world.student_a1_3, answers=ANSWERS["red"], source="portal")
    case.refresh_from_db()
    assert Case.objects.count() == 1 and services.main_processes(case).count() == 1 and case.tier == "red"


def test_a_large_import_opens_its_cases_through_the_task_worker(
    world, campaign, settings, django_capture_on_commit_callbacks
):
    from cases.models import Case
    from screening import results_import
    from tests.factories.roster import StudentFactory

    students = [StudentFactory(school_class=world.class_a1_3) for _ in range(5)]
    results = [
        result_record(campaign=campaign, student=s, answers=ANSWERS["yellow"], source="import").result for s in students
    ]
    # Above the inline limit the signals go to django-q2 (run inline by the test settings), one task per chunk.
    settings.SCREENING_FLAGGED_INLINE_MAX = 2
    with django_capture_on_commit_callbacks(execute=True):
        results_import.results_flagged_on_commit([r.pk for r in results])
    assert Case.objects.filter(student__in=students, status="open").count() == 5
    from django_q.models import Success

    assert Success.objects.filter(func="screening.tasks.results_flagged_send").count() == 1


def test_the_timer_tick_is_scheduled_every_minute(db):
    from django_q.models import Schedule

    schedule = Schedule.objects.get(name="workflows: fire due timers")
    assert (schedule.func, schedule.schedule_type, schedule.minutes, schedule.repeats) == (
        "workflows.services.workflow_tick", "I", 1, -1,
    )  # fmt: skip


def _race(*calls):
    """Run the calls at the same moment in threads; each returns "ok" or the exception's class name."""
    import threading

    from django.db import connection

    barrier, outcomes = threading.Barrier(len(calls)), []

    def run(call):
        barrier.wait()
        try:
            call()
            outcomes.append("ok")
        except Exception as error:  # noqa: BLE001 (the outcome is what the test looks at)
            outcomes.append(type(error).__name__)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(call,)) for call in calls]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sorted(outcomes)


@pytest.mark.postgres_only  # SQLite serialises writers; the race needs a server database
@pytest.mark.django_db(transaction=True)
def test_two_people_taking_or_doing_the_same_task_at_once_one_succeeds(world, campaign, open_case):
    other = staff_with_role(Role.PSYCHOLOGY_TEACHER, world.school_a1, username="counselor2_a1")
    case, process = open_case(world.student_a1_3, "yellow")
    triage = active(process, CaseFlow.triage)
    outcomes = _race(
        lambda: services.task_claim(world.counselor_a1, triage), lambda: services.task_claim(other, triage)
    )
    assert outcomes == ["TaskUnavailable", "ok"]
    triage.refresh_from_db()
    owner = triage.owner
    outcomes = _race(
        lambda: services.triage_done(owner, Task.objects.get(pk=triage.pk), tier="orange", reason="第一次提交"),
        lambda: services.triage_done(owner, Task.objects.get(pk=triage.pk), tier="red", reason="第二次提交"),
    )
    assert outcomes == ["TaskUnavailable", "ok"]
    assert process.task_set.filter(flow_task=CaseFlow.staffing).count() == 1
    assert case.history.filter(history_change_reason__startswith="triage").count() == 1


def test_an_overdue_first_interview_tells_the_principal_and_the_case_goes_on(world, open_case):
    from roster.models import Notification

    vice = staff_with_role(Role.PRINCIPAL, world.school_a1, username="vice_principal_a1")
    case, process = open_case(world.student_a1_3, "red")
    services.triage_done(world.counselor_a1, take(world.counselor_a1, process, CaseFlow.triage), tier="red",
                         reason="确认")  # fmt: skip
    services.staffing_done(world.counselor_a1, take(world.counselor_a1, process, CaseFlow.staffing),
                           case_services.team_proposal(case))  # fmt: skip
    interview = active(process, CaseFlow.interview)
    assert interview.clock.due_at == process.created + datetime.timedelta(hours=24)  # from the process's start
    assert services.workflow_tick()["overdue"] == 0  # not due yet
    later = process.created + datetime.timedelta(hours=24, minutes=31)  # past the principal's step of the chain
    from workflows.deadlines import task_deadlines_sweep

    task_deadlines_sweep(now=later)
    told = Notification.objects.filter(kind="task_overdue", recipient__in=[world.principal_a1, vice])
    assert {n.recipient for n in told} == {world.principal_a1, vice}
    assert all("王小明" not in n.title + n.body and "王*明" in n.title for n in told)  # masked, never in full
    steps = {str(CaseFlow.interview.task_title), str(CaseFlow.parent_contact.task_title)}
    assert {step for step in steps for n in told if step in n.title} == steps  # the late steps themselves
    interview.refresh_from_db()
    assert interview.status == STATUS.ASSIGNED  # still the counselor's to do
    services.interview_done(world.counselor_a1, interview, note="已面谈")
    services.parent_contact_done(world.homeroom_a1_3, active(process, CaseFlow.parent_contact), guardian="父亲",
                                 channel="in_person", outcome="已沟通", consent="given")  # fmt: skip
    assert nodes_open(process) == ["plan"]  # the join was not held up by the overdue steps


def test_a_principal_hands_a_leavers_seats_and_tasks_to_a_successor_in_one_action(world, open_case):
    successor = staff_with_role(Role.PSYCHOLOGY_TEACHER, world.school_a1, username="counselor_new_a1")
    staff_with_role(Role.HOMEROOM_TEACHER, world.class_a1_5, username="homeroom_a1_5")
    cases = []
    for student in (world.student_a1_3, world.student_a1_5):
        case, process = open_case(student, "yellow")
        services.triage_done(world.counselor_a1, take(world.counselor_a1, process, CaseFlow.triage), tier="yellow",
                             reason="确认")  # fmt: skip
        services.staffing_done(world.counselor_a1, take(world.counselor_a1, process, CaseFlow.staffing),
                               case_services.team_proposal(case))  # fmt: skip
        cases.append((case, process))
    with pytest.raises(PermissionDenied):
        services.work_hand_over(world.counselor_a1, world.counselor_a1, successor, world.school_a1)
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError):  # a homeroom teacher cannot take a psychology teacher's seat
        services.work_hand_over(world.principal_a1, world.counselor_a1, world.homeroom_a1_3, world.school_a1)
    assert Task.objects.filter(owner=world.counselor_a1, status=STATUS.ASSIGNED).count() == 2  # nothing moved
    moved = services.work_hand_over(world.principal_a1, world.counselor_a1, successor, world.school_a1)
    assert moved == {"seats": 2, "tasks": 2}
    for case, process in cases:
        assert case.team.get(seat=TeamSeat.PSYCHOLOGY_TEACHER, left_at__isnull=True).user == successor
        assert active(process, CaseFlow.interview).owner == successor
    interview = active(cases[0][1], CaseFlow.interview)
    services.interview_done(successor, interview, note="接手后首次面谈")
    assert nodes_open(cases[0][1]) == ["plan"]
    assert active(cases[0][1], CaseFlow.plan).owner == successor  # later steps follow the seat


def _rows(process):
    tasks = process.task_set.order_by("pk")
    fields = ("flow_task", "flow_task_type", "status", "token", "owner_id", "owner_permission",
              "owner_permission_content_type_id", "owner_permission_obj_pk", "data")  # fmt: skip
    return (
        (str(process.flow_class), process.status, process.data),
        [tuple(str(getattr(t, f)) for f in fields) for t in tasks],
        [sorted(t.previous.values_list("flow_task", flat=True)) for t in tasks],
    )


def test_cases_opened_in_bulk_are_the_same_as_one_by_one_and_work_the_same(world, campaign):
    from cases.models import Case
    from screening.results_import import results_flagged_send
    from workflows.models import CaseProcess

    one = result_record(campaign=campaign, student=world.student_a1_5, answers=ANSWERS["yellow"], source="import")
    case_one = case_services.case_open_for_flag(one.result).case
    by_one = services.case_process_start(case_one)

    staff_with_role(Role.HOMEROOM_TEACHER, world.class_b1, username="homeroom_b1")
    closed, _ = Case.objects.get_or_create(
        student=world.student_b1, defaults={"school": world.school_b1, "source": "screening", "tier": "yellow",
                                            "status": "closed", "opened_at": timezone.now()})  # fmt: skip
    batch = [
        result_record(campaign=campaign, student=s, answers=ANSWERS[t], source="import").result
        for s, t in ((world.student_a1_3, "orange"), (world.student_b1, "red"), (world.student_a1_5, "red"))
    ]
    results_flagged_send([r.pk for r in batch])  # what the task worker runs after a large import

    bulk_case = Case.objects.get(student=world.student_a1_3)
    (in_bulk,) = CaseProcess.objects.filter(case=bulk_case)
    assert _rows(in_bulk) == _rows(by_one)
    assert bulk_case.history.get().history_change_reason == "opened by a screening flag"
    closed.refresh_from_db()
    assert closed.status == "closed"  # a new case follows it (issue 19), opened one by one with its own process
    following = Case.objects.get(follows=closed)
    assert following.status == "open" and following.tier == "red"
    assert CaseProcess.objects.filter(case=following).count() == 1
    case_one.refresh_from_db()
    assert case_one.tier == "red" and CaseProcess.objects.filter(case=case_one).count() == 1  # raised, not doubled
    triage = active(in_bulk, CaseFlow.triage)
    assert not triage.flow_task.can_assign(world.counselor_a2, triage)
    services.task_claim(world.counselor_a1, triage)
    services.triage_done(world.counselor_a1, triage, tier="orange", reason="确认")
    assert nodes_open(in_bulk) == ["staffing"]


def test_when_every_principal_sits_on_the_team_the_district_centre_decides(world, open_case):
    case, process = open_case(world.student_a1_3, "orange")
    services.triage_done(world.counselor_a1, take(world.counselor_a1, process, CaseFlow.triage), tier="orange",
                         reason="确认")  # fmt: skip
    services.staffing_done(world.counselor_a1, take(world.counselor_a1, process, CaseFlow.staffing),
                           case_services.team_proposal(case))  # the only principal takes the leader seat  # fmt: skip
    services.interview_done(world.counselor_a1, active(process, CaseFlow.interview), note="面谈")
    services.parent_contact_done(world.homeroom_a1_3, active(process, CaseFlow.parent_contact), guardian="母亲",
                                 channel="phone", outcome="同意", consent="given")  # fmt: skip
    services.plan_done(world.counselor_a1, active(process, CaseFlow.plan), goals="安全", needs_referral=True,
                       review_on=datetime.date(2027, 1, 5), measures=[("转介", world.counselor_a1)])  # fmt: skip
    services.referral_requested(world.counselor_a1, active(process, CaseFlow.request_referral), institution="医院",
                                reason="诊断", parental_consent="given")  # fmt: skip
    approval = active(process, CaseFlow.approve_referral)
    assert not approval.flow_task.can_assign(world.principal_a1, approval)
    services.task_claim(world.centre_district_a, approval)
    services.referral_decided(world.centre_district_a, approval, approve=True)
    assert case.referrals.get().decision == Decision.APPROVED
