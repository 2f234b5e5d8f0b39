"""My tasks and my school's queue: scoped to the cases a person may see, the role at the task's school, approvals
kept from the case's own team, overdue first, and a constant number of queries however many tasks there are."""

import datetime

import pytest

from cases import services as case_services
from cases.models import Case
from roster.roles import Role
from tests.factories.cases import active, many_flagged_cases, take, to_follow_up
from tests.factories.roster import staff_with_role
from workflows import selectors, services
from workflows.flows import CaseFlow


def names(tasks):
    return sorted((t.process.caseprocess.case.student.pk, t.flow_task.name) for t in tasks)


def staffed(world, process, case, tier):
    services.triage_done(world.counselor_a1, take(world.counselor_a1, process, CaseFlow.triage), tier=tier,
                         reason="确认")  # fmt: skip
    services.staffing_done(world.counselor_a1, take(world.counselor_a1, process, CaseFlow.staffing),
                           case_services.team_proposal(case))  # fmt: skip


def test_the_queue_holds_the_tasks_of_my_role_at_my_school_and_nothing_else(world, open_case):
    case_a, process_a = open_case(world.student_a1_3, "yellow")
    open_case(world.student_b1, "yellow")
    counselor_b1 = staff_with_role(Role.PSYCHOLOGY_TEACHER, world.school_b1, username="counselor_b1")
    assert names(selectors.queue(world.counselor_a1)) == [(world.student_a1_3.pk, "triage")]
    assert names(selectors.queue(counselor_b1)) == [(world.student_b1.pk, "triage")]
    for nobody in (world.counselor_a2, world.principal_a1, world.homeroom_a1_3, world.school_admin_a1,
                   world.city_admin, world.centre_district_a):  # fmt: skip
        assert list(selectors.queue(nobody)) == []
    services.task_claim(world.counselor_a1, active(process_a, CaseFlow.triage))
    assert list(selectors.queue(world.counselor_a1)) == []
    assert names(selectors.inbox(world.counselor_a1)) == [(world.student_a1_3.pk, "triage")]
    assert list(selectors.inbox(counselor_b1)) == []


def test_approvals_stay_out_of_the_queue_of_the_cases_own_team(world, open_case):
    vice = staff_with_role(Role.PRINCIPAL, world.school_a1, username="vice_principal_a1")
    case, process = open_case(world.student_a1_3, "orange")
    staffed(world, process, case, "orange")  # the principal takes the leader seat
    services.interview_done(world.counselor_a1, active(process, CaseFlow.interview), note="面谈")
    services.parent_contact_done(world.homeroom_a1_3, active(process, CaseFlow.parent_contact), guardian="母亲",
                                 channel="phone", outcome="同意", consent="given")  # fmt: skip
    services.plan_done(world.counselor_a1, active(process, CaseFlow.plan), goals="安全", needs_referral=True,
                       review_on=datetime.date(2027, 1, 5), measures=[("转介", world.counselor_a1)])  # fmt: skip
    services.referral_requested(world.counselor_a1, active(process, CaseFlow.request_referral), institution="医院",
                                reason="诊断", parental_consent="given")  # fmt: skip
    assert list(selectors.queue(world.principal_a1)) == []
    assert names(selectors.queue(vice)) == [(world.student_a1_3.pk, "approve_referral")]


def test_the_district_centre_queue_holds_its_schools_orange_closures(world, open_case):
    case, process = open_case(world.student_a1_3, "orange")
    staffed(world, process, case, "orange")
    services.interview_done(world.counselor_a1, active(process, CaseFlow.interview), note="面谈")
    services.parent_contact_done(world.homeroom_a1_3, active(process, CaseFlow.parent_contact), guardian="母亲",
                                 channel="phone", outcome="同意", consent="given")  # fmt: skip
    services.plan_done(world.counselor_a1, active(process, CaseFlow.plan), goals="稳定", needs_referral=False,
                       review_on=datetime.date(2027, 1, 5), measures=[("谈话", world.counselor_a1)])  # fmt: skip
    services.follow_up_done(world.counselor_a1, to_follow_up(process), note="好转", outcome="propose_closure")
    assert names(selectors.queue(world.centre_district_a)) == [(world.student_a1_3.pk, "approve_closure")]
    centre_b = staff_with_role(Role.DISTRICT_CENTRE, world.district_b, username="centre_district_b")
    assert list(selectors.queue(centre_b)) == []
    assert list(selectors.queue(world.principal_a1)) == []


def test_overdue_tasks_come_first(world, open_case):
    staff_with_role(Role.HOMEROOM_TEACHER, world.class_a1_5, username="homeroom_a1_5")
    yellow, p_yellow = open_case(world.student_a1_5, "yellow")
    red, p_red = open_case(world.student_a1_3, "red")
    staffed(world, p_yellow, yellow, "yellow")
    staffed(world, p_red, red, "red")
    rows = [(t.process.caseprocess.case.pk, t.flow_task.name) for t in selectors.inbox(world.counselor_a1)]
    assert rows == [(red.pk, "interview"), (yellow.pk, "interview")]  # red's is due in 24 h, yellow's in 7 days


@pytest.mark.parametrize("cases", [10, 1000])
def test_a_task_list_costs_the_same_queries_however_long(world, cases, django_assert_max_num_queries):
    many_flagged_cases(world, cases)
    assert Case.objects.count() == cases
    with django_assert_max_num_queries(4):  # the user's scope, their roles, the rows
        rows = list(selectors.queue(world.counselor_a1))
        shown = [(t.process.caseprocess.case.tier, t.process.caseprocess.case.student.school_class.grade, t.due)
                 for t in rows]  # fmt: skip
    assert len(shown) == cases
