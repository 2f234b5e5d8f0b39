"""Forged posts to the case steps (Viewflow at /work/): the step's own fields with random values, plus fields no form
has (tier, school, owner, status, case, process, student, id, anything); and posts to a task of another school, one
that does not exist, one already done, one someone else holds. Never a 500; a refused or invalid post changes
nothing at all; a valid one changes only what its form says, never the case's school or a task's owner.

The database persists across the examples of one test: each example snapshots the rows before and after itself.
"""

import datetime
import os

import pytest
from django.apps import apps
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from viewflow.workflow.models import Process, Task
from viewflow.workflow.status import STATUS

from cases import services as case_services
from cases.models import Case, InterviewNote
from roster.roles import Role
from screening.definitions import RiskTier
from tests.factories.cases import active, take
from tests.factories.cases import task_url as url
from tests.factories.roster import StudentFactory, staff_with_role
from workflows import forms, services
from workflows.flows import CaseFlow
from workflows.models import CaseProcess

FUZZ = settings(
    max_examples=int(os.environ.get("FUZZ_EXAMPLES", "25")),  # more for a deeper run, e.g. FUZZ_EXAMPLES=300
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
FORGED_NAMES = [
    "tier", "school", "school_id", "owner", "owner_id", "status", "case", "case_id", "process", "process_id",
    "student", "student_id", "id", "pk", "task", "flow_task", "triaged", "opened_by", "members", "seat", "user",
    "psychology_teacher", "school_leader", "restricted", "approve", "_case", "_continue",
]  # fmt: skip


# --- Rows a post may touch --------------------------------------------------------------------------------------


def snapshot() -> dict:
    """Row counts of every cases model (history included) and of the flow's tables, with every case's and task's
    state: what "changes nothing" is checked against."""
    models = [*apps.get_app_config("cases").get_models(), Task, Process, CaseProcess]
    return {
        "counts": {model._meta.label: model.objects.count() for model in models},
        "cases": list(
            Case.objects.order_by("pk").values_list(
                "pk", "tier", "screened_tier", "school_id", "student_id", "status", "triaged", "opened_by_id"
            )
        ),
        "tasks": list(Task.objects.order_by("pk").values_list("pk", "status", "owner_id", "flow_task", "process_id")),
    }


def case_state(case: Case) -> tuple:
    case.refresh_from_db()
    return case.school_id, case.student_id, case.opened_by_id


# --- Forged fields --------------------------------------------------------------------------------------------


@st.composite
def forged_fields(draw, targets: dict, legitimate: set[str]) -> dict:
    """Fields no step form has, with values aimed at something: another school, another person, another task."""
    names = draw(
        st.lists(st.sampled_from(FORGED_NAMES) | st.text(min_size=1, max_size=20), max_size=6, unique=True)
    )  # fmt: skip
    value = st.one_of(
        st.sampled_from(sorted(targets)).map(targets.get),
        st.sampled_from([*RiskTier.values, "done", "assigned", "1", "0", "-1", "on", ""]),
        st.text(max_size=40),
        st.integers(-(2**63), 2**63).map(str),
    )
    return {
        name: draw(st.lists(value, min_size=1, max_size=3)) if draw(st.booleans()) else draw(value)
        for name in names
        if name not in legitimate
    }


@pytest.fixture
def targets(world, open_case):
    """What a forged field may point at: another school, its staff and its case, and people of this school."""
    counselor_b1 = staff_with_role(Role.PSYCHOLOGY_TEACHER, world.school_b1, username="counselor_b1")
    _case_b1, process_b1 = open_case(world.student_b1, "red")
    return {
        "other_school": str(world.school_b1.pk),
        "other_school_code": world.school_b1.code,
        "other_counselor": str(counselor_b1.pk),
        "principal": str(world.principal_a1.pk),
        "homeroom": str(world.homeroom_a1_3.pk),
        "superuser": str(world.superuser.pk),
        "other_task": str(active(process_b1, CaseFlow.triage).pk),
        "other_process": str(process_b1.pk),
        "other_case": str(process_b1.case.pk),
        "other_student": str(world.student_b1.pk),
    }


def new_case(world, open_case, tier="yellow"):
    return open_case(StudentFactory(school_class=world.class_a1_3), tier)


def assert_changed_nothing(before: dict) -> None:
    assert snapshot() == before


def assert_no_foreign_owner(process, allowed: set) -> None:
    owners = set(Task.objects.filter(process=process).values_list("owner_id", flat=True))
    assert owners <= allowed | {None}, owners


# --- The step forms, fuzzed -----------------------------------------------------------------------------------

tier_value = st.sampled_from(RiskTier.values) | st.text(max_size=12)
note_value = st.sampled_from(["面谈确认：学业压力", "   ", "x" * 20_000]) | st.text(max_size=200)


@FUZZ
@given(data=st.data())
def test_forged_triage_posts_change_only_the_confirmed_tier(client, world, open_case, targets, data):
    screened = data.draw(st.sampled_from(["yellow", "orange", "red"]), label="screened tier")
    case, process = new_case(world, open_case, screened)
    triage = take(world.counselor_a1, process, CaseFlow.triage)
    school = case_state(case)
    posted = {"tier": data.draw(tier_value, label="tier"), "reason": data.draw(note_value, label="reason")}
    posted |= data.draw(forged_fields(targets, set(posted)), label="forged")
    client.force_login(world.counselor_a1)
    before = snapshot()

    response = client.post(url(triage, "execute"), posted)

    assert response.status_code in (200, 302), response.status_code
    triage.refresh_from_db()
    event(f"{response.status_code}, task {triage.status}")
    if triage.status != STATUS.DONE:
        assert_changed_nothing(before)
        return
    case.refresh_from_db()
    assert case.tier == posted["tier"] and case.triaged
    assert case_state(case) == school
    assert triage.owner == world.counselor_a1
    assert_no_foreign_owner(process, {world.counselor_a1.pk})


@FUZZ
@given(data=st.data())
def test_forged_staffing_posts_seat_only_the_schools_staff(client, world, open_case, targets, data):
    case, process = new_case(world, open_case)
    services.triage_done(world.counselor_a1, take(world.counselor_a1, process, CaseFlow.triage), tier="yellow",
                         reason="确认")  # fmt: skip
    staffing = take(world.counselor_a1, process, CaseFlow.staffing)
    proposal = {seat: str(user.pk) for seat, user in case_services.team_proposal(case).items()}
    others = st.sampled_from([*targets.values(), "", "0", "abc"]) | st.text(max_size=8)
    # Mostly the proposed person, so that some posts get through; otherwise anyone, of any school, or no one.
    posted = {
        seat: data.draw(st.sampled_from([pk, pk, pk, None]), label=seat) or data.draw(others, label=f"{seat}, other")
        for seat, pk in proposal.items()
    }
    posted |= data.draw(forged_fields(targets, set(posted)), label="forged")
    school = case_state(case)
    client.force_login(world.counselor_a1)
    before = snapshot()

    response = client.post(url(staffing, "execute"), posted)

    assert response.status_code in (200, 302), response.status_code
    staffing.refresh_from_db()
    event(f"{response.status_code}, task {staffing.status}")
    if staffing.status != STATUS.DONE:
        assert_changed_nothing(before)
        return
    # Done: the team is who the form named, each a holder of the seat's role at the case's own school.
    team = dict(case.team.filter(left_at__isnull=True).values_list("seat", "user_id"))
    assert {seat: str(pk) for seat, pk in team.items()} == {seat: posted[seat] for seat in proposal}
    choices = forms.StaffingForm(case=case, user=world.counselor_a1).fields
    assert all(choices[seat].queryset.filter(pk=pk).exists() for seat, pk in team.items())
    case.refresh_from_db()
    assert case_state(case) == school and case.tier == "yellow"
    assert_no_foreign_owner(process, set(team.values()) | {world.counselor_a1.pk})


@FUZZ
@given(data=st.data())
def test_forged_interview_posts_write_a_note_and_nothing_else(client, world, open_case, targets, data):
    case, process = new_case(world, open_case)
    services.triage_done(world.counselor_a1, take(world.counselor_a1, process, CaseFlow.triage), tier="yellow",
                         reason="确认")  # fmt: skip
    services.staffing_done(world.counselor_a1, take(world.counselor_a1, process, CaseFlow.staffing),
                           case_services.team_proposal(case))  # fmt: skip
    interview = active(process, CaseFlow.interview)
    posted = {"note": data.draw(note_value, label="note")}
    if data.draw(st.booleans(), label="restricted given"):
        posted["restricted"] = data.draw(st.sampled_from(["on", "true", "1", "false", ""]) | st.text(max_size=5))
    posted |= data.draw(forged_fields(targets, set(posted)), label="forged")
    school, team = case_state(case), set(case.team.values_list("seat", "user_id", "left_at"))
    client.force_login(world.counselor_a1)
    before = snapshot()

    response = client.post(url(interview, "execute"), posted)

    assert response.status_code in (200, 302), response.status_code
    interview.refresh_from_db()
    event(f"{response.status_code}, task {interview.status}")
    if interview.status != STATUS.DONE:
        assert_changed_nothing(before)
        return
    case.refresh_from_db()
    assert (case.tier, case_state(case), interview.owner) == ("yellow", school, world.counselor_a1)
    assert set(case.team.values_list("seat", "user_id", "left_at")) == team
    assert InterviewNote.objects.filter(case=case).count() == 1
    assert_no_foreign_owner(process, {user_id for _seat, user_id, _left in team})


# --- Posts to a task that is not the user's to do -------------------------------------------------------------


@pytest.fixture
def foreign_tasks(world, open_case, targets):
    """Tasks the counselor of A1 (or a second one) may not act on, and the answer each must get."""
    case, process = new_case(world, open_case)
    triage = take(world.counselor_a1, process, CaseFlow.triage)
    services.triage_done(world.counselor_a1, triage, tier="yellow", reason="确认")
    staffing = active(process, CaseFlow.staffing)  # in the school's queue
    colleague = staff_with_role(Role.PSYCHOLOGY_TEACHER, world.school_a1, username="counselor2_a1")
    services.task_claim(colleague, staffing)  # held by a colleague
    other_triage = Task.objects.get(pk=targets["other_task"])
    return {
        # (task, process id in the URL, task id in the URL, who posts, the statuses the answer may have)
        "another school's task": (other_triage, other_triage.process_id, other_triage.pk, world.counselor_a1, {404}),
        "a task that does not exist": (triage, process.pk, 10**9, world.counselor_a1, {404}),
        "a task under another case's URL": (triage, other_triage.process_id, triage.pk, world.counselor_a1, {404}),
        "a task already done": (triage, process.pk, triage.pk, world.counselor_a1, {302}),
        "a task a colleague holds": (staffing, process.pk, staffing.pk, world.counselor_a1, {302}),
        "a task a sibling school's counselor posts to": (staffing, process.pk, staffing.pk, world.counselor_a2, {404}),
    }


@pytest.mark.parametrize(
    "target",
    [
        "another school's task",
        "a task that does not exist",
        "a task under another case's URL",
        "a task already done",
        "a task a colleague holds",
        "a task a sibling school's counselor posts to",
    ],
)
@settings(FUZZ, max_examples=max(4, FUZZ.max_examples // 3))
@given(data=st.data())
def test_a_post_to_a_task_not_ones_own_changes_nothing(client, world, foreign_tasks, targets, target, data):
    task, process_pk, task_pk, user, statuses = foreign_tasks[target]
    action = data.draw(st.sampled_from(["execute", "assign", "unassign", "index", "detail"]), label="action")
    legitimate = {
        "triage": {"tier": "red", "reason": "升级"},
        "staffing": {"psychology_teacher": str(user.pk), "homeroom_teacher": targets["homeroom"]},
    }[task.flow_task.name]
    posted = legitimate | data.draw(forged_fields(targets, set(legitimate)), label="forged")
    path = task.flow_task.reverse(action, args=[process_pk, task_pk])
    client.force_login(user)
    before = snapshot()

    response = client.post(path, posted)

    assert response.status_code != 500
    event(f"{action}: {response.status_code}")
    if action != "detail":  # the stock detail page answers a POST with 405; it is read-only either way
        assert response.status_code in statuses, (response.status_code, path)
    assert_changed_nothing(before)


def test_the_review_date_cannot_be_forged_into_the_past_or_onto_someone_off_the_team(client, world, open_case):
    """A plan with a past date or a measure for someone off the team is an invalid form: nothing is written."""
    case, process = new_case(world, open_case)
    services.triage_done(world.counselor_a1, take(world.counselor_a1, process, CaseFlow.triage), tier="yellow",
                         reason="确认")  # fmt: skip
    services.staffing_done(world.counselor_a1, take(world.counselor_a1, process, CaseFlow.staffing),
                           case_services.team_proposal(case))  # fmt: skip
    services.interview_done(world.counselor_a1, active(process, CaseFlow.interview), note="面谈")
    plan = active(process, CaseFlow.plan)
    client.force_login(world.counselor_a1)
    future = (datetime.date.today() + datetime.timedelta(days=30)).isoformat()
    for posted in (
        {"goals": "稳定", "review_on": "2000-01-01", "measure_1": "谈话", "responsible_1": world.counselor_a1.pk},
        {"goals": "稳定", "review_on": future, "measure_1": "谈话", "responsible_1": world.principal_a1.pk},
        {"goals": "稳定", "review_on": "9999-99-99", "measure_1": "谈话", "responsible_1": world.counselor_a1.pk},
    ):
        before = snapshot()
        response = client.post(url(plan, "execute"), {**posted, "tier": "red", "school": world.school_b1.pk})
        assert response.status_code == 200
        assert_changed_nothing(before)


@pytest.mark.parametrize("tier", ["yellow", "green"])
def test_a_triage_reason_longer_than_a_history_reason_is_kept_cut_not_a_500(client, world, open_case, tier):
    """Regression (found by the triage fuzz on PostgreSQL): the reason went whole into simple-history's
    varchar(100) change reason, and PostgreSQL refused it: a 500."""
    case, process = new_case(world, open_case)
    triage = take(world.counselor_a1, process, CaseFlow.triage)
    client.force_login(world.counselor_a1)
    response = client.post(url(triage, "execute"), {"tier": tier, "reason": "面谈后确认" * 100})
    assert response.status_code == 302
    triage.refresh_from_db()
    case.refresh_from_db()
    assert triage.status == STATUS.DONE and case.tier == tier
    (reason,) = case.history.filter(history_change_reason__startswith="triage:").values_list(
        "history_change_reason", flat=True
    )
    assert len(reason) == 100 and reason.startswith(f"triage: yellow → {tier}: 面谈后确认") and reason.endswith("…")
