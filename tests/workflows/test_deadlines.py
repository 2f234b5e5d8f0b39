"""A clock on every human step (issue 16 item 5) and the overdue chain: each step of a case gets a due time from the
tier rules (cases/tier_rules.yaml), school days follow the district's calendar, and an overdue step reminds the
assignee (or the queue), then the principal, then the district centre on duty, each once. Time moves forward by
passing `now=` to the sweep, or by dating a task's start back and starting its clock again."""

import datetime
import zoneinfo

import pytest
from django.utils import timezone
from viewflow.workflow.models import Process, Task

from cases import services as case_services
from cases.models import Case
from cases.tiers import due_after, tier_rule
from roster.models import CalendarDay, CalendarDayKind, DutyKind, DutySlot, Notification
from roster.roles import Role
from screening.services import result_record
from tests.factories.cases import active, take
from tests.factories.roster import staff_with_role
from tests.factories.screening import ANSWERS, CampaignFactory
from workflows import services
from workflows.deadlines import OVERDUE_KIND, task_clock_start, task_deadlines_sweep
from workflows.flows import CaseFlow
from workflows.models import TaskClock

SHANGHAI = zoneinfo.ZoneInfo("Asia/Shanghai")
FRIDAY = datetime.datetime(2025, 11, 14, 10, 0, tzinfo=SHANGHAI)  # an ordinary Friday in a year the calendar knows
MONDAY = datetime.datetime(2025, 11, 17, 10, 0, tzinfo=SHANGHAI)


def reminders(task, **filters):
    return Notification.objects.filter(kind=OVERDUE_KIND, subject_key__startswith=f"task:{task.pk}:", **filters)


def told(task) -> set[str]:
    return set(reminders(task).values_list("recipient__username", flat=True))


def started_at(task, created) -> TaskClock:
    """The task as if it had opened at `created`: its clock started again from there."""
    Task.objects.filter(pk=task.pk).update(created=created)
    TaskClock.objects.filter(task_id=task.pk).delete()
    return task_clock_start(Task.objects.get(pk=task.pk))


def walk_orange(world, open_case):
    """An orange case through every human step to its closure's approval; yields (node, task) as each opens."""
    case, process = open_case(world.student_a1_3, "orange")
    c, centre = world.counselor_a1, world.centre_district_a
    yield CaseFlow.triage, active(process, CaseFlow.triage)
    services.triage_done(c, take(c, process, CaseFlow.triage), tier="orange", reason="确认")
    yield CaseFlow.staffing, active(process, CaseFlow.staffing)
    services.staffing_done(c, take(c, process, CaseFlow.staffing), case_services.team_proposal(case))
    yield CaseFlow.interview, active(process, CaseFlow.interview)
    yield CaseFlow.parent_contact, active(process, CaseFlow.parent_contact)
    services.interview_done(c, active(process, CaseFlow.interview), note="面谈")
    services.parent_contact_done(world.homeroom_a1_3, active(process, CaseFlow.parent_contact), guardian="母亲",
                                 channel="phone", outcome="同意", consent="given")  # fmt: skip
    yield CaseFlow.plan, active(process, CaseFlow.plan)
    services.plan_done(c, active(process, CaseFlow.plan), goals="安全", needs_referral=True,
                       review_on=datetime.date(2027, 1, 5), measures=[("转介", c)])  # fmt: skip
    yield CaseFlow.request_referral, active(process, CaseFlow.request_referral)
    services.referral_requested(c, active(process, CaseFlow.request_referral), institution="医院", reason="诊断",
                                parental_consent="given")  # fmt: skip
    yield CaseFlow.approve_referral, active(process, CaseFlow.approve_referral)
    services.referral_decided(centre, take(centre, process, CaseFlow.approve_referral), approve=True)
    yield CaseFlow.make_referral, active(process, CaseFlow.make_referral)
    services.referral_made(c, active(process, CaseFlow.make_referral), referred_on=datetime.date(2026, 12, 8),
                           outcome="已预约")  # fmt: skip
    yield CaseFlow.follow_up, active(process, CaseFlow.follow_up)
    services.follow_up_done(c, active(process, CaseFlow.follow_up), note="好转", outcome="propose_closure")
    yield CaseFlow.approve_closure, active(process, CaseFlow.approve_closure)


