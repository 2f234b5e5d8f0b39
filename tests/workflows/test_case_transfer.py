"""档案移交 (issue 19 item 3): a student with an active case moves school. The case gets a pending transfer and the
receiving school's psychology teacher a task with a due time from the tier rules; late, both district centres are
told; the sending team stays responsible until the acceptance, which moves the case's school, team, tasks, clocks and
alerts to the receiving school. The sending school keeps reading (never changing) what was written before; restricted
interview notes stay behind until the school that wrote them releases them on request. Moves within a district and
across districts (world.school_b1 is in another district) work the same; a red case's move tells both centres at once.
"""

import datetime

import pytest
import time_machine
from django.core.exceptions import PermissionDenied
from django.utils import timezone
from viewflow.workflow.models import Task
from viewflow.workflow.status import STATUS

from cases import services as case_services
from cases import transfers
from cases.alerts import crisis_alert_raise
from cases.models import (
    AlertKind,
    Case,
    CaseTransfer,
    InterviewNote,
    ParentContact,
    TeamSeat,
    TransferStatus,
)
from roster.models import AccessLogEntry, AccessOutcome, MoveBasis, Notification, SchoolMove
from roster.moves import move_confirm
from roster.roles import Role
from tests.factories.cases import active, case_url, page, take, task_url
from tests.factories.roster import staff_with_role
from workflows import services
from workflows.deadlines import OVERDUE_KIND
from workflows.flows import CaseFlow
from workflows.models import TaskClock
from workflows.transfers import TRANSFER

# Long enough for any chain to end whatever holidays the calendar has (orange: due in 1 school day, both centres told
# 1 school day later; a Spring Festival week in between still ends well before).
LATE = datetime.timedelta(days=30)


@pytest.fixture
def people(world):
    """The receiving schools' staff: school B1 (another district) and school A2 (the same district as A1)."""
    w = world
    w.counselor_b1 = staff_with_role(Role.PSYCHOLOGY_TEACHER, w.school_b1, username="counselor_b1", name="赵老师")
    w.principal_b1 = staff_with_role(Role.PRINCIPAL, w.school_b1, username="principal_b1")
    w.homeroom_b1 = staff_with_role(Role.HOMEROOM_TEACHER, w.class_b1, username="homeroom_b1")
    w.centre_district_b = staff_with_role(Role.DISTRICT_CENTRE, w.district_b, username="centre_district_b")
    w.principal_a2 = staff_with_role(Role.PRINCIPAL, w.school_a2, username="principal_a2")
    w.homeroom_a2 = staff_with_role(Role.HOMEROOM_TEACHER, w.class_a2, username="homeroom_a2")
    return w


def worked_orange(world, open_case):
    """An orange case at A1, triaged and staffed (三包一), interviewed (a restricted note and an open one) and its
    parents contacted: the plan is open for counselor_a1. Returns (case, process)."""
    case, process = open_case(world.student_a1_3, "orange")
    c = world.counselor_a1
    services.triage_done(c, take(c, process, CaseFlow.triage), tier="orange", reason="确认")
    services.staffing_done(c, take(c, process, CaseFlow.staffing), case_services.team_proposal(case))
    services.interview_done(c, active(process, CaseFlow.interview), note="家庭变故，自述有轻生念头", restricted=True)
    case_services.interview_record(c, case, "学业压力大，同学关系尚可")
    services.parent_contact_done(world.homeroom_a1_3, active(process, CaseFlow.parent_contact), guardian="母亲",
                                 channel="phone", outcome="同意配合", consent="given")  # fmt: skip
    case.refresh_from_db()
    return case, process


def move(world, student, to_class, actor):
    """The school move as the import stages it and the receiving school's admin confirms it (roster.moves)."""
    staged = SchoolMove.objects.create(
        student=student, from_school=student.school, from_class=student.school_class,
        from_student_no=student.student_no, from_status=student.status, to_school=to_class.school, to_class=to_class,
        to_student_no=f"N{student.student_no}", basis=MoveBasis.NATIONAL_ID, created_by=actor,
    )  # fmt: skip
    return move_confirm(actor, staged)


def acceptance_task(case):
    (task,) = Task.objects.filter(process__caseprocess__case=case, flow_task=CaseFlow.accept_transfer).exclude(
        status__in=(STATUS.DONE, STATUS.CANCELED)
    )
    return task


