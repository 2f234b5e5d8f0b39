"""The case's rules, told as stories about the personas of tests/conftest.py: opening, triage, staffing, approvals
(with separation of duties), reopening, and who may see what."""

import datetime

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction

from cases import services
from cases.models import Case, CaseStatus, CaseTeamMember, Decision, InterviewNote, Referral, TeamSeat
from roster import scoping
from roster.roles import Role
from screening.services import result_record
from tests.factories.roster import staff_with_role
from tests.factories.screening import ANSWERS, CampaignFactory


@pytest.fixture
def campaign(world):
    return CampaignFactory(schools=[world.school_a1, world.school_a2, world.school_b1])


@pytest.fixture
def flag(campaign):
    def flag(student, tier):
        result = result_record(campaign=campaign, student=student, answers=ANSWERS[tier], source="import").result
        assert result.tier == tier
        return services.case_open_for_flag(result)

    return flag


def reasons(case):
    return [h.history_change_reason for h in case.history.order_by("history_id")]


def test_a_flag_opens_one_case_and_later_flags_update_it(world, flag):
    opened = flag(world.student_a1_3, "yellow")
    assert opened.outcome == "opened" and opened.case.tier == "yellow" and opened.case.school == world.school_a1
    raised = flag(world.student_a1_3, "red")
    assert raised.outcome == "raised" and raised.case.pk == opened.case.pk and raised.case.tier == "red"
    lower = flag(world.student_a1_3, "orange")
    assert lower.outcome == "unchanged" and Case.objects.get().tier == "red"  # lowering needs the principal
    assert Case.objects.count() == 1
    assert reasons(opened.case)[0] == "opened by a screening flag"


def test_the_database_refuses_a_second_active_case(world, flag):
    flag(world.student_a1_3, "yellow")
    with pytest.raises(IntegrityError), transaction.atomic():
        Case.objects.create(student=world.student_a1_3, school=world.school_a1, source="screening", tier="red",
                            opened_at=datetime.datetime.now(datetime.UTC))  # fmt: skip


def test_a_green_result_opens_nothing(world, campaign):
    result = result_record(campaign=campaign, student=world.student_a1_3, answers=ANSWERS["green"], source="import")
    with pytest.raises(ValidationError):
        services.case_open_for_flag(result.result)
    assert not Case.objects.exists()


def test_staff_refer_students_they_can_see_and_only_those(world):
    opening = services.case_refer(world.homeroom_a1_3, world.student_a1_3, "上课哭泣，说不想活了", tier="orange")
    case = opening.case
    assert case.source == "teacher_referral" and case.opened_by == world.homeroom_a1_3 and not case.triaged
    with pytest.raises(PermissionDenied):
        services.case_refer(world.homeroom_a1_3, world.student_b1, "另一所学校的学生")
    with pytest.raises(ValidationError):
        services.case_refer(world.counselor_a1, world.student_a1_5, "   ")
    assert Case.objects.count() == 1


def test_triage_is_the_psychology_teachers_and_green_goes_a_level_higher_as_a_false_positive(world, flag):
    case = flag(world.student_a1_3, "orange").case
    with pytest.raises(PermissionDenied):
        services.case_triage(world.homeroom_a1_3, case, "yellow", "面谈后情况较好")
    services.case_triage(world.counselor_a1, case, "green", "误报：作答时理解错题意")
    case.refresh_from_db()
    assert case.status == CaseStatus.CLOSING and case.tier == "green" and case.triaged
    (closure,) = case.closures.all()
    with pytest.raises(PermissionDenied):  # an orange screening is not closed inside the school
        services.closure_decide(world.principal_a1, closure, approve=True, evaluation="同意")
    services.closure_decide(world.centre_district_a, closure, approve=True, evaluation="同意")
    case.refresh_from_db()
    assert case.status == CaseStatus.CLOSED and case.closed_at is not None
    last = case.history.first()
    assert last.history_user == world.centre_district_a and last.history_change_reason == "closed"


