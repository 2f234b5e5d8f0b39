"""The crisis loop's alerts (cases.alerts), told with the personas of tests/conftest.py: a critical answer or a red
tier reaches the psychology teacher on duty first, climbs the chain while nobody takes it, stops at "我来处理", and
the proctor gets a care instruction with no result in it. Time moves forward by passing `now` (and, for the django-q2
scheduler, by moving the due times into the past)."""

import datetime
import re
from zoneinfo import ZoneInfo

import pytest
from django.core.exceptions import PermissionDenied
from django.utils import timezone
from django_q.models import Schedule

from cases import alerts
from cases.models import AlertKind, AlertStatus, CrisisAlert
from roster.models import DutyKind, DutySlot, Notification
from roster.roles import Role
from screening.services import result_record
from tests.factories.roster import staff_with_role
from tests.factories.screening import ANSWERS, CampaignFactory

SHANGHAI = ZoneInfo("Asia/Shanghai")
MONDAY_10 = datetime.datetime(2026, 12, 7, 10, 0, tzinfo=SHANGHAI)  # a school day, in school hours
MONDAY_21 = datetime.datetime(2026, 12, 7, 21, 0, tzinfo=SHANGHAI)  # the same day, out of hours
MINUTE = datetime.timedelta(minutes=1)
PHQ9_CALM = dict.fromkeys(range(1, 10), "0")
ANSWERS_CRITICAL = {**ANSWERS["green"], "PHQ9": {**PHQ9_CALM, 9: "1"}}  # item 9 "several days": orange, critical
ANSWERS_RED_NOT_ACUTE = {**ANSWERS["green"], "PHQ9": {**PHQ9_CALM, 9: "2"}}  # item 9 more than half the days: red


@pytest.fixture
def people(world):
    """A second psychology teacher at A1 (the counselor is the one on duty), a district duty officer."""
    world.counselor2_a1 = staff_with_role(Role.PSYCHOLOGY_TEACHER, world.school_a1, username="counselor2_a1")
    world.duty_district_a = staff_with_role(Role.DISTRICT_CENTRE, world.district_a, username="duty_district_a")
    for weekday in range(7):
        DutySlot.objects.create(school=world.school_a1, user=world.counselor_a1, kind=DutyKind.PSYCHOLOGY_TEACHER,
                                weekday=weekday, starts=datetime.time(7, 30), ends=datetime.time(17, 30))  # fmt: skip
        DutySlot.objects.create(district=world.district_a, user=world.duty_district_a, kind=DutyKind.DISTRICT_CENTRE,
                                weekday=weekday, starts=datetime.time(0, 0), ends=datetime.time(0, 0))  # fmt: skip
    return world


@pytest.fixture
def campaign(world):
    return CampaignFactory(schools=[world.school_a1, world.school_b1])


@pytest.fixture
def answered(campaign):
    def answered(student, answers, now):
        result = result_record(campaign=campaign, student=student, answers=answers, source="portal").result
        return alerts.crisis_alert_raise_for_result(result.pk, now=now)

    return answered


def told(alert, kind=alerts.ALERT_NOTICE_KIND) -> set[str]:
    subject = f"crisis_alert:{alert.pk}" if kind == alerts.ALERT_NOTICE_KIND else None
    rows = Notification.objects.filter(kind=kind)
    if subject:
        rows = rows.filter(subject_key=subject)
    return set(rows.values_list("recipient__username", flat=True))


def test_an_unacknowledged_red_alert_climbs_every_level_in_order_and_acknowledging_stops_it(people, answered):
    alert = answered(people.student_a1_3, ANSWERS_RED_NOT_ACUTE, MONDAY_10)
    assert (alert.kind, alert.in_school_hours, alert.level) == (AlertKind.RED, True, 1)
    assert told(alert) == {"counselor_a1"}  # the psychology teacher on duty, not everyone
    assert alert.next_escalation_at == MONDAY_10 + 10 * MINUTE  # red: 10 minutes a level

    assert alerts.crisis_alerts_escalate_due(now=MONDAY_10 + 9 * MINUTE) == 0  # not yet
    assert alerts.crisis_alerts_escalate_due(now=MONDAY_10 + 10 * MINUTE) == 1
    assert told(alert) == {"counselor_a1", "counselor2_a1", "principal_a1"}
    alerts.crisis_alerts_escalate_due(now=MONDAY_10 + 20 * MINUTE)
    assert told(alert) == {"counselor_a1", "counselor2_a1", "principal_a1", "duty_district_a"}
    assert "centre_district_a" not in told(alert)  # the officer on duty, not the whole centre

    alert.refresh_from_db()
    alerts.crisis_alert_acknowledge(people.principal_a1, alert, now=MONDAY_10 + 25 * MINUTE)
    assert alerts.crisis_alerts_escalate_due(now=MONDAY_10 + 60 * MINUTE) == 0
    assert "city_centre" not in told(alert)  # the chain stopped before its last level
    alert.refresh_from_db()
    assert (alert.status, alert.acknowledged_by, alert.level) == (AlertStatus.ACKNOWLEDGED, people.principal_a1, 3)
    steps = [(s.level, s.audiences) for s in alert.steps.order_by("pk")]
    assert steps == [(1, "duty_psychology"), (0, "proctor"), (2, "psychology_teachers,principal"),
                     (3, "district_duty")]  # fmt: skip
    assert alert.history.filter(history_change_reason="crisis alert taken", history_user=people.principal_a1).exists()


