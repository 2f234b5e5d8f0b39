"""Leave (休学) and the return from it (roster.leaves → cases.leave_returns): the status, the 复学评估 signal for the
school's psychology teachers and their notification; the admin's pages for the school admin."""

from datetime import date

import pytest
import time_machine
from django.core.exceptions import PermissionDenied, ValidationError
from django.urls import reverse

from cases.models import Signal, SignalSource, SignalStatus
from roster.leaves import leave_record, leave_return
from roster.models import Leave, LeaveKind, Notification, StudentStatus
from roster.signals import students_left, students_returned


@pytest.fixture(autouse=True)
def march():
    with time_machine.travel("2026-03-20 10:00 +0800", tick=False):
        yield


def record(world, student=None, **kwargs):
    return leave_record(
        world.school_admin_a1, student=student or world.student_a1_3, kind=LeaveKind.MEDICAL,
        starts_on=date(2026, 1, 5), expected_return_on=date(2026, 3, 16), reason="病休", **kwargs,
    )  # fmt: skip


def test_a_leave_sets_the_student_on_leave_and_is_not_leaving(world):
    announced = []

    def listen(sender, **kwargs):
        announced.append(kwargs)

    students_left.connect(listen)
    students_returned.connect(listen)
    try:
        leave = record(world)
        world.student_a1_3.refresh_from_db()
        assert world.student_a1_3.status == StudentStatus.ON_LEAVE
        assert leave.recorded_by == world.school_admin_a1 and leave.school == world.school_a1
        assert world.student_a1_3.history.latest().history_change_reason == "leave recorded"
        leave_return(world.school_admin_a1, leave=leave, returned_on=date(2026, 3, 16))
    finally:
        students_left.disconnect(listen)
        students_returned.disconnect(listen)
    assert announced == []  # 休学 is not leaving the school


def test_the_return_raises_one_return_assessment_signal_and_tells_the_psychology_teachers(world):
    leave = record(world)
    leave_return(world.counselor_a1, leave=leave, returned_on=date(2026, 3, 16))
    world.student_a1_3.refresh_from_db()
    assert world.student_a1_3.status == StudentStatus.ACTIVE
    leave.refresh_from_db()
    assert leave.returned_on == date(2026, 3, 16)
    signal = Signal.objects.get(source=SignalSource.LEAVE_RETURN)
    assert (signal.student, signal.school, signal.status) == (world.student_a1_3, world.school_a1, SignalStatus.OPEN)
    assert signal.key == f"leave_return:{leave.pk}" and "复学评估" in signal.reason
    assert "病" not in signal.reason  # the reason says nothing of why the student was away
    notes = Notification.objects.filter(kind="leave_return")
    assert [n.recipient for n in notes] == [world.counselor_a1]
    (note,) = notes
    assert "复学评估" in note.title and "王小明" not in note.body and note.link.endswith(f"/{signal.pk}/")
    with pytest.raises(ValidationError):
        leave_return(world.counselor_a1, leave=leave, returned_on=date(2026, 3, 17))
    assert Signal.objects.filter(source=SignalSource.LEAVE_RETURN).count() == 1


def test_who_may_record_a_leave(world):
    with pytest.raises(PermissionDenied):
        record(world, student=world.student_a2)  # another school's student
    with pytest.raises(PermissionDenied):
        leave_record(world.homeroom_a1_3, student=world.student_a1_3, starts_on=date(2026, 3, 2))
    leave = record(world)
    with pytest.raises(ValidationError):
        record(world)  # already on leave
    with pytest.raises(PermissionDenied):
        leave_return(world.counselor_a2, leave=leave)
    assert not Signal.objects.exists()


def test_a_return_cannot_be_for_a_day_to_come_or_before_the_leave(world):
    leave = record(world)
    for day in (date(2026, 3, 21), date(2026, 1, 1)):
        with pytest.raises(ValidationError):
            leave_return(world.school_admin_a1, leave=leave, returned_on=day)
    assert Leave.objects.get().returned_on is None


def test_the_school_admin_records_a_leave_and_the_return_in_the_admin(client, world):
    client.force_login(world.school_admin_a1)
    response = client.post(
        reverse("admin:roster_leave_add"),
        {"student": world.student_a1_3.pk, "kind": LeaveKind.SUSPENSION, "starts_on": "2026-02-02",
         "expected_return_on": "2026-03-16", "reason": ""},
    )  # fmt: skip
    assert response.status_code == 302, response.content.decode()[:2000]
    leave = Leave.objects.get()
    world.student_a1_3.refresh_from_db()
    assert world.student_a1_3.status == StudentStatus.ON_LEAVE
    page = client.get(reverse("admin:roster_leave_change", args=[leave.pk])).content.decode()
    assert "复学评估" in page
    client.post(reverse("admin:roster_leave_change", args=[leave.pk]), {"returned_on": "2026-03-18"})
    leave.refresh_from_db()
    assert leave.returned_on == date(2026, 3, 18)
    assert Signal.objects.filter(source=SignalSource.LEAVE_RETURN, student=world.student_a1_3).exists()
    refused = client.post(
        reverse("admin:roster_leave_add"),
        {"student": world.student_a2.pk, "kind": LeaveKind.SUSPENSION, "starts_on": "2026-02-02",
         "expected_return_on": "2026-03-16"},
    )  # fmt: skip
    assert refused.status_code == 200 and Leave.objects.count() == 1
    client.force_login(world.school_admin_a2)
    assert client.get(reverse("admin:roster_leave_change", args=[leave.pk])).status_code == 404