def test_a_false_positive_not_confirmed_gives_the_case_its_screening_tier_back(world, flag):
    case = flag(world.student_a1_3, "yellow").case
    services.case_triage(world.counselor_a1, case, "green", "误报")
    with pytest.raises(ValidationError):  # a refusal says why
        services.closure_decide(world.principal_a1, case.closures.get(), approve=False)
    services.closure_decide(world.principal_a1, case.closures.get(), approve=False, evaluation="需要再观察")
    case.refresh_from_db()
    assert (case.status, case.tier) == (CaseStatus.OPEN, "yellow")


def test_the_roster_proposes_the_team_and_the_composition_is_enforced(world, flag):
    case = flag(world.student_a1_3, "orange").case
    proposal = services.team_proposal(case)
    assert proposal == {
        TeamSeat.SCHOOL_LEADER: world.principal_a1,
        TeamSeat.PSYCHOLOGY_TEACHER: world.counselor_a1,
        TeamSeat.HOMEROOM_TEACHER: world.homeroom_a1_3,
    }
    with pytest.raises(ValidationError):  # three-on-one needs its leader
        services.team_set(world.counselor_a1, case, {**proposal, TeamSeat.SCHOOL_LEADER: None})
    with pytest.raises(ValidationError):  # a psychology teacher of another school cannot sit on it
        services.team_set(world.counselor_a1, case, {**proposal, TeamSeat.PSYCHOLOGY_TEACHER: world.counselor_a2})
    with pytest.raises(PermissionDenied):
        services.team_set(world.homeroom_a1_3, case, proposal)
    services.team_set(world.counselor_a1, case, proposal)
    assert {(m.seat, m.user) for m in case.team.filter(left_at__isnull=True)} == set(proposal.items())


def test_homeroom_teachers_see_only_cases_whose_team_they_sit_on_and_never_interview_notes(world, flag):
    mine = flag(world.student_a1_3, "yellow").case
    other = flag(world.student_a1_5, "yellow").case
    homeroom_a1_5 = staff_with_role(Role.HOMEROOM_TEACHER, world.class_a1_5, username="homeroom_a1_5")
    assert list(scoping.visible(world.homeroom_a1_3, Case)) == []  # not seated yet
    services.team_set(world.counselor_a1, mine, services.team_proposal(mine))
    assert list(scoping.visible(world.homeroom_a1_3, Case)) == [mine]
    assert list(scoping.visible(homeroom_a1_5, Case)) == []
    services.interview_record(world.counselor_a1, mine, "谈话记录：学业压力大")
    assert scoping.visible(world.homeroom_a1_3, InterviewNote).count() == 0
    assert scoping.visible(world.counselor_a1, InterviewNote).count() == 1
    assert set(scoping.visible(world.principal_a1, Case)) == {mine, other}


def test_cases_stay_inside_their_school_and_away_from_admin_roles(world, flag):
    a1 = flag(world.student_a1_3, "red").case
    b1 = flag(world.student_b1, "red").case
    assert list(scoping.visible(world.principal_a1, Case)) == [a1]
    assert set(scoping.visible(world.centre_district_a, Case)) == {a1}
    assert set(scoping.visible(world.city_centre, Case)) == {a1, b1}
    for admin in (world.school_admin_a1, world.admin_district_a, world.city_admin):
        assert list(scoping.visible(admin, Case)) == []
    with pytest.raises(PermissionDenied):
        services.interview_record(world.counselor_a2, a1, "不是我学校的学生")