def notified(kind, key_part="", **filters) -> set[str]:
    rows = Notification.objects.filter(kind=kind, subject_key__contains=key_part, **filters)
    return set(rows.values_list("recipient__username", flat=True))


def denied_changes(user) -> int:
    return AccessLogEntry.objects.filter(actor=user.username, action="change", outcome=AccessOutcome.DENIED).count()


# --- The packet and its task ------------------------------------------------------------------------------------


@pytest.mark.parametrize("to", ["class_b1", "class_a2"], ids=["across-districts", "within-a-district"])
def test_a_move_opens_a_transfer_and_the_receivers_task_with_its_due_time(client, people, open_case, to):
    w = people
    case, process = worked_orange(w, open_case)
    plan = active(process, CaseFlow.plan)
    before = TaskClock.objects.get(task=plan).due_at
    to_class = getattr(w, to)
    move(w, w.student_a1_3, to_class, w.school_admin_b1 if to == "class_b1" else w.school_admin_a2)

    transfer = CaseTransfer.objects.get(case=case)
    assert (transfer.status, transfer.from_school, transfer.to_school, transfer.tier) == (
        TransferStatus.PENDING,
        w.school_a1,
        to_class.school,
        "orange",
    )
    task = acceptance_task(case)
    assert task.process.data["side"] == TRANSFER
    assert task.owner_permission_obj_pk == str(to_class.school.pk)
    assert TaskClock.objects.get(task=task).due_at == transfer.due_at > transfer.requested_at
    # The sending team stays responsible: nothing else about the case changed.
    case.refresh_from_db()
    assert case.school == w.school_a1
    assert set(case.team.filter(left_at__isnull=True).values_list("user__username", flat=True)) == {
        "principal_a1",
        "counselor_a1",
        "homeroom_a1_3",
    }
    plan.refresh_from_db()
    assert (plan.owner, TaskClock.objects.get(task=plan).due_at) == (w.counselor_a1, before)
    assert case.history.first().history_change_reason.startswith("transfer requested")


def test_the_acceptance_task_is_in_the_receivers_inbox_with_its_due_time(client, people, open_case):
    w = people
    case, _process = worked_orange(w, open_case)
    move(w, w.student_a1_3, w.class_b1, w.school_admin_b1)
    task = acceptance_task(case)
    assert task.owner == w.counselor_b1  # the receiving school's only psychology teacher
    client.force_login(w.counselor_b1)
    inbox = page(client.get(CaseFlow.instance.reverse("inbox")))
    assert "接收转入个案" in inbox and timezone.localtime(task.clock.due_at).strftime("%m-%d %H:%M") in inbox


def test_with_two_psychology_teachers_the_task_waits_in_the_receiving_schools_queue(client, people, open_case):
    w = people
    staff_with_role(Role.PSYCHOLOGY_TEACHER, w.school_b1, username="counselor_b1_2")
    case, _process = worked_orange(w, open_case)
    move(w, w.student_a1_3, w.class_b1, w.school_admin_b1)
    task = acceptance_task(case)
    assert task.owner is None
    client.force_login(w.counselor_b1)
    assert "接收转入个案" in page(client.get(CaseFlow.instance.reverse("queue")))
    client.force_login(w.counselor_a1)  # the sending school's psychology teacher cannot take it
    assert "接收转入个案" not in page(client.get(CaseFlow.instance.reverse("queue")))


@pytest.mark.parametrize(
    "to, centres",
    [("class_b1", {"centre_district_a", "centre_district_b"}), ("class_a2", {"centre_district_a"})],
    ids=["across-districts", "within-a-district"],
)
def test_a_late_acceptance_tells_both_district_centres_once(people, open_case, to, centres):
    w = people
    case, _process = worked_orange(w, open_case)
    move(w, w.student_a1_3, getattr(w, to), w.school_admin_b1 if to == "class_b1" else w.school_admin_a2)
    task = acceptance_task(case)
    centre_keys = f"task:{task.pk}:overdue:2"
    services.workflow_tick()
    assert not notified(OVERDUE_KIND, f"task:{task.pk}:")  # not due yet
    with time_machine.travel(timezone.now() + LATE, tick=False):
        services.workflow_tick()
        services.workflow_tick()  # a second sweep tells nobody again
    assert notified(OVERDUE_KIND, centre_keys) == centres
    assert Notification.objects.filter(kind=OVERDUE_KIND, subject_key=centre_keys).count() == len(centres)
    receiving = "counselor_b1" if to == "class_b1" else "counselor_a2"
    assert receiving in notified(OVERDUE_KIND, f"task:{task.pk}:overdue:0")  # the assignee first
    assert "counselor_a1" not in notified(OVERDUE_KIND, f"task:{task.pk}:")  # the sending school is not the chain