def test_left_alone_an_alert_reaches_the_city_centre_and_then_stops_climbing(people, answered):
    alert = answered(people.student_a1_3, ANSWERS_RED_NOT_ACUTE, MONDAY_10)
    for minutes in (10, 20, 30, 40, 50):
        alerts.crisis_alerts_escalate_due(now=MONDAY_10 + minutes * MINUTE)
    alert.refresh_from_db()
    assert "city_centre" in told(alert) and alert.level == 4 and alert.next_escalation_at is None


def test_windows_come_from_the_tier_rules_acute_5_minutes_other_critical_answers_30(people, answered, world):
    acute = answered(people.student_a1_3, ANSWERS["red"], MONDAY_10)
    critical = answered(people.student_a1_5, ANSWERS_CRITICAL, MONDAY_10)
    assert (acute.kind, acute.next_escalation_at) == (AlertKind.ACUTE, MONDAY_10 + 5 * MINUTE)
    assert (critical.kind, critical.next_escalation_at) == (AlertKind.CRITICAL, MONDAY_10 + 30 * MINUTE)
    assert critical.critical_items == [["PHQ9", 9]]


def test_out_of_hours_an_alert_starts_at_the_district_duty(people, answered):
    alert = answered(people.student_a1_3, ANSWERS["red"], MONDAY_21)
    assert alert.in_school_hours is False
    assert told(alert) == {"duty_district_a"}
    assert not Notification.objects.filter(kind=alerts.CARE_KIND).exists()  # nobody proctors a class at night
    alerts.crisis_alerts_escalate_due(now=MONDAY_21 + 5 * MINUTE)
    assert told(alert) == {"duty_district_a", "principal_a1", "counselor_a1", "counselor2_a1"}


def test_with_nobody_on_duty_the_first_level_goes_to_every_psychology_teacher(world, answered):
    world.counselor2_a1 = staff_with_role(Role.PSYCHOLOGY_TEACHER, world.school_a1, username="counselor2_a1")
    alert = answered(world.student_a1_3, ANSWERS["red"], MONDAY_10)
    assert told(alert) == {"counselor_a1", "counselor2_a1"}


def test_the_proctor_gets_the_care_instruction_and_nothing_else(people, answered, client):
    alert = answered(people.student_a1_3, ANSWERS_CRITICAL, MONDAY_10)
    (care,) = Notification.objects.filter(kind=alerts.CARE_KIND)
    assert care.recipient == people.homeroom_a1_3 and care.urgent
    text = f"{care.title} {care.body}"
    assert "请留下该生" in care.title or "心理教师" in text
    assert "王小明" not in text and "王" in text  # the masked name, never the full one
    forbidden = re.compile(r"红|橙|黄|绿|red|orange|yellow|PHQ|ASQ|分|得分|题|自杀|自伤|危机|预警", re.IGNORECASE)
    assert forbidden.search(text) is None, text
    # The homeroom teacher was not told of the alert itself, and may not take it.
    assert "homeroom_a1_3" not in told(alert)
    with pytest.raises(PermissionDenied):
        alerts.crisis_alert_acknowledge(people.homeroom_a1_3, alert)
    # Their proctor page says to keep the student, and nothing about why.
    client.force_login(people.homeroom_a1_3)
    page = client.get(care.link).content.decode()
    assert "请留下" in page
    assert forbidden.search(re.sub(r"<[^>]+>", "", page.split("<main", 1)[-1])) is None


def test_a_second_acknowledgement_names_who_took_it_and_changes_nothing(people, answered):
    alert = answered(people.student_a1_3, ANSWERS["red"], MONDAY_10)
    alerts.crisis_alert_acknowledge(people.counselor_a1, alert, now=MONDAY_10 + MINUTE)
    with pytest.raises(alerts.AlertAlreadyTaken) as refused:
        alerts.crisis_alert_acknowledge(people.counselor2_a1, alert, now=MONDAY_10 + 2 * MINUTE)
    assert people.counselor_a1.name in refused.value.messages[0]
    alert.refresh_from_db()
    assert (alert.acknowledged_by, alert.acknowledged_at) == (people.counselor_a1, MONDAY_10 + MINUTE)


