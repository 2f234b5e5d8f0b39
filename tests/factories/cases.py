"""Cases opened the way a screening flag opens them, and the steps of their process taken as people take them.

`campaign` and `open_case` are fixtures, made available to every test by tests/conftest.py (pytest_plugins); the
rest are plain helpers to import. A module that needs another campaign defines its own `campaign` fixture, which
`open_case` then uses.
"""

import pytest
from django.urls import get_resolver
from django.utils import timezone
from viewflow.workflow.status import STATUS

from cases import services as case_services
from roster.models import Student
from screening.models import ScreeningResult
from screening.services import result_record
from tests.factories.screening import ANSWERS, CampaignFactory
from workflows import services
from workflows.flows import CaseFlow


@pytest.fixture
def campaign(world):
    return CampaignFactory(schools=[world.school_a1, world.school_b1])


@pytest.fixture
def open_case(campaign):
    """open_case(student, tier) -> (case, process): the student's answers score `tier` and the flag opens a case."""

    def open_case(student, tier):
        result = result_record(campaign=campaign, student=student, answers=ANSWERS[tier], source="import").result
        case = case_services.case_open_for_flag(result).case
        return case, services.case_process_start(case)

    return open_case


def many_flagged_cases(world, count: int, start: int = 0) -> None:
    """`count` yellow cases at school A1 opened the way a large import opens them (bulk), each waiting for triage."""
    campaign = CampaignFactory(schools=[world.school_a1])
    students = Student.objects.bulk_create(
        [Student(school=world.school_a1, school_class=world.class_a1_3, student_no=f"Q{n}", name=f"学生{n}",
                 gender="F") for n in range(start, start + count)]
    )  # fmt: skip
    results = ScreeningResult.objects.bulk_create(
        [ScreeningResult(campaign=campaign, student=s, source="import", answers={}, scores={}, tier="yellow",
                         fired_rules=[], ruleset=campaign.ruleset, submitted_at=timezone.now()) for s in students]
    )  # fmt: skip
    services.on_students_flagged(None, results=results)


def active(process, node):
    (task,) = process.task_set.filter(flow_task=node).exclude(status__in=[STATUS.DONE, STATUS.CANCELED])
    return task


def nodes_open(process):
    """The steps waiting (without boundary events armed beside them, `<step>__timeout`)."""
    waiting = process.task_set.exclude(status__in=[STATUS.DONE, STATUS.CANCELED])
    return sorted(t.flow_task.name for t in waiting if "__" not in t.flow_task.name)


def take(user, process, node):
    task = active(process, node)
    services.task_claim(user, task)
    return task


def to_follow_up(process):
    """The next follow-up is open at once, due the tier's interval later (its clock)."""
    return active(process, CaseFlow.follow_up)


def staffed_yellow(world, process):
    """Triaged yellow and staffed from the roster by counselor_a1: the interview opens."""
    services.triage_done(world.counselor_a1, take(world.counselor_a1, process, CaseFlow.triage), tier="yellow",
                         reason="确认")  # fmt: skip
    services.staffing_done(world.counselor_a1, take(world.counselor_a1, process, CaseFlow.staffing),
                           case_services.team_proposal(process.case))  # fmt: skip


def task_url(task, name="index"):
    get_resolver().url_patterns  # noqa: B018  (the site names the flow's URLs when the URLconf loads)
    return task.flow_task.reverse(name, args=[task.process_id, task.pk])


def case_url(process):
    return CaseFlow.instance.reverse("process_detail", args=[process.pk])


def page(response):
    return response.content.decode()