def test_a_raise_takes_effect_at_once_and_re_staffs_but_lowering_needs_an_independent_principal(world, flag):
    case = flag(world.student_a1_3, "yellow").case
    services.team_set(world.counselor_a1, case, services.team_proposal(case))
    with pytest.raises(ValidationError):  # a raise is never a request waiting for someone
        services.tier_change_request(world.counselor_a1, case, "orange", "家长反映孩子有自伤行为")
    services.case_tier_raise(world.counselor_a1, case, "orange", "家长反映孩子有自伤行为")
    case.refresh_from_db()
    assert case.tier == "orange" and not case.tier_changes.exists()
    seats = dict(case.team.filter(left_at__isnull=True).values_list("seat", "user"))
    assert seats[TeamSeat.SCHOOL_LEADER] == world.principal_a1.pk  # three-on-one now
    # Now on the team, the principal may not decide the case's next request.
    back = services.tier_change_request(world.counselor_a1, case, "yellow", "情况稳定")
    with pytest.raises(PermissionDenied):
        services.tier_change_decide(world.principal_a1, back, approve=True)
    vice = staff_with_role(Role.PRINCIPAL, world.school_a1, username="vice_principal_a1")
    back = services.tier_change_decide(vice, back, approve=False)
    case.refresh_from_db()
    assert case.tier == "orange" and back.decision == Decision.REJECTED


def test_de_escalation_approved_vacates_the_leader_seat(world, flag):
    case = flag(world.student_a1_3, "orange").case
    vice = staff_with_role(Role.PRINCIPAL, world.school_a1, username="vice_principal_a1")
    services.team_set(world.counselor_a1, case, {**services.team_proposal(case), TeamSeat.SCHOOL_LEADER: vice})
    change = services.tier_change_request(world.homeroom_a1_3, case, "yellow", "连续三次随访情况良好")
    services.tier_change_decide(world.principal_a1, change, approve=True)
    assert set(case.team.filter(left_at__isnull=True).values_list("seat", flat=True)) == {
        TeamSeat.PSYCHOLOGY_TEACHER, TeamSeat.HOMEROOM_TEACHER,
    }  # fmt: skip
    assert CaseTeamMember.objects.get(user=vice).left_at is not None


def test_a_referral_needs_consent_and_an_independent_principal(world, flag):
    case = flag(world.student_a1_3, "red").case
    vice = staff_with_role(Role.PRINCIPAL, world.school_a1, username="vice_principal_a1")
    services.team_set(world.counselor_a1, case, {**services.team_proposal(case), TeamSeat.SCHOOL_LEADER: vice})
    refused = services.referral_request(world.counselor_a1, case, institution="市精神卫生中心", reason="需要诊断",
                                        parental_consent="refused")  # fmt: skip
    with pytest.raises(ValidationError):
        services.referral_decide(world.principal_a1, refused, approve=True)
    with pytest.raises(PermissionDenied):  # on the team
        services.referral_decide(vice, refused, approve=False)
    services.referral_decide(world.principal_a1, refused, approve=False, note="家长拒绝，继续校内干预")
    consented = services.referral_request(world.counselor_a1, case, institution="市精神卫生中心", reason="需要诊断",
                                          parental_consent="given")  # fmt: skip
    services.referral_decide(world.principal_a1, consented, approve=True)
    with pytest.raises(ValidationError):
        services.referral_decide(world.principal_a1, consented, approve=False)  # decided already
    services.referral_record_outcome(
        world.counselor_a1, consented, referred_on=datetime.date(2026, 12, 5),
        feedback_received_on=datetime.date(2026, 12, 20), feedback="已就诊，建议复查",
    )  # fmt: skip
    consented.refresh_from_db()
    assert consented.decision == Decision.APPROVED and consented.feedback == "已就诊，建议复查"
    assert [r.decision for r in Referral.objects.order_by("pk")] == [Decision.REJECTED, Decision.APPROVED]


def test_closing_an_orange_case_is_the_district_centres_and_a_later_flag_opens_a_case_following_it(world, flag):
    case = flag(world.student_a1_3, "orange").case
    services.team_set(world.counselor_a1, case, services.team_proposal(case))
    closure = services.closure_propose(world.counselor_a1, case, "连续随访稳定", "量表分数恢复正常")
    with pytest.raises(PermissionDenied):
        services.closure_decide(world.principal_a1, closure, approve=True)  # on the team, and not the level above
    services.closure_decide(world.centre_district_a, closure, approve=True)
    case.refresh_from_db()
    assert case.status == CaseStatus.CLOSED
    assert not case.team.filter(left_at__isnull=True).exists()
    again = flag(world.student_a1_3, "yellow")  # 一生一案: a new case linked to the closed one (issue 19)
    assert again.outcome == "opened" and again.case.pk != case.pk and again.case.follows_id == case.pk
    assert again.case.status == CaseStatus.OPEN and reasons(again.case) == ["opened by a screening flag"]
    case.refresh_from_db()
    assert case.status == CaseStatus.CLOSED  # stays as it ended
    assert case.closures.get().decision == Decision.APPROVED  # the earlier closure stays on record