def test_a_red_cases_move_tells_both_district_centres_at_once(client, people, open_case):
    w = people
    case, process = open_case(w.student_a1_3, "red")
    move(w, w.student_a1_3, w.class_b1, w.school_admin_b1)
    transfer = CaseTransfer.objects.get(case=case)
    assert notified(transfers.TRANSFER_KIND, f"transfer:{transfer.pk}:red", urgent=True) == {
        "centre_district_a",
        "centre_district_b",
    }
    notice = Notification.objects.filter(kind=transfers.TRANSFER_KIND).first()
    assert w.student_a1_3.name not in notice.title + notice.body and notice.link == case_url(process)
    client.force_login(w.centre_district_b)  # the receiving district's centre follows the link before the acceptance
    assert client.get(notice.link).status_code == 200
    assert transfer.due_at - transfer.requested_at == datetime.timedelta(hours=4)  # red: 4 h


def test_an_orange_move_tells_no_centre_at_once(people, open_case):
    w = people
    worked_orange(w, open_case)
    move(w, w.student_a1_3, w.class_b1, w.school_admin_b1)
    assert not Notification.objects.filter(kind=transfers.TRANSFER_KIND).exists()


def test_a_seated_homeroom_teacher_of_the_sending_school_keeps_the_case_until_the_acceptance(client, people, open_case):
    w = people
    case, process = worked_orange(w, open_case)
    move(w, w.student_a1_3, w.class_b1, w.school_admin_b1)
    client.force_login(w.homeroom_a1_3)
    assert client.get(case_url(process)).status_code == 200
    case_services.parent_contact_record(w.homeroom_a1_3, case, guardian="父亲", channel="phone", outcome="复联",
                                        consent="given")  # fmt: skip
    transfers_accept(w, case)
    assert client.get(case_url(process)).status_code == 404


# --- Acceptance ------------------------------------------------------------------------------------------------


def transfers_accept(w, case, user=None):
    user = user or w.counselor_b1
    task = acceptance_task(case)
    if task.owner_id is None:
        services.task_claim(user, task)
    return services.step_done(user, Task.objects.get(pk=task.pk))


@pytest.mark.parametrize("to", ["class_b1", "class_a2"], ids=["across-districts", "within-a-district"])
def test_acceptance_re_staffs_the_case_and_moves_its_tasks_clocks_and_alerts(people, open_case, to):
    w = people
    case, process = worked_orange(w, open_case)
    alert = crisis_alert_raise(w.student_a1_3, kind=AlertKind.RED, case=case, event_key="test:1")
    plan = active(process, CaseFlow.plan)
    due = TaskClock.objects.get(task=plan).due_at
    to_class = getattr(w, to)
    receiver = w.counselor_b1 if to == "class_b1" else w.counselor_a2
    move(w, w.student_a1_3, to_class, w.school_admin_b1 if to == "class_b1" else w.school_admin_a2)
    transfers_accept(w, case, receiver)

    case.refresh_from_db()
    transfer = CaseTransfer.objects.get(case=case)
    assert case.school == to_class.school
    assert (transfer.status, transfer.accepted_by) == (TransferStatus.ACCEPTED, receiver)
    seats = dict(case.team.filter(left_at__isnull=True).values_list("seat", "user__username"))
    homeroom, leader = ("homeroom_b1", "principal_b1") if to == "class_b1" else ("homeroom_a2", "principal_a2")
    assert seats == {TeamSeat.PSYCHOLOGY_TEACHER: receiver.username, TeamSeat.HOMEROOM_TEACHER: homeroom,
                     TeamSeat.SCHOOL_LEADER: leader}  # fmt: skip
    assert case.team.filter(left_at__isnull=False).count() == 3  # the sending team left, its seats kept in history
    plan.refresh_from_db()
    assert (plan.owner, plan.owner_permission_obj_pk) == (receiver, str(to_class.school.pk))
    assert TaskClock.objects.get(task=plan).due_at == due  # the clock keeps its due time
    alert.refresh_from_db()
    assert alert.school == to_class.school
    assert acceptance_task_done(case)
    assert "counselor_a1" in notified(transfers.TRANSFER_KIND, f"transfer:{transfer.pk}:accepted")
    reasons = list(case.history.values_list("history_change_reason", flat=True)[:2])
    assert reasons[0].startswith("transfer accepted")


