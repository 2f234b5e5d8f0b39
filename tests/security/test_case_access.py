"""Issue 17's case-access findings, as the probe ran them: a role at one place never acts at another (1), a refused
write is logged as refused (7), and a homeroom teacher on the team never reads a colleague's clinical words (8).

The persons here hold two roles at two places: a district auditor of 东湖区 who is also the principal of 西山中学
(the probe's "auditor plus principal"), and a psychology teacher of 东湖第一中学 who is also the homeroom teacher of a
class at 东湖第二中学. Each may do at each place exactly what the role held there allows.
"""

import pytest
from viewflow.workflow.status import STATUS

from cases import access
from cases import services as case_services
from cases.models import CaseStatus, ParentContact, SupportRequest
from roster import scoping
from roster.auth_backends import RolePermissionBackend
from roster.models import AccessLogEntry
from roster.roles import Role
from roster.services import role_grant
from tests.factories.cases import case_url, page, staffed_yellow, take
from tests.factories.roster import staff_with_role
from workflows import services
from workflows.flows import CaseFlow


@pytest.fixture
def auditor_principal(world):
    """Audits 东湖区 (a1, a2) and is the principal of 西山中学 (b1), in another district."""
    person = staff_with_role(Role.DISTRICT_AUDITOR, world.district_a, username="auditor_principal")
    role_grant(actor=None, user=person, role=Role.PRINCIPAL, node=world.school_b1)
    return person


@pytest.fixture
def counselor_homeroom(world):
    """The psychology teacher of 东湖第一中学 (a1) and the homeroom teacher of class 7-1 at 西山中学 (b1)."""
    person = staff_with_role(Role.PSYCHOLOGY_TEACHER, world.school_a1, username="counselor_homeroom")
    role_grant(actor=None, user=person, role=Role.HOMEROOM_TEACHER, node=world.class_b1)
    return person


def closed_case(world, open_case, student):
    """The student's case, closed as a false positive by their school's own psychology teacher and principal."""
    school = student.school
    counselor = staff_with_role(Role.PSYCHOLOGY_TEACHER, school, username=f"counselor_{school.pk}")
    principal = staff_with_role(Role.PRINCIPAL, school, username=f"principal_{school.pk}")
    case, process = open_case(student, "yellow")
    services.triage_done(counselor, take(counselor, process, CaseFlow.triage), tier="green", reason="误报")
    services.closure_decided(principal, take(principal, process, CaseFlow.approve_false_positive), approve=True)
    case.refresh_from_db()
    assert case.status == CaseStatus.CLOSED
    return case, process


def _after(before: int) -> list[tuple[str, str, str]]:
    return [(e.action, e.outcome, e.object_ids) for e in AccessLogEntry.objects.filter(pk__gt=before).order_by("pk")]


def _last() -> int:
    return AccessLogEntry.objects.order_by("-pk").values_list("pk", flat=True).first() or 0


# --- 1. The upward question asks role and place of one assignment --------------------------------------------------


def test_a_role_held_at_one_place_is_not_held_over_another(world, auditor_principal, counselor_homeroom):
    assert not scoping.holds_over(auditor_principal, Role.PRINCIPAL, world.school_a1)
    assert scoping.holds_over(auditor_principal, Role.PRINCIPAL, world.school_b1)
    assert scoping.holds_over(auditor_principal, Role.DISTRICT_AUDITOR, world.school_a1)
    assert auditor_principal not in scoping.holders_over(world.school_a1, Role.PRINCIPAL)
    assert set(scoping.holders_over(world.school_a1, [Role.PRINCIPAL])) == {world.principal_a1}
    backend = RolePermissionBackend()
    assert not backend.has_perm(auditor_principal, "roster.role_principal", world.school_a1)
    assert backend.has_perm(auditor_principal, "roster.role_principal", world.school_b1)
    # A homeroom teacher's class is below the school: never a psychology teacher of 西山中学.
    assert not scoping.holds_over(counselor_homeroom, Role.PSYCHOLOGY_TEACHER, world.school_b1)
    assert scoping.holds_over(counselor_homeroom, Role.HOMEROOM_TEACHER, world.student_b1)
    assert not scoping.holds_over(counselor_homeroom, Role.HOMEROOM_TEACHER, world.school_b1)


def test_the_auditor_who_is_a_principal_elsewhere_cannot_reopen_a_closed_case_of_the_district(
    client,
    world,
    open_case,
    auditor_principal,
):
    case, process = closed_case(world, open_case, world.student_a1_3)
    with pytest.raises(case_services.PermissionDenied):
        services.case_reopen_and_start(auditor_principal, case, "重新打开")
    client.force_login(auditor_principal)
    assert client.get(case_url(process)).status_code == 200  # the auditor reads the district's cases
    assert CaseFlow.instance.reverse("case_reopen", args=[process.pk]) not in page(client.get(case_url(process)))
    before = _last()
    response = client.post(CaseFlow.instance.reverse("case_reopen", args=[process.pk]), {"reason": "重新打开"})
    assert response.status_code == 404
    case.refresh_from_db()
    assert case.status == CaseStatus.CLOSED
    assert _after(before) == [("change", "denied", str(case.pk))]