def reach(world, open_case, node: str):
    """The orange case walked until the task of `node` opens: that task."""
    return next(task for flow_task, task in walk_orange(world, open_case) if flow_task.name == node)


STEPS = [
    ("triage", "triage"), ("staffing", "staffing"), ("interview", "interview"), ("parent_contact", "parent_contact"),
    ("plan", "plan"), ("request_referral", "request_referral"), ("approve_referral", "approval"),
    ("make_referral", "make_referral"), ("follow_up", "follow_up"), ("approve_closure", "approval"),
]  # fmt: skip


@pytest.mark.parametrize(("node", "step"), STEPS)
def test_every_human_step_gets_a_due_time_from_the_tier_rules(world, open_case, node, step):
    task = reach(world, open_case, node)
    clock = TaskClock.objects.get(task=task)
    assert clock.step == step and clock.case.tier == "orange"
    # The first interview and the parent contact count from the start of the case's process, the rest from the task.
    start = task.process.created if step in ("interview", "parent_contact") else task.created
    assert clock.due_at == due_after("orange", step, start, world.school_a1)
    assert clock.next_reminder_at == clock.due_at and clock.reminded == 0  # the chain's first step: at the due time


def test_the_next_follow_up_is_open_at_once_and_due_the_tiers_interval_later(world, open_case):
    task = reach(world, open_case, "follow_up")
    assert task.owner == world.counselor_a1  # in her inbox now, with its date
    assert task.clock.due_at == task.created + datetime.timedelta(days=7)  # orange: weekly
    assert task.clock.due_at > timezone.now() + datetime.timedelta(days=6)


def test_red_triage_is_due_within_the_hour(world, open_case):
    case, process = open_case(world.student_a1_3, "red")
    triage = active(process, CaseFlow.triage)
    assert triage.clock.due_at == triage.created + datetime.timedelta(hours=1)
    assert not tier_rule("red").deadline("triage").school_days  # red never waits for a school day


def test_orange_triage_on_a_friday_is_due_on_monday(world, open_case):
    case, process = open_case(world.student_a1_3, "orange")
    clock = started_at(active(process, CaseFlow.triage), FRIDAY)
    assert clock.due_at == MONDAY  # 1 school day: the weekend does not count


def test_a_public_holiday_is_skipped(world, open_case):
    CalendarDay.objects.create(district=world.district_a, date=MONDAY.date(), kind=CalendarDayKind.HOLIDAY,
                               name="校庆")  # fmt: skip
    case, process = open_case(world.student_a1_3, "orange")
    clock = started_at(active(process, CaseFlow.triage), FRIDAY)
    assert clock.due_at == MONDAY + datetime.timedelta(days=1)  # Tuesday


def test_a_make_up_workday_counts(world, open_case):
    CalendarDay.objects.create(district=world.district_a, date=FRIDAY.date() + datetime.timedelta(days=1),
                               kind=CalendarDayKind.WORKDAY, name="调休上课")  # fmt: skip
    case, process = open_case(world.student_a1_3, "orange")
    clock = started_at(active(process, CaseFlow.triage), FRIDAY)
    assert clock.due_at == FRIDAY + datetime.timedelta(days=1)  # the Saturday with school


def test_another_districts_calendar_does_not_count(world, open_case):
    CalendarDay.objects.create(district=world.district_b, date=MONDAY.date(), kind=CalendarDayKind.HOLIDAY)
    case, process = open_case(world.student_a1_3, "orange")
    assert started_at(active(process, CaseFlow.triage), FRIDAY).due_at == MONDAY


