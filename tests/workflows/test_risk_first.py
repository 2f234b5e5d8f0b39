"""Risk-first task and case lists (issue 16, item 4): an open crisis alert first, then red, orange, yellow, then the
step's due time; a new red triage is on the first page of the queue for every psychology teacher of the school,
however many triages wait; tier and step filters; a constant number of queries."""

import datetime

import pytest
from django.utils import timezone

from cases.models import AlertKind, AlertStatus, CrisisAlert
from roster.roles import Role
from tests.factories.cases import active, many_flagged_cases, take
from tests.factories.roster import StudentFactory, staff_with_role
from workflows import selectors, services
from workflows.flows import CaseFlow
from workflows.models import TaskClock

QUEUE = "/work/case/queue/"
CASES = "/work/case/flows/"
PAGE = 50  # the frontend's page size


def quiet_alerts():
    """Alerts raised by the screening results themselves (cases.alerts) are set aside: each test raises its own."""
    CrisisAlert.objects.filter(status=AlertStatus.OPEN).update(status=AlertStatus.WITHDRAWN)


def alert_on(case, *, kind=AlertKind.RED):
    return CrisisAlert.objects.create(
        student=case.student, school=case.school, case=case, kind=kind, event_key=f"test:{case.pk}",
        raised_at=timezone.now(), in_school_hours=True,
    )  # fmt: skip


def clock(task, case, due_at):
    TaskClock.objects.update_or_create(task=task, defaults={"case": case, "step": "triage", "due_at": due_at})


def triage_of(process):
    return active(process, CaseFlow.triage)


def test_a_new_red_triage_is_on_the_first_page_of_the_queue_for_every_psychology_teacher(client, world, open_case):
    second = staff_with_role(Role.PSYCHOLOGY_TEACHER, world.school_a1, username="counselor_a1_second")
    many_flagged_cases(world, 200)
    quiet_alerts()
    red, process = open_case(world.student_a1_5, "red")
    triage = triage_of(process)
    for counselor in (world.counselor_a1, second):
        first_page = list(selectors.queue(counselor)[:PAGE])
        assert first_page[0].pk == triage.pk
        client.force_login(counselor)
        response = client.get(QUEUE)
        assert response.status_code == 200
        assert f">#{triage.pk}<" in response.content.decode()


def test_the_queue_orders_crisis_then_red_orange_yellow_then_due_time(world, open_case):
    students = [StudentFactory(school_class=world.class_a1_3) for _ in range(5)]
    yellow_late, p_yellow_late = open_case(students[0], "yellow")
    yellow_soon, p_yellow_soon = open_case(students[1], "yellow")
    orange, p_orange = open_case(students[2], "orange")
    red, p_red = open_case(students[3], "red")
    alerted, p_alerted = open_case(students[4], "yellow")
    quiet_alerts()
    now = timezone.now()
    clock(triage_of(p_yellow_late), yellow_late, now + datetime.timedelta(days=3))
    clock(triage_of(p_yellow_soon), yellow_soon, now + datetime.timedelta(hours=2))
    alert_on(alerted, kind=AlertKind.CRITICAL)  # a critical answer on a yellow case: first of all
    order = [t.process.caseprocess.case.pk for t in selectors.queue(world.counselor_a1)]
    assert order == [alerted.pk, red.pk, orange.pk, yellow_soon.pk, yellow_late.pk]

    # Taken, the alert no longer lifts its case: the yellow case goes back among the yellows, by its due time.
    CrisisAlert.objects.filter(case=alerted).update(status=AlertStatus.ACKNOWLEDGED)
    clock(triage_of(p_alerted), alerted, now + datetime.timedelta(days=5))
    order = [t.process.caseprocess.case.pk for t in selectors.queue(world.counselor_a1)]
    assert order == [red.pk, orange.pk, yellow_soon.pk, yellow_late.pk, alerted.pk]


def test_the_case_list_puts_open_alerts_and_red_first(client, world, open_case):
    students = [StudentFactory(school_class=world.class_a1_3) for _ in range(3)]
    yellow, _ = open_case(students[0], "yellow")
    red, _ = open_case(students[1], "red")
    alerted, _ = open_case(students[2], "yellow")
    quiet_alerts()
    alert_on(alerted)
    assert [c.pk for c in selectors.case_list(world.counselor_a1)] == [alerted.pk, red.pk, yellow.pk]


def test_the_task_lists_filter_by_tier_and_step(client, world, open_case):
    students = [StudentFactory(school_class=world.class_a1_3) for _ in range(2)]
    yellow, p_yellow = open_case(students[0], "yellow")
    red, p_red = open_case(students[1], "red")
    services.triage_done(world.counselor_a1, take(world.counselor_a1, p_yellow, CaseFlow.triage), tier="yellow",
                         reason="确认")  # fmt: skip
    staffing = active(p_yellow, CaseFlow.staffing)
    red_triage = triage_of(p_red)
    client.force_login(world.counselor_a1)

    def shown(url):
        body = client.get(url).content.decode()
        return {pk for pk in (staffing.pk, red_triage.pk) if f">#{pk}<" in body}

    assert shown(QUEUE) == {staffing.pk, red_triage.pk}
    assert shown(f"{QUEUE}?tier=red") == {red_triage.pk}
    assert shown(f"{QUEUE}?tier=yellow") == {staffing.pk}
    assert shown(f"{QUEUE}?step=staffing") == {staffing.pk}
    assert shown(f"{QUEUE}?step=triage&tier=red") == {red_triage.pk}
    assert shown(f"{QUEUE}?step=no_such_step") == set()  # a forged choice lists nothing, not everything

    def cases(url):
        body = client.get(url).content.decode()
        return {c.pk for c in (yellow, red) if f">{c}<" in body}

    assert cases(CASES) == {yellow.pk, red.pk}
    assert cases(f"{CASES}?tier=red") == {red.pk}
    assert cases(f"{CASES}?step=staffing") == {yellow.pk}


@pytest.mark.parametrize("path", [QUEUE, "/work/case/inbox/", CASES])
def test_risk_first_lists_cost_the_same_queries_with_alerts_and_clocks(client, world, path, django_assert_num_queries):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext
    from viewflow.workflow.models import Task

    from cases.models import Case

    def decorate():
        # Every third case alerted, every other task with a clock, half of the tasks taken by the counselor.
        quiet_alerts()
        for n, case in enumerate(Case.objects.filter(crisis_alerts__isnull=True).order_by("pk")):
            if n % 3 == 0:
                alert_on(case)
        for n, task in enumerate(Task.objects.filter(flow_task=CaseFlow.triage, clock__isnull=True).order_by("pk")):
            if n % 2 == 0:
                clock(task, task.process.caseprocess.case, timezone.now() + datetime.timedelta(hours=n))
            if n % 4 == 0:
                Task.objects.filter(pk=task.pk).update(owner=world.counselor_a1, status="ASSIGNED")

    def queries():
        with CaptureQueriesContext(connection) as captured:
            assert client.get(path).status_code == 200
        return len(captured)

    client.force_login(world.counselor_a1)
    many_flagged_cases(world, 5)
    decorate()
    client.get(path)
    small = queries()
    many_flagged_cases(world, 120, start=5)
    decorate()
    assert queries() == small