@pytest.mark.parametrize("action", ["parent_contact_extra", "support_request", "coordination_add"])
def test_the_auditor_who_is_a_principal_elsewhere_changes_nothing_on_the_districts_cases(
    client,
    world,
    open_case,
    auditor_principal,
    action,
):
    case, process = open_case(world.student_a1_3, "yellow")
    staffed_yellow(world, process)
    client.force_login(auditor_principal)
    fields = {
        "parent_contact_extra": {"guardian": "王父", "channel": "phone", "consent": "refused", "outcome": "拒绝"},
        "support_request": {"reason": "需要区县支持"},
        "coordination_add": {"agency": "health", "contact": "区医院", "agreed": "转诊"},
    }[action]
    before = _last()
    response = client.post(CaseFlow.instance.reverse(action, args=[process.pk]), fields)
    assert response.status_code == 404
    assert not ParentContact.objects.filter(case=case).exists()
    assert not SupportRequest.objects.filter(case=case).exists()
    assert _after(before) == [("change", "denied", str(case.pk))]


def test_the_principal_role_still_works_at_its_own_school(client, world, open_case, auditor_principal):
    case, process = closed_case(world, open_case, world.student_b1)
    client.force_login(auditor_principal)
    reopen = CaseFlow.instance.reverse("case_reopen", args=[process.pk])
    assert reopen in page(client.get(case_url(process)))
    assert client.post(reopen, {"reason": "家长来电"}).status_code == 302
    case.refresh_from_db()
    assert case.status == CaseStatus.OPEN


def test_a_psychology_teacher_who_is_a_homeroom_teacher_elsewhere_is_no_psychology_teacher_there(
    client,
    world,
    open_case,
    counselor_homeroom,
):
    case, process = closed_case(world, open_case, world.student_b1)
    assert not access.holds(counselor_homeroom, Role.PSYCHOLOGY_TEACHER, case)
    assert not access.may(counselor_homeroom, case, access.CaseAction.REOPEN)
    client.force_login(counselor_homeroom)
    response = client.post(CaseFlow.instance.reverse("case_reopen", args=[process.pk]), {"reason": "重新打开"})
    assert response.status_code == 404
    case.refresh_from_db()
    assert case.status == CaseStatus.CLOSED


# --- 7. A refused write is logged as refused -------------------------------------------------------------------------


def test_a_refused_reopen_or_parent_contact_is_logged_as_denied_never_as_a_change(client, world, open_case):
    case, process = open_case(world.student_a1_3, "yellow")
    staffed_yellow(world, process)
    client.force_login(world.centre_district_a)  # reads the case; records no parent contact (not the team's)
    before = _last()
    response = client.post(
        CaseFlow.instance.reverse("parent_contact_extra", args=[process.pk]),
        {"guardian": "王父", "channel": "phone", "consent": "refused", "outcome": "拒绝"},
    )
    assert response.status_code == 404 and not ParentContact.objects.filter(case=case).exists()
    assert _after(before) == [("change", "denied", str(case.pk))]


def test_a_step_posted_by_someone_it_is_not_assigned_to_is_logged_as_denied(client, world, open_case):
    case, process = open_case(world.student_a1_3, "yellow")
    triage = take(world.counselor_a1, process, CaseFlow.triage)
    client.force_login(world.principal_a1)  # sees the case, the task is the psychology teacher's
    before = _last()
    url = triage.flow_task.reverse("execute", args=[process.pk, triage.pk])
    response = client.post(url, {"tier": "red", "reason": "x"})
    assert response.status_code == 302
    triage.refresh_from_db()
    assert triage.status == STATUS.ASSIGNED and triage.owner == world.counselor_a1
    assert _after(before) == [("change", "denied", str(case.pk))]


def test_a_step_done_is_logged_once_as_a_change(client, world, open_case):
    case, process = open_case(world.student_a1_3, "yellow")
    triage = take(world.counselor_a1, process, CaseFlow.triage)
    client.force_login(world.counselor_a1)
    before = _last()
    url = triage.flow_task.reverse("execute", args=[process.pk, triage.pk])
    assert client.post(url, {"tier": "yellow", "reason": "面谈确认"}).status_code == 302
    assert _after(before) == [("change", "ok", str(case.pk))]
    before = _last()
    assert client.post(url, {"tier": "yellow", "reason": "again"}).status_code == 302  # done already
    assert _after(before) == [("change", "denied", str(case.pk))]


# --- 8. Clinical free text reaches only readers of results -----------------------------------------------------------


def test_a_homeroom_teacher_on_the_team_never_reads_the_triage_reason(client, world, open_case):
    case, process = open_case(world.student_a1_3, "yellow")
    secret = "学生透露了具体的自杀计划"
    services.triage_done(world.counselor_a1, take(world.counselor_a1, process, CaseFlow.triage), tier="orange",
                         reason=secret)  # fmt: skip
    case.refresh_from_db()
    services.staffing_done(world.counselor_a1, take(world.counselor_a1, process, CaseFlow.staffing),
                           case_services.team_proposal(case))  # fmt: skip
    assert access.on_team(world.homeroom_a1_3, case)
    client.force_login(world.homeroom_a1_3)
    shown = client.get(case_url(process))
    assert shown.status_code == 200 and secret not in page(shown)
    client.force_login(world.counselor_a1)
    assert secret in page(client.get(case_url(process)))