def acceptance_task_done(case) -> bool:
    return Task.objects.filter(
        process__caseprocess__case=case, flow_task=CaseFlow.accept_transfer, status=STATUS.DONE
    ).exists()


def test_the_moved_clocks_climb_the_receiving_schools_chain(people, open_case):
    w = people
    case, process = worked_orange(w, open_case)
    plan = active(process, CaseFlow.plan)
    move(w, w.student_a1_3, w.class_b1, w.school_admin_b1)
    transfers_accept(w, case)
    with time_machine.travel(timezone.now() + LATE, tick=False):
        services.workflow_tick()
    told = notified(OVERDUE_KIND, f"task:{plan.pk}:")
    assert {"counselor_b1", "principal_b1", "centre_district_b"} <= told
    assert not told & {"counselor_a1", "principal_a1", "centre_district_a"}


def test_a_second_acceptance_is_refused_with_a_clear_message(people, open_case):
    w = people
    other = staff_with_role(Role.PSYCHOLOGY_TEACHER, w.school_b1, username="counselor_b1_2")
    case, _process = worked_orange(w, open_case)
    move(w, w.student_a1_3, w.class_b1, w.school_admin_b1)
    transfer = CaseTransfer.objects.get(case=case)
    transfers.transfer_accept(w.counselor_b1, transfer)
    with pytest.raises(transfers.TransferUnavailable) as refused:
        transfers.transfer_accept(other, transfer)
    assert "赵老师" in str(refused.value.messages[0]) and "没有" in str(refused.value.messages[0])
    transfer.refresh_from_db()
    assert transfer.accepted_by == w.counselor_b1
    assert set(
        Case.objects.get(pk=case.pk).team.filter(left_at__isnull=True).values_list("user__username", flat=True)
    ) >= {"counselor_b1"}


def test_the_done_task_cannot_be_done_again(client, people, open_case):
    w = people
    case, _process = worked_orange(w, open_case)
    move(w, w.student_a1_3, w.class_b1, w.school_admin_b1)
    task = acceptance_task(case)
    client.force_login(w.counselor_b1)
    response = client.post(task_url(task, "execute"), {"confirm": "on"})
    assert response.status_code == 302 and CaseTransfer.objects.get(case=case).status == TransferStatus.ACCEPTED
    again = client.post(task_url(task, "execute"), {"confirm": "on"}, follow=True)
    assert "已由他人完成" in page(again)


@pytest.mark.parametrize("who", ["homeroom_b1", "principal_b1", "counselor_a1"])
def test_only_a_psychology_teacher_of_the_receiving_school_accepts(people, open_case, who):
    w = people
    case, _process = worked_orange(w, open_case)
    move(w, w.student_a1_3, w.class_b1, w.school_admin_b1)
    transfer = CaseTransfer.objects.get(case=case)
    with pytest.raises(PermissionDenied):
        transfers.transfer_accept(getattr(w, who), transfer)
    task = acceptance_task(case)
    with pytest.raises(PermissionDenied):
        services.step_done(getattr(w, who), task)
    transfer.refresh_from_db()
    assert transfer.status == TransferStatus.PENDING
    assert Case.objects.get(pk=case.pk).school == w.school_a1


# --- After the acceptance: the sending school reads, never changes ---------------------------------------------------


@pytest.fixture
def accepted(people, open_case):
    w = people
    case, process = worked_orange(w, open_case)
    move(w, w.student_a1_3, w.class_b1, w.school_admin_b1)
    transfers_accept(w, case)
    later = case_services.parent_contact_record(w.counselor_b1, case, guardian="父亲", channel="phone",
                                                outcome="B校接手后首次联系", consent="given")  # fmt: skip
    case.refresh_from_db()
    return case, process, later


