"""The demo's cases (workflows.demo): after seed_case_demo, cases wait at every step of the case process and each
demo login that works cases has something to do; a second run changes nothing."""

import io
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django_q.conf import Conf
from viewflow.workflow.models import Task
from viewflow.workflow.status import STATUS

from cases.models import Case, CaseTeamMember, Closure, CrisisAlert, Referral, TierChange
from roster.models import Notification, RoleAssignment, Student, User
from roster.roles import Role
from screening.definitions import RiskTier
from screening.demo import build_screening_demo
from screening.models import ScreeningResult
from screening.services import result_record
from tests.factories.screening import ANSWERS, shipped_definitions_loaded
from workflows import selectors
from workflows.demo import build_case_demo
from workflows.flows import CaseFlow
from workflows.models import CaseProcess, main_processes

STEPS = [
    CaseFlow.triage, CaseFlow.approve_false_positive, CaseFlow.staffing, CaseFlow.interview, CaseFlow.parent_contact,
    CaseFlow.plan, CaseFlow.request_referral, CaseFlow.approve_referral, CaseFlow.make_referral,
    CaseFlow.follow_up, CaseFlow.approve_tier_change, CaseFlow.approve_closure,
]  # fmt: skip


@pytest.fixture
def flagged_demo(demo_district):
    """The small demo district and its screening, with every student of the showcase school flagged (but the
    counselor's own class and the class left to answer live): 2 students a class are too few flags otherwise. As
    after `make demo`, no case is open yet (the flags are delivered after commit, which a test never reaches)."""
    shipped_definitions_loaded()
    campaign = build_screening_demo().campaign
    counselor = User.objects.get(username="counselor")
    school = RoleAssignment.objects.get(user=counselor, role=Role.PSYCHOLOGY_TEACHER).school
    skipped = RoleAssignment.objects.filter(role=Role.HOMEROOM_TEACHER, user__username__in=["counselor", "homeroom"])
    students = Student.objects.filter(school=school).exclude(school_class__in=skipped.values("school_class"))
    tiers = ["yellow", "yellow", "orange", "yellow", "red"]
    for n, student in enumerate(students.order_by("pk")):
        if not ScreeningResult.objects.filter(student=student).exclude(tier=RiskTier.GREEN).exists():
            result_record(campaign=campaign, student=student, answers=ANSWERS[tiers[n % len(tiers)]], source="import")
    assert not Case.objects.exists()
    return campaign


def _queued_flags(campaign, share: float) -> list[int]:
    """Part of the flags left in the task worker's queue, as a large import leaves them (ORM broker only)."""
    from django_q.tasks import async_task

    flagged = list(
        ScreeningResult.objects.filter(campaign=campaign).exclude(tier=RiskTier.GREEN).values_list("pk", flat=True)
    )
    queued = flagged[: int(len(flagged) * share)]
    async_task("screening.tasks.results_flagged_send", queued, group="flagged", sync=False)
    return queued


def _rows() -> tuple:
    return (
        Case.objects.count(), Case.history.count(), CaseProcess.objects.count(), Task.objects.count(),
        CaseTeamMember.objects.count(), Referral.objects.count(), Closure.objects.count(),
        TierChange.objects.count(), Notification.objects.count(),
    )  # fmt: skip