def test_a_flag_delivered_again_neither_reopens_nor_re_raises_its_case(world, flag):
    # results_flagged_send may run again after a failure: the same result must not undo the team's decisions.
    opening = flag(world.student_a1_3, "orange")
    case, result = opening.case, opening.case.screening_result
    services.case_triage(world.counselor_a1, case, "yellow", "访谈后判断为黄色")
    services.tier_change_decide(world.principal_a1, case.tier_changes.get(), approve=True)  # lowering: approved
    assert services.case_open_for_flag(result).outcome == "unchanged"
    case.refresh_from_db()
    assert (case.tier, case.triaged) == ("yellow", True)
    services.team_set(world.counselor_a1, case, services.team_proposal(case))
    closure = services.closure_propose(world.counselor_a1, case, "稳定")
    # Screened orange: the closure is the district centre's, even after the tier was lowered to yellow.
    services.closure_decide(world.centre_district_a, closure, approve=True)
    history = case.history.count()
    assert services.case_open_for_flag(result).outcome == "unchanged"
    case.refresh_from_db()
    assert case.status == CaseStatus.CLOSED and case.history.count() == history


def test_a_rejected_closure_puts_the_case_back_to_work(world, flag):
    case = flag(world.student_a1_3, "yellow").case
    services.team_set(world.counselor_a1, case, services.team_proposal(case))
    closure = services.closure_propose(world.homeroom_a1_3, case, "情况好转")
    services.closure_decide(world.principal_a1, closure, approve=False, evaluation="还需观察一个月")
    case.refresh_from_db()
    assert case.status == CaseStatus.OPEN and closure.__class__.objects.get().decision == Decision.REJECTED


def test_reopening_by_hand(world, flag):
    case = flag(world.student_a1_3, "yellow").case
    services.team_set(world.counselor_a1, case, services.team_proposal(case))
    services.closure_decide(world.principal_a1, services.closure_propose(world.counselor_a1, case, "好转"), True)
    with pytest.raises(PermissionDenied):
        services.case_reopen(world.homeroom_a1_3, case, "又出现情绪问题")
    services.case_reopen(world.counselor_a1, case, "又出现情绪问题")
    case.refresh_from_db()
    assert case.status == CaseStatus.OPEN and reasons(case)[-1] == "reopened: 又出现情绪问题"


def test_a_case_turning_red_tells_the_district_centre_at_once(world, flag, django_capture_on_commit_callbacks):
    from roster.models import Notification

    def red_notices():
        return Notification.objects.filter(kind="case_red")

    case = flag(world.student_a1_3, "yellow").case
    with django_capture_on_commit_callbacks(execute=True):
        services.case_triage(world.counselor_a1, case, "red", "访谈发现自伤计划")
    (notice,) = red_notices()
    assert notice.recipient == world.centre_district_a and notice.urgent
    assert "王小明" not in notice.title + notice.body and "王*明" in notice.body  # masked
    # Confirming red again, or a case red from its screening (already alerted by screening.alerts), adds nothing.
    with django_capture_on_commit_callbacks(execute=True):
        services.case_triage(world.counselor_a1, case, "red", "确认")
    red = flag(world.student_a1_5, "red").case
    with django_capture_on_commit_callbacks(execute=True):
        services.case_triage(world.counselor_a1, red, "red", "确认")
    assert red_notices().count() == 1
    # A staff referral opened red tells the district too.
    with django_capture_on_commit_callbacks(execute=True):
        services.case_refer(world.counselor_a2, world.student_a2, "同学反映其有轻生言论", tier="red")
    assert red_notices().count() == 2