def test_an_overdue_step_reminds_the_queue_then_the_principal_then_the_district_duty(world, open_case):
    other_centre = staff_with_role(Role.DISTRICT_CENTRE, world.district_a, username="centre2_district_a")
    for weekday in range(7):  # the district's duty line: the second centre, round the clock
        DutySlot.objects.create(district=world.district_a, user=other_centre, kind=DutyKind.DISTRICT_CENTRE,
                                weekday=weekday, starts=datetime.time(0), ends=datetime.time(0))  # fmt: skip
    case, process = open_case(world.student_a1_3, "orange")
    triage = active(process, CaseFlow.triage)  # in the school's queue: nobody has taken it
    clock = triage.clock
    due = clock.due_at

    assert task_deadlines_sweep(now=due - datetime.timedelta(minutes=1)) == 0  # not yet due
    assert task_deadlines_sweep(now=due) == 1
    assert told(triage) == {"counselor_a1"}  # whoever may take it from the queue
    (note,) = reminders(triage)
    assert note.urgent and note.link == CaseFlow.instance.reverse("triage:index", args=[process.pk, triage.pk])
    assert "王*明" in note.title and "王小明" not in note.title + note.body  # a masked name
    assert str(CaseFlow.triage.task_title) in note.title and note.title.startswith("已逾期")  # in Chinese
    assert timezone.localtime(due).strftime("%Y-%m-%d %H:%M") in note.body

    clock.refresh_from_db()
    assert clock.reminded == 1 and clock.next_reminder_at == due + datetime.timedelta(hours=4)  # orange: 4 h later
    assert task_deadlines_sweep(now=due + datetime.timedelta(hours=3)) == 0
    assert task_deadlines_sweep(now=due + datetime.timedelta(hours=4)) == 1
    assert told(triage) == {"counselor_a1", "principal_a1"}

    clock.refresh_from_db()
    assert clock.next_reminder_at == tier_rule("orange").overdue_chain[2].after.after(due, world.school_a1)
    services.workflow_tick()  # the every-minute tick, now: nothing more is due yet
    assert task_deadlines_sweep(now=clock.next_reminder_at) == 1
    assert told(triage) == {"counselor_a1", "principal_a1", "centre2_district_a"}  # the one on duty, not every centre
    clock.refresh_from_db()
    assert clock.reminded == 3 and clock.next_reminder_at is None  # the chain is done

    later = clock.due_at + datetime.timedelta(days=30)
    assert task_deadlines_sweep(now=later) == 0  # nothing is sent twice
    assert reminders(triage).count() == 3


def test_a_late_sweep_sends_every_step_due_once_and_in_order(world, open_case):
    case, process = open_case(world.student_a1_3, "red")
    triage = take(world.counselor_a1, process, CaseFlow.triage)  # taken: the assignee is reminded, not the queue
    due = triage.clock.due_at
    assert task_deadlines_sweep(now=due + datetime.timedelta(hours=3)) == 3
    assert told(triage) == {"counselor_a1", "principal_a1", "centre_district_a"}  # nobody on duty: every centre
    assert sorted(reminders(triage).values_list("subject_key", flat=True)) == [
        f"task:{triage.pk}:overdue:{i}" for i in range(3)
    ]
    assert task_deadlines_sweep(now=due + datetime.timedelta(hours=4)) == 0


def test_the_tick_runs_the_sweep(world, open_case):
    case, process = open_case(world.student_a1_3, "red")
    triage = active(process, CaseFlow.triage)
    assert services.workflow_tick()["overdue"] == 0
    TaskClock.objects.filter(task=triage).update(
        due_at=timezone.now() - datetime.timedelta(minutes=5),
        next_reminder_at=timezone.now() - datetime.timedelta(minutes=5),
    )  # fmt: skip
    assert services.workflow_tick()["overdue"] == 1
    assert told(triage) == {"counselor_a1"}


def test_a_task_done_before_its_due_time_reminds_nobody(world, open_case):
    case, process = open_case(world.student_a1_3, "red")
    triage = take(world.counselor_a1, process, CaseFlow.triage)
    services.triage_done(world.counselor_a1, triage, tier="red", reason="确认")
    due = TaskClock.objects.get(task=triage).due_at
    task_deadlines_sweep(now=due + datetime.timedelta(days=3))
    assert not reminders(triage).exists()
    assert TaskClock.objects.get(task=triage).next_reminder_at is None
    assert reminders(active(process, CaseFlow.staffing)).exists()  # the step still open is another matter


def test_an_approval_queue_reminder_leaves_out_the_cases_own_team(world, open_case):
    vice = staff_with_role(Role.PRINCIPAL, world.school_a1, username="vice_principal_a1")
    task = reach(world, open_case, "approve_referral")
    assert task.owner_id is None
    task_deadlines_sweep(now=task.clock.due_at)
    # The approver's role here is the principal's; principal_a1 sits on the orange team (三包一), so only the vice.
    assert told(task) == {"vice_principal_a1"}
    assert vice.pk in reminders(task).values_list("recipient_id", flat=True)