def test_the_demo_leaves_cases_at_every_step_and_work_for_each_demo_login(flagged_demo, settings):
    from django_q.models import OrmQ

    settings.DEBUG = False
    with pytest.raises(CommandError):  # synthetic cases written as the demo logins: never on a real deployment
        call_command("seed_case_demo", stdout=io.StringIO())
    assert not Case.objects.exists()

    queued = _queued_flags(flagged_demo, 0.8) if Conf.ORM else []
    demo = build_case_demo()

    assert demo["changed"] and demo["skipped"] == [] and demo["note"] == ""
    assert demo["flags_delivered"] == len(queued)
    assert not [q for q in OrmQ.objects.all() if "results_flagged_send" in q.task["func"]]  # off the worker's queue
    flagged_students = ScreeningResult.objects.exclude(tier=RiskTier.GREEN).values("student_id").distinct()
    assert Case.objects.filter(student_id__in=flagged_students).count() == flagged_students.count()
    assert demo["cases_opened"] == flagged_students.count() - len(queued)  # the rest one by one
    assert main_processes().count() == Case.objects.count()  # every case has its process
    # Beside them, a brief safety assessment for each critical (not acute) answer's alert.
    critical = CrisisAlert.objects.filter(kind="critical", case__isnull=False).count()
    assert CaseProcess.objects.filter(data__side="safety_assessment").count() == critical

    waiting = Task.objects.exclude(status__in=(STATUS.DONE, STATUS.CANCELED))
    for node in STEPS:
        assert waiting.filter(flow_task=node).exists(), node.name
        assert demo["steps"][node.name] == waiting.filter(flow_task=node).count()
    assert demo["steps"]["closed"] == Case.objects.filter(status="closed").count() >= 3
    assert demo["steps"]["overdue"] >= 1
    assert Notification.objects.filter(kind="task_overdue", recipient__username="principal").exists()

    def nodes(tasks):
        return {t.flow_task for t in tasks}

    counselor, homeroom, principal, centre = (
        User.objects.get(username=name) for name in ("counselor", "homeroom", "principal", "district_centre")
    )
    assert {CaseFlow.interview, CaseFlow.plan, CaseFlow.follow_up, CaseFlow.make_referral} <= nodes(
        selectors.inbox(counselor)
    )
    assert CaseFlow.triage in nodes(selectors.queue(counselor))
    home_tasks = list(selectors.inbox(homeroom))
    assert nodes(home_tasks) == {CaseFlow.parent_contact}
    homeroom_class = homeroom.role_assignments.get().school_class
    assert all(t.process.caseprocess.case.student.school_class == homeroom_class for t in home_tasks)  # her class
    assert {CaseFlow.approve_referral, CaseFlow.approve_false_positive} <= nodes(selectors.queue(principal))
    # Lowering the orange case: its 三包一 seats the school's one principal, so the district centre decides.
    assert {CaseFlow.approve_closure, CaseFlow.approve_tier_change} <= nodes(selectors.queue(centre))
    for name in ("counselor", "homeroom", "principal", "district_centre"):
        lists = demo["logins"][name]
        assert lists["inbox"] or lists["queue"], name

    # Separation of duties: nobody decided a request about a case whose team they sat on.
    for model in (Referral, Closure, TierChange):
        for decided in model.objects.exclude(decided_by=None):
            assert not CaseTeamMember.objects.filter(case=decided.case, user=decided.decided_by).exists()

    rows = _rows()
    settings.DEBUG = True
    out = io.StringIO()
    call_command("seed_case_demo", stdout=out)  # a second run changes nothing, and says so
    assert _rows() == rows
    assert "nothing changed" in out.getvalue()
    for line in ("approve_closure", "district_centre", "parent_contact"):
        assert line in out.getvalue()


def test_the_demo_writes_a_class_list_that_stages_the_move_of_a_student_with_an_open_case(flagged_demo, tmp_path):
    """The walk-through of issue 19 that `make demo` prints: the second school's admin imports the file, a move of a
    student with an open orange case at the showcase school is staged (not a new student), and confirming it starts
    the case's transfer to that school."""
    from cases.models import CaseTransfer, TransferStatus
    from roster.importing import ImportRequest, run_import
    from roster.models import MoveStatus, SchoolMove
    from roster.moves import move_confirm
    from workflows.demo import write_move_example

    build_case_demo()
    example = write_move_example(tmp_path)
    admin = User.objects.get(username=example["school_admin"])
    students = Student.objects.count()

    report = run_import(
        ImportRequest(kind="students", data=Path(example["path"]).read_bytes(), filename="move.csv", actor=admin,
                      dry_run=False)
    )  # fmt: skip

    assert report.errors == [] and report.new == 0 and Student.objects.count() == students
    move = SchoolMove.objects.get(status=MoveStatus.PENDING)
    case = Case.objects.get(pk=example["case"])
    assert move.student_id == case.student_id and case.tier == RiskTier.ORANGE and case.active
    move_confirm(admin, move)
    transfer = CaseTransfer.objects.get(case=case)
    assert transfer.status == TransferStatus.PENDING and str(transfer.to_school) == example["to_school"]