def test_the_sending_school_reads_only_what_was_written_before_the_acceptance(client, people, accepted):
    w = people
    case, process, later = accepted
    client.force_login(w.counselor_a1)
    body = page(client.get(case_url(process)))
    assert "同意配合" in body and "B校接手后首次联系" not in body
    assert "学业压力大" in body and "家庭变故" in body  # its own notes, restricted ones too
    assert "只读" in body  # the read-only banner
    # The steps open now are the receiving school's: not listed as if waiting in the sender's queue.
    assert 'id="steps-elsewhere"' in body and 'id="open-steps"' not in body
    from roster import scoping

    assert set(scoping.visible(w.counselor_a1, ParentContact).filter(case=case)) == set(
        ParentContact.objects.filter(case=case).exclude(pk=later.pk)
    )
    client.force_login(w.principal_a1)
    assert client.get(case_url(process)).status_code == 200


@pytest.mark.parametrize("who", ["counselor_a1", "principal_a1"])
def test_every_change_by_the_sending_school_is_refused_404_and_logged(client, people, accepted, who):
    w = people
    case, process, _later = accepted
    user = getattr(w, who)
    client.force_login(user)
    plan = active(process, CaseFlow.plan)
    flow = CaseFlow.instance
    attempts = [
        (
            flow.reverse("parent_contact_extra", args=[process.pk]),
            {"guardian": "母亲", "channel": "phone", "outcome": "x", "consent": "given"},
        ),
        (flow.reverse("support_request", args=[process.pk]), {"reason": "需要支持"}),
        (flow.reverse("coordination_add", args=[process.pk]), {"agency": "health", "contact": "x", "agreed": "y"}),
        (task_url(plan, "execute"), {"goals": "x"}),
        (task_url(plan, "unassign"), {}),
        (flow.reverse("transfer_release_request", args=[process.pk]), {"reason": "需要"}),
    ]
    for url, data in attempts:
        before = denied_changes(user)
        assert client.post(url, data).status_code == 404, url
        assert denied_changes(user) == before + 1, url
    with pytest.raises(PermissionDenied):
        case_services.parent_contact_record(user, case, guardian="母亲", channel="phone", outcome="x",
                                            consent="given")  # fmt: skip
    assert not ParentContact.objects.filter(case=case, outcome="x").exists()


def test_the_receiving_school_sees_the_packet_but_not_the_restricted_notes(client, people, accepted):
    w = people
    case, process, _later = accepted
    client.force_login(w.counselor_b1)
    body = page(client.get(case_url(process)))
    for shown in ("同意配合", "学业压力大", "B校接手后首次联系"):  # contacts, open notes, its own records
        assert shown in body
    assert "家庭变故" not in body  # the restricted note stays behind
    assert "不予移交" in body or "未移交" in body  # but its date is shown, as withheld
    notes = InterviewNote.objects.filter(case=case, restricted=True)
    from roster import scoping

    assert not scoping.visible(w.counselor_b1, InterviewNote).filter(pk__in=notes).exists()
    assert set(scoping.visible_withheld(w.counselor_b1, InterviewNote).filter(case=case)) == set(notes)


def test_restricted_notes_are_released_on_request_with_a_reason(client, people, accepted):
    w = people
    case, process, _later = accepted
    client.force_login(w.counselor_b1)
    response = client.post(CaseFlow.instance.reverse("transfer_release_request", args=[process.pk]),
                           {"reason": "需要了解既往危机史"})  # fmt: skip
    assert response.status_code == 302
    asked = notified(transfers.TRANSFER_KIND, "release-request")
    assert {"counselor_a1", "centre_district_a"} <= asked and "counselor_b1" not in asked
    transfer = CaseTransfer.objects.get(case=case)
    assert transfer.history.first().history_change_reason == "restricted notes release requested: 需要了解既往危机史"
    # Somebody who may not release it (the receiving school) is refused.
    assert client.post(CaseFlow.instance.reverse("transfer_release", args=[process.pk]),
                       {"reason": "自行放行"}).status_code == 404  # fmt: skip
    client.force_login(w.counselor_a1)
    response = client.post(CaseFlow.instance.reverse("transfer_release", args=[process.pk]), {"reason": "同意移交"})
    assert response.status_code == 302
    note = InterviewNote.objects.get(case=case, restricted=True)
    assert note.released_to == w.school_b1
    assert note.history.first().history_change_reason == "restricted note released: 同意移交"
    client.force_login(w.counselor_b1)
    assert "家庭变故" in page(client.get(case_url(process)))
    client.force_login(w.homeroom_b1)  # on the team, but never a clinical reader
    assert "家庭变故" not in page(client.get(case_url(process)))


