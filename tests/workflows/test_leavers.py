"""A leaver's case (issue 19 item 5): a student who leaves the system (转出, 毕业, 退学; not 休学) stops every clock of
their case, the team gets "hand over or close" (移交或结案), the district centre hears of an orange or red case once;
a student back in the system (enrolled again, or found at another school) starts the clocks again, moved on by the
pause. Time moves with time-machine and the per-minute tick runs as the scheduler runs it."""

import datetime

import pytest
import time_machine
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.utils import timezone
from viewflow.workflow.status import STATUS

from cases import alerts
from cases import services as case_services
from cases.leavers import LEAVER_KIND
from cases.models import AlertKind, Case, CaseStatus, Closure, CoordinationEntry, Decision
from roster.leaving import students_status_changed
from roster.models import MoveBasis, Notification, SchoolMove, Student, StudentStatus
from tests.factories.cases import active, nodes_open, take
from workflows import services
from workflows.deadlines import OVERDUE_KIND
from workflows.flows import HANDOVER, CaseFlow
from workflows.models import CaseProcess, TaskClock

LEAVER = LEAVER_KIND


def set_status(student: Student, status: str, actor=None) -> None:
    """What the roster import, the student admin and the rollover do: write the status, announce the change."""
    with transaction.atomic():
        before = Student.objects.get(pk=student.pk).status
        Student.objects.filter(pk=student.pk).update(status=status)
        students_status_changed(changes=[(student.pk, before, status)], actor=actor)


def staffed(world, process, tier):
    c = world.counselor_a1
    services.triage_done(c, take(c, process, CaseFlow.triage), tier=tier, reason="确认")
    services.staffing_done(c, take(c, process, CaseFlow.staffing), case_services.team_proposal(process.case))


def handover_task(case):
    process = CaseProcess.objects.filter(case=case, data__side=HANDOVER).order_by("-pk").first()
    return active(process, CaseFlow.hand_over)


def overdue(case) -> int:
    return Notification.objects.filter(kind=OVERDUE_KIND, subject_key__in=[
        f"task:{pk}:overdue:{i}" for pk in TaskClock.objects.filter(case=case).values_list("task_id", flat=True)
        for i in range(5)
    ]).count()  # fmt: skip


def later(days: float):
    return time_machine.travel(timezone.now() + datetime.timedelta(days=days), tick=False)


def test_a_leavers_clocks_stop_while_another_cases_clock_fires(world, open_case):
    leaver, _ = open_case(world.student_a1_3, "orange")
    other, _ = open_case(world.student_a1_5, "orange")
    set_status(world.student_a1_3, StudentStatus.GRADUATED)
    leaver.refresh_from_db()
    assert leaver.paused_at is not None and leaver.status == CaseStatus.OPEN  # stopped, nothing deleted
    assert "clocks stopped: the student left (graduated)" in leaver.history.values_list("history_change_reason",
                                                                                      flat=True)  # fmt: skip
    with later(30):
        services.workflow_tick()
    assert overdue(other) > 0  # the other case's triage is overdue and reminded
    assert overdue(leaver) == 0  # the leaver's is not, however late
    assert not Notification.objects.filter(kind=OVERDUE_KIND, title__contains=f"#{leaver.pk} ").exists()


def test_an_open_crisis_alert_of_a_leaver_climbs_no_further(world, open_case):
    case, _ = open_case(world.student_a1_3, "red")
    alert = alerts.crisis_alert_raise(world.student_a1_3, kind=AlertKind.RED, event_key="test:left", case=case)
    level = alert.level
    set_status(world.student_a1_3, StudentStatus.TRANSFERRED)
    with later(1):
        services.workflow_tick()
    alert.refresh_from_db()
    assert alert.level == level and alert.next_escalation_at is not None  # waits where it stood


def test_the_team_gets_hand_over_or_close_without_a_due_time(world, open_case):
    case, process = open_case(world.student_a1_3, "yellow")
    staffed(world, process, "yellow")
    set_status(world.student_a1_3, StudentStatus.WITHDRAWN)
    task = handover_task(case)
    assert task.owner == world.counselor_a1 and task.status == STATUS.ASSIGNED  # the team's psychology teacher
    assert not TaskClock.objects.filter(task=task).exists()  # no crisis clock on a student who has left
    assert nodes_open(process) == ["interview"]  # the case's own step waits, stopped, not cancelled