def test_a_reopened_cases_clocks_start_at_the_reopening(world, open_case):
    case, process = open_case(world.student_a1_3, "yellow")
    services.triage_done(world.counselor_a1, take(world.counselor_a1, process, CaseFlow.triage), tier="green",
                         reason="误报")  # fmt: skip
    services.closure_decided(world.principal_a1, take(world.principal_a1, process, CaseFlow.approve_false_positive),
                             approve=True)  # fmt: skip
    case.refresh_from_db()
    assert case.status == "closed"
    # All of that was 30 days ago.
    month = datetime.timedelta(days=30)
    then = timezone.now() - month
    Case.objects.filter(pk=case.pk).update(opened_at=then, clock_from=then)
    Process.objects.filter(pk=process.pk).update(created=then)
    for clock in TaskClock.objects.filter(case=case):
        Task.objects.filter(pk=clock.task_id).update(created=clock.task.created - month)
        TaskClock.objects.filter(pk=clock.pk).update(due_at=clock.due_at - month)

    now = timezone.now()
    reopened = services.case_reopen_and_start(world.counselor_a1, case, "复发")
    triage = active(reopened, CaseFlow.triage)
    assert triage.clock.due_at == due_after("yellow", "triage", triage.created, world.school_a1)
    assert triage.clock.due_at > now
    services.triage_done(world.counselor_a1, take(world.counselor_a1, reopened, CaseFlow.triage), tier="yellow",
                         reason="复发确认")  # fmt: skip
    case.refresh_from_db()
    services.staffing_done(world.counselor_a1, take(world.counselor_a1, reopened, CaseFlow.staffing),
                           case_services.team_proposal(case))  # fmt: skip
    interview = active(reopened, CaseFlow.interview)
    assert interview.clock.due_at >= now + datetime.timedelta(days=7)  # from the reopening, not the first opening
    assert task_deadlines_sweep(now=timezone.now()) == 0  # nothing overdue
    assert not TaskClock.objects.filter(case=case, task__status__in=("NEW", "ASSIGNED"), due_at__lt=now).exists()


def test_a_raise_by_a_re_screen_brings_open_due_times_earlier_never_later(world, open_case):
    case, process = open_case(world.student_a1_3, "yellow")
    triage = active(process, CaseFlow.triage)
    yellow_due = triage.clock.due_at
    red = result_record(campaign=CampaignFactory(schools=[world.school_a1]), student=world.student_a1_3,
                        answers=ANSWERS["red"], source="portal").result  # fmt: skip
    before = timezone.now()
    assert services.case_open_for_result(red.pk) == "raised"
    triage.clock.refresh_from_db()
    assert triage.clock.due_at < yellow_due
    assert before + datetime.timedelta(hours=1) <= triage.clock.due_at <= timezone.now() + datetime.timedelta(hours=1)
    assert triage.clock.next_reminder_at == triage.clock.due_at

    from workflows.deadlines import task_clocks_reset_for_case

    Case.objects.filter(pk=case.pk).update(tier="yellow")  # a lower tier never moves a due time later
    case.refresh_from_db()
    assert task_clocks_reset_for_case(case) == 0
    triage.clock.refresh_from_db()
    assert triage.clock.due_at <= timezone.now() + datetime.timedelta(hours=1)


def test_cases_opened_in_bulk_get_their_triage_clocks(world, campaign):
    from screening.results_import import results_flagged_send

    results = [
        result_record(campaign=campaign, student=s, answers=ANSWERS[t], source="import").result
        for s, t in ((world.student_a1_3, "orange"), (world.student_a1_5, "red"), (world.student_b1, "yellow"))
    ]
    results_flagged_send([r.pk for r in results])
    for result in results:
        case = Case.objects.get(student=result.student)
        (clock,) = TaskClock.objects.filter(case=case)
        assert clock.step == "triage" and clock.task.flow_task == CaseFlow.triage
        assert clock.due_at == due_after(case.tier, "triage", clock.task.created, case.school)
