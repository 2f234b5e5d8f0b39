"""Concerns from anyone (关注上报) and the hotline (issue 20 item 2), and screening flags recorded as signals (item 1):
each source lands in the student's school's signal queue, raised only by those allowed."""

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.utils import timezone

from cases import concerns
from cases import services as case_services
from cases.models import Case, Reporter, Signal, SignalSource, SignalStatus
from roster.models import Mentorship
from roster.roles import Role
from screening.services import result_record
from tests.factories.cases import many_flagged_cases
from tests.factories.roster import staff_with_role
from tests.factories.screening import ANSWERS, CampaignFactory


def test_a_homeroom_teacher_raises_a_concern_that_waits_in_the_schools_queue(world):
    signal = concerns.concern_raise(
        world.homeroom_a1_3, world.student_a1_3, what_was_seen=["mood", "withdrawn"], urgency="soon",
        detail="连续三天午饭没吃，一个人坐着",
    )  # fmt: skip
    assert (signal.source, signal.tier, signal.status, signal.school) == ("concern", "orange", "open", world.school_a1)
    assert signal.raised_by == world.homeroom_a1_3 and signal.reporter == Reporter.STAFF
    assert signal.reason == "情绪低落爱哭、孤僻退缩" and signal.detail == "连续三天午饭没吃，一个人坐着"
    assert signal.due_at > signal.raised_at  # orange: triaged within a school day
    (row,) = signal.history.all()
    assert row.history_user == world.homeroom_a1_3 and row.history_change_reason == "raised: concern"


@pytest.mark.parametrize("urgency, tier", [("watch", "yellow"), ("soon", "orange")])
def test_urgency_sets_the_tier(world, urgency, tier):
    signal = concerns.concern_raise(world.counselor_a1, world.student_a1_5, what_was_seen=["school"], urgency=urgency)
    assert signal.tier == tier


def test_a_subject_teacher_raises_for_their_class_and_a_peer_or_parent_through_a_teacher(world):
    teacher = staff_with_role(Role.SUBJECT_TEACHER, world.class_a1_3, username="maths_a1_3")
    peer = concerns.concern_raise(teacher, world.student_a1_3, what_was_seen=["conflict"], urgency="watch",
                                  reporter=Reporter.PEER)  # fmt: skip
    parent = concerns.concern_raise(teacher, world.student_a1_3, what_was_seen=[], urgency="watch",
                                    reporter=Reporter.PARENT, detail="家长来电：孩子在家不说话")  # fmt: skip
    assert (peer.reporter, parent.reporter) == ("peer", "parent")
    assert parent.reason == "见文字说明"  # no chip: the words say it


def test_a_subject_teacher_of_another_class_cannot_raise_and_nothing_is_written(world):
    teacher = staff_with_role(Role.SUBJECT_TEACHER, world.class_a1_5, username="maths_a1_5")
    with pytest.raises(PermissionDenied):
        concerns.concern_raise(teacher, world.student_a1_3, what_was_seen=["mood"], urgency="watch")
    for outsider in (world.homeroom_a1_3, world.counselor_a2, world.school_admin_a1, world.centre_district_a):
        with pytest.raises(PermissionDenied):
            concerns.concern_raise(outsider, world.student_a1_5 if outsider == world.homeroom_a1_3 else
                                   world.student_a1_3, what_was_seen=["mood"], urgency="watch")  # fmt: skip
    assert not Signal.objects.exists()


def test_a_mentor_raises_for_a_current_mentee_only(world):
    mentor = staff_with_role(Role.MENTOR, world.school_a1, username="mentor_a1")
    with pytest.raises(PermissionDenied):
        concerns.concern_raise(mentor, world.student_a1_3, what_was_seen=["mood"], urgency="watch")
    Mentorship.objects.create(student=world.student_a1_3, user=mentor, school=world.school_a1,
                              started_at=timezone.now())  # fmt: skip
    assert concerns.concern_raise(mentor, world.student_a1_3, what_was_seen=["mood"], urgency="watch").pk


def test_a_concern_needs_what_was_seen_and_a_known_urgency(world):
    for bad in ({"what_was_seen": [], "urgency": "watch"}, {"what_was_seen": ["mood"], "urgency": "maybe"},
                {"what_was_seen": ["secret"], "urgency": "watch"}):  # fmt: skip
        with pytest.raises(ValidationError):
            concerns.concern_raise(world.homeroom_a1_3, world.student_a1_3, **bad)
    with pytest.raises(ValidationError):
        concerns.concern_raise(world.homeroom_a1_3, world.student_a1_3, what_was_seen=["mood"], urgency="watch",
                               reporter=Reporter.SYSTEM)  # fmt: skip
    assert not Signal.objects.exists()


def test_the_district_centre_records_a_hotline_call_routed_to_the_students_school(world):
    signal = concerns.hotline_call_record(world.centre_district_a, world.student_a2, what_was_seen=["home"],
                                          urgency="soon", detail="母亲来电，孩子离家两天")  # fmt: skip
    assert (signal.source, signal.reporter, signal.school, signal.tier) == ("hotline", "caller", world.school_a2,
                                                                            "orange")  # fmt: skip
    centre_b = staff_with_role(Role.DISTRICT_CENTRE, world.district_b, username="centre_district_b")
    for outsider in (centre_b, world.counselor_a2, world.city_centre):
        with pytest.raises(PermissionDenied):
            concerns.hotline_call_record(outsider, world.student_a2, what_was_seen=["home"], urgency="watch")
    assert Signal.objects.count() == 1


def test_a_screening_flag_is_a_signal_decided_by_its_case(world, open_case):
    case, _process = open_case(world.student_a1_3, "yellow")
    (signal,) = Signal.objects.all()
    assert (signal.source, signal.status, signal.case, signal.tier) == ("screening", "case_opened", case, "yellow")
    assert signal.key == f"result:{case.screening_result_id}" and signal.due_at is None and signal.decided_at
    # The same result delivered again: still one signal; a higher flag joins the open case.
    case_services.case_open_for_flag(case.screening_result)
    assert Signal.objects.count() == 1
    later = CampaignFactory(schools=[world.school_a1])  # the next screening: a new result
    again = result_record(campaign=later, student=world.student_a1_3, answers=ANSWERS["red"], source="import").result
    case_services.case_open_for_flag(again)
    raised = Signal.objects.get(key=f"result:{again.pk}")
    assert (raised.status, raised.case, raised.tier) == ("added_to_case", case, "red")


def test_a_teacher_checklist_flag_is_a_checklist_signal(world, campaign):
    result = result_record(campaign=campaign, student=world.student_a1_5, answers=ANSWERS["orange"],
                           source="observer", rated_by=world.homeroom_a1_3).result  # fmt: skip
    case_services.case_open_for_flag(result)
    assert Signal.objects.get().source == SignalSource.CHECKLIST


def test_a_large_import_records_one_signal_per_new_case_in_bulk(world, django_assert_max_num_queries):
    many_flagged_cases(world, 30)
    assert Signal.objects.filter(source="screening", status=SignalStatus.CASE_OPENED).count() == 30
    assert set(Signal.objects.values_list("case_id", flat=True)) == set(Case.objects.values_list("pk", flat=True))
    assert Signal.history.count() == 30