def test_a_case_at_triage_hands_over_from_the_schools_queue(world, open_case):
    case, _ = open_case(world.student_a1_3, "yellow")  # no team yet
    set_status(world.student_a1_3, StudentStatus.GRADUATED)
    task = handover_task(case)
    assert task.owner is None and task.flow_task.can_assign(world.counselor_a1, task)
    assert not task.flow_task.can_assign(world.counselor_a2, task)  # another school's psychology teacher


def test_handed_over_ends_the_case_as_transferred_and_cancels_its_steps(world, open_case):
    case, process = open_case(world.student_a1_3, "orange")
    staffed(world, process, "orange")
    set_status(world.student_a1_3, StudentStatus.TRANSFERRED)
    services.step_done(world.counselor_a1, handover_task(case), outcome="handed_over", institution="外市第三中学",
                       agency="school", note="档案已寄送对方心理教师", reason="")  # fmt: skip
    case.refresh_from_db()
    assert case.status == CaseStatus.TRANSFERRED and case.closed_at is not None
    assert not case.team.filter(left_at__isnull=True).exists()
    assert nodes_open(process) == [] and process.__class__.objects.get(pk=process.pk).status == STATUS.CANCELED
    assert case.history.first().history_change_reason == "handed over to 外市第三中学: 档案已寄送对方心理教师"
    entry = CoordinationEntry.objects.get(case=case)
    assert (entry.contact, entry.author, entry.get_agency_display()) == (
        "外市第三中学",
        world.counselor_a1,
        "本系统外的学校",
    )
    # A later flag (the student back next year) opens a new case that follows this one.
    set_status(world.student_a1_3, StudentStatus.ACTIVE)
    again, _ = open_case(world.student_a1_3, "yellow")
    assert again.pk != case.pk and again.follows_id == case.pk


def test_close_proposes_the_closure_and_the_level_above_evaluates_it(world, open_case):
    case, process = open_case(world.student_a1_3, "orange")
    staffed(world, process, "orange")
    set_status(world.student_a1_3, StudentStatus.GRADUATED)
    with pytest.raises(PermissionDenied):  # the homeroom teacher on the team is not its psychology teacher
        services.step_done(world.homeroom_a1_3, handover_task(case), outcome="close", reason="毕业离校")
    services.step_done(world.counselor_a1, handover_task(case), outcome="close", reason="毕业离校，情况稳定",
                       institution="", agency="education", note="")  # fmt: skip
    case.refresh_from_db()
    assert case.status == CaseStatus.CLOSING and Closure.objects.get(case=case).decision == Decision.PENDING
    assert nodes_open(process) == []  # the stopped steps gave way to the closure's evaluation
    closing = services.main_processes(case).first()
    assert closing.pk != process.pk and nodes_open(closing) == ["approve_closure"]
    with pytest.raises(PermissionDenied):  # not the school's: orange closes through the district centre
        services.task_claim(world.principal_a1, active(closing, CaseFlow.approve_closure))
    centre = world.centre_district_a
    services.closure_decided(centre, take(centre, closing, CaseFlow.approve_closure), approve=True, evaluation="同意")
    case.refresh_from_db()
    assert case.status == CaseStatus.CLOSED


def test_a_rejected_closure_of_a_leavers_case_gives_the_team_hand_over_or_close_again(world, open_case):
    case, process = open_case(world.student_a1_3, "yellow")
    staffed(world, process, "yellow")
    set_status(world.student_a1_3, StudentStatus.GRADUATED)
    services.step_done(world.counselor_a1, handover_task(case), outcome="close", reason="毕业", institution="",
                       agency="education", note="")  # fmt: skip
    closing = services.main_processes(case).first()
    principal = world.principal_a1
    # Yellow seats the homeroom and psychology teachers (二包一): the principal, off the team, evaluates.
    services.closure_decided(principal, take(principal, closing, CaseFlow.approve_closure), approve=False,
                             evaluation="需先与家长确认去向")  # fmt: skip
    case.refresh_from_db()
    assert case.status == CaseStatus.OPEN and case.paused_at is not None
    assert handover_task(case).owner == world.counselor_a1