def test_the_district_centre_of_the_sending_school_releases_too(people, accepted):
    w = people
    case, _process, _later = accepted
    assert transfers.notes_release(w.centre_district_a, case, "区中心同意") == 1
    with pytest.raises(PermissionDenied):
        transfers.notes_release(w.centre_district_b, case, "不是我的")


# --- The case page ---------------------------------------------------------------------------------------------


def test_the_transfer_panel_for_the_receiver_before_acceptance(client, people, open_case):
    w = people
    case, process = worked_orange(w, open_case)
    move(w, w.student_a1_3, w.class_b1, w.school_admin_b1)
    client.force_login(w.counselor_b1)
    body = page(client.get(case_url(process)))
    assert 'id="transfer-panel"' in body and "东湖第一中学 → 西山中学" in body
    assert task_url(acceptance_task(case)) in body  # the accept button
    assert "同意配合" not in body and "学业压力大" not in body  # the packet opens once the case is theirs
    client.force_login(w.counselor_a1)
    body = page(client.get(case_url(process)))
    assert 'id="transfer-panel"' in body and "只读" not in body and "同意配合" in body


def test_the_sending_school_lists_the_case_and_reads_its_timeline_up_to_the_acceptance(client, people, accepted):
    w = people
    case, process, _later = accepted
    transfer = CaseTransfer.objects.get(case=case)
    client.force_login(w.counselor_a1)
    assert f">{case}<" in page(client.get(CaseFlow.instance.reverse("process_list")))
    from workflows import selectors

    timeline = selectors.case_timeline(w.counselor_a1, case, until=transfer.accepted_at)
    assert timeline and all(entry.when <= transfer.accepted_at for entry in timeline)
    assert not any("家长联系" in entry.what and entry.when > transfer.accepted_at for entry in timeline)


def test_a_student_who_moves_again_before_the_acceptance_gets_a_new_transfer(people, open_case):
    w = people
    case, _process = worked_orange(w, open_case)
    move(w, w.student_a1_3, w.class_b1, w.school_admin_b1)
    first = CaseTransfer.objects.get(case=case)
    first_task = acceptance_task(case)
    move(w, w.student_a1_3, w.class_a2, w.school_admin_a2)
    first.refresh_from_db()
    first_task.refresh_from_db()
    assert first.status == TransferStatus.CANCELLED and first_task.status == STATUS.CANCELED
    second = CaseTransfer.objects.get(case=case, status=TransferStatus.PENDING)
    assert second.to_school == w.school_a2 and acceptance_task(case).owner == w.counselor_a2
    with pytest.raises(transfers.TransferUnavailable):
        transfers.transfer_accept(w.counselor_b1, first)
    move(w, w.student_a1_3, w.class_a1_5, w.school_admin_a1)  # back at the case's own school: nothing to accept
    second.refresh_from_db()
    assert second.status == TransferStatus.CANCELLED
    assert not CaseTransfer.objects.filter(case=case, status=TransferStatus.PENDING).exists()


def test_a_student_without_an_active_case_moves_without_a_transfer(people):
    w = people
    move(w, w.student_a1_5, w.class_b1, w.school_admin_b1)
    assert not CaseTransfer.objects.exists()


def test_the_tier_rules_keep_the_transfer_step_and_its_chain_as_checked_data():
    import copy

    from cases.tiers import TierRulesInvalid, parse_rules, raw_rules, tier_rule

    assert str(tier_rule("orange").deadline("transfer_acceptance")) == "1sd"
    assert str(tier_rule("red").deadline("transfer_acceptance")) == "4h"
    assert tier_rule("orange").chain("transfer_acceptance")[-1].audiences == ("district_duty", "sending_district_duty")
    assert tier_rule("orange").chain("interview") == tier_rule("orange").overdue_chain
    data = copy.deepcopy(raw_rules())
    del data["tiers"]["yellow"]["deadlines"]["transfer_acceptance"]
    data["tiers"]["orange"]["overdue_chain"][0]["notify"] = "sending_district_duty"
    data["tiers"]["red"]["overdue_chains"]["transfer_acceptance"][0]["after"] = "1sd"
    with pytest.raises(TierRulesInvalid) as invalid:
        parse_rules(data)
    problems = "\n".join(invalid.value.problems)
    assert "tiers.yellow.deadlines.transfer_acceptance: missing" in problems
    assert "tiers.orange.overdue_chain[0].notify: 'sending_district_duty'" in problems
    assert "tiers.red.overdue_chains.transfer_acceptance[0].after: red never waits" in problems