def test_another_schools_psychology_teacher_may_not_take_an_alert(people, answered):
    alert = answered(people.student_a1_3, ANSWERS["red"], MONDAY_10)
    with pytest.raises(PermissionDenied):
        alerts.crisis_alert_acknowledge(people.counselor_a2, alert)
    assert list(alerts.crisis_alerts_open_for(people.counselor_a2)) == []
    assert list(alerts.crisis_alerts_open_for(people.counselor2_a1)) == [alert]
    assert list(alerts.crisis_alerts_open_for(people.centre_district_a)) == [alert]


def test_one_alert_per_student_and_event_however_often_the_task_runs(people, answered, campaign):
    alert = answered(people.student_a1_3, ANSWERS["red"], MONDAY_10)
    again = alerts.crisis_alert_raise_for_result(alert.screening_result_id, now=MONDAY_10 + MINUTE)
    assert again.pk == alert.pk and CrisisAlert.objects.count() == 1
    assert Notification.objects.filter(kind=alerts.ALERT_NOTICE_KIND).count() == 1


def test_a_calm_or_merely_yellow_result_raises_no_alert(people, answered):
    assert answered(people.student_a1_3, ANSWERS["yellow"], MONDAY_10) is None
    assert answered(people.student_a1_5, ANSWERS["green"], MONDAY_10) is None
    assert not CrisisAlert.objects.exists()


def test_the_escalation_runs_on_the_task_scheduler_when_its_window_ends(
    people, campaign, django_capture_on_commit_callbacks
):
    from django_q.brokers import get_broker
    from django_q.scheduler import scheduler

    with django_capture_on_commit_callbacks(execute=True):
        result = result_record(campaign=campaign, student=people.student_a1_3, answers=ANSWERS["red"],
                               source="portal").result  # fmt: skip
    alert = CrisisAlert.objects.get(screening_result=result)  # raised by the task worker (sync in tests)
    assert alert.level == 1 and alert.case is not None
    (planned,) = Schedule.objects.filter(func="cases.alerts.crisis_alerts_escalate_due")
    assert abs(planned.next_run - alert.next_escalation_at) < datetime.timedelta(seconds=1)
    # Time moves past the window: the scheduler starts the one-off run, which climbs the alert.
    past = timezone.now() - MINUTE
    CrisisAlert.objects.filter(pk=alert.pk).update(next_escalation_at=past)
    Schedule.objects.filter(pk=planned.pk).update(next_run=past)
    scheduler(broker=get_broker())
    alert.refresh_from_db()
    assert alert.level >= 2


def test_the_minute_tick_climbs_an_alert_whose_one_off_run_slipped(people, answered):
    from workflows.services import workflow_tick

    alert = answered(people.student_a1_3, ANSWERS["red"], MONDAY_10)
    CrisisAlert.objects.filter(pk=alert.pk).update(next_escalation_at=timezone.now() - MINUTE)  # time has passed
    assert workflow_tick()["alerts"] == 1
    alert.refresh_from_db()
    assert alert.level == 2


def test_the_alert_is_raised_at_submit_without_waiting_for_the_task_worker(
    people, campaign, monkeypatch, django_capture_on_commit_callbacks
):
    """A city's screening queues thousands of case openings: the alert must not wait behind them."""
    from django_q.conf import Conf
    from django_q.models import OrmQ

    from workflows import tasks

    monkeypatch.setattr(Conf, "SYNC", False)  # the worker is busy: queued tasks wait
    with django_capture_on_commit_callbacks(execute=True):
        result = result_record(campaign=campaign, student=people.student_a1_5, answers=ANSWERS_CRITICAL,
                               source="portal").result  # fmt: skip
    alert = CrisisAlert.objects.get(screening_result=result)
    assert alert.case is None and Notification.objects.filter(kind=alerts.ALERT_NOTICE_KIND).exists()
    assert [q.task["func"] for q in OrmQ.objects.all()] == ["workflows.tasks.case_open_for_result"]
    tasks.case_open_for_result(result.pk)  # the worker catches up: the case, linked to the alert
    alert.refresh_from_db()
    assert alert.case == result.cases.get() and CrisisAlert.objects.count() == 1
    assert alert.case.safety_assessments.count() == 0  # the assessment is a task, opened once:
    from workflows.models import CaseProcess

    assert CaseProcess.objects.filter(case=alert.case, data__side="safety_assessment").count() == 1