@pytest.mark.parametrize(("tier", "told"), [("yellow", 0), ("orange", 1), ("red", 1)])
def test_orange_and_red_cases_tell_the_district_centre_once(world, open_case, tier, told):
    case, _ = open_case(world.student_a1_3, tier)
    Notification.objects.all().delete()  # a red case told the district already when it opened
    set_status(world.student_a1_3, StudentStatus.TRANSFERRED)
    set_status(world.student_a1_3, StudentStatus.GRADUATED)  # already left: announced nowhere again
    notices = Notification.objects.filter(kind=LEAVER)
    assert notices.count() == told
    if told:
        (notice,) = notices
        assert notice.recipient == world.centre_district_a
        assert "王小明" not in notice.title + notice.body and "王*明" in notice.body  # masked
        assert notice.link == CaseFlow.instance.reverse("process_detail", args=[services.main_processes(case)[0].pk])
        assert notice.urgent == (tier == "red")


def test_on_leave_is_not_leaving_nothing_pauses(world, open_case):
    case, _ = open_case(world.student_a1_3, "orange")
    set_status(world.student_a1_3, StudentStatus.ON_LEAVE)  # 休学
    case.refresh_from_db()
    assert case.paused_at is None and not CaseProcess.objects.filter(case=case, data__side=HANDOVER).exists()
    assert not Notification.objects.filter(kind=LEAVER).exists()
    with later(30):
        services.workflow_tick()
    assert overdue(case) > 0  # its clocks run as ever


def test_a_returning_students_clocks_run_again_moved_on_by_the_pause(world, open_case):
    case, process = open_case(world.student_a1_3, "yellow")
    staffed(world, process, "yellow")
    interview = active(process, CaseFlow.interview)
    due = interview.clock.due_at  # yellow: 7 days after the opening
    set_status(world.student_a1_3, StudentStatus.GRADUATED)
    with later(20):  # a rollover undone three weeks later
        set_status(world.student_a1_3, StudentStatus.ACTIVE)
        case.refresh_from_db()
        assert case.paused_at is None
        assert case.history.first().history_change_reason == "clocks run again: the student is enrolled again"
        assert handover_task_cancelled(case)
        interview.clock.refresh_from_db()
        moved = interview.clock.due_at - due  # nothing overdue from the pause: the due time moved on by it
        assert datetime.timedelta(days=20) <= moved < datetime.timedelta(days=20, seconds=30)
        services.workflow_tick()
        assert overdue(case) == 0
    with later(28):  # past the moved due time: the clock fires again
        services.workflow_tick()
        assert overdue(case) > 0


def test_a_returning_students_crisis_alert_climbs_again_after_its_window(world, open_case):
    case, _ = open_case(world.student_a1_3, "red")
    alert = alerts.crisis_alert_raise(world.student_a1_3, kind=AlertKind.RED, event_key="test:back", case=case)
    window = alert.next_escalation_at - alert.raised_at
    set_status(world.student_a1_3, StudentStatus.TRANSFERRED)
    with later(2):
        set_status(world.student_a1_3, StudentStatus.ACTIVE)
        alert.refresh_from_db()
        assert alert.next_escalation_at > timezone.now()  # not climbing at once because of the pause
        assert alert.next_escalation_at - timezone.now() <= window


def handover_task_cancelled(case) -> bool:
    process = CaseProcess.objects.get(case=case, data__side=HANDOVER)
    return process.status == STATUS.CANCELED and not nodes_open(process)


def test_a_graduates_case_followed_to_the_next_school_starts_again_there(world, open_case):
    """小升初 / 中考: the graduate turns up in the next school's class list; the move confirmed, the transfer takes over
    as the hand-over (its own part is the transfer's: only the leaver's part is asserted here)."""
    case, process = open_case(world.student_a1_3, "orange")
    staffed(world, process, "orange")
    set_status(world.student_a1_3, StudentStatus.GRADUATED)
    student = Student.objects.get(pk=world.student_a1_3.pk)
    move = SchoolMove.objects.create(
        student=student, from_school=world.school_a1, from_class=world.class_a1_3, from_student_no=student.student_no,
        from_status=StudentStatus.GRADUATED, to_school=world.school_a2, to_class=world.class_a2,
        to_student_no="A2-0001", row={"status": "active"}, basis=MoveBasis.NATIONAL_ID,
    )  # fmt: skip
    from roster.moves import move_confirm

    with later(40):
        move_confirm(world.school_admin_a2, move)
        case.refresh_from_db()
        assert case.paused_at is None and case.status in (CaseStatus.OPEN, CaseStatus.CLOSING)
        assert case.history.filter(history_change_reason="clocks run again: the student moved school").exists()
        assert handover_task_cancelled(case)
        assert Student.objects.get(pk=student.pk).school_id == world.school_a2.pk
        assert Case.objects.filter(student=student).count() == 1  # the same case travels, nothing duplicated
