"""一人一案 help records (issue 20 item 3): written, changed and ended by the school's psychology teachers and principal
for a member of a ledger group, with history and reasons; refusals change nothing; the responsible person reads
theirs; a passed review date is one yellow signal per review date, raised by the minute sweep."""

import datetime

import pytest
import time_machine
from django.core.exceptions import PermissionDenied, ValidationError
from django.utils import timezone

from cases import help_records
from cases.models import HelpRecord, HelpStatus, Signal, SignalSource
from roster import scoping
from roster.models import SpecialGroup, StudentStatus
from roster.roles import Role
from tests.factories.roster import StudentFactory, staff_with_role
from workflows.services import workflow_tick


def group(code: str) -> SpecialGroup:
    return SpecialGroup.objects.get(code=code)


@pytest.fixture
def tagged(world):
    """王小明 (7-3 of A1) is a left-behind child (留守儿童, a ledger group)."""
    world.student_a1_3.special_groups.add(group("left_behind"))
    return world.student_a1_3


def today() -> datetime.date:
    return timezone.localdate()


def write(world, student, actor=None, **fields):
    values = {"measures": "每周谈心一次；联系监护人", "responsible": world.homeroom_a1_3,
              "review_on": today() + datetime.timedelta(days=30)} | fields  # fmt: skip
    return help_records.help_record_create(
        actor=actor or world.counselor_a1, student=student, group=fields.pop("group", group("left_behind")),
        **{k: v for k, v in values.items() if k != "group"},
    )  # fmt: skip


def test_the_psychology_teacher_writes_a_help_record_with_its_history(world, tagged):
    record = write(world, tagged)
    assert (record.school, record.group.code, record.status, record.created_by, record.responsible) == (
        world.school_a1, "left_behind", HelpStatus.ACTIVE, world.counselor_a1, world.homeroom_a1_3,
    )  # fmt: skip
    (h,) = record.history.all()
    assert (h.history_user, h.history_change_reason) == (world.counselor_a1, "help record written")


def test_the_principal_writes_one_and_others_are_refused(world, tagged):
    assert write(world, tagged, actor=world.principal_a1).created_by == world.principal_a1
    HelpRecord.objects.all().delete()
    for outsider in (world.homeroom_a1_3, world.counselor_a2, world.centre_district_a, world.school_admin_a1):
        with pytest.raises(PermissionDenied):
            write(world, tagged, actor=outsider)
    assert not HelpRecord.objects.exists()


@pytest.mark.parametrize(
    "case, expected",
    [
        ("not a member", "不是"),
        ("duplicate", "已有"),
        ("responsible of another school", "责任人"),
        ("responsible inactive", "责任人"),
        ("not a ledger group", "台账"),
        ("review date in the past", "复查日期"),
        ("no measures", "帮扶措施"),
        ("student left", "不是"),
    ],
)
def test_refusals_say_why_and_change_nothing(world, tagged, case, expected):
    student, fields = tagged, {}
    if case == "not a member":
        student = world.student_a1_5
    elif case == "duplicate":
        write(world, tagged)
    elif case == "responsible of another school":
        fields["responsible"] = world.counselor_a2
    elif case == "responsible inactive":
        world.homeroom_a1_3.is_active = False
        world.homeroom_a1_3.save()
    elif case == "not a ledger group":
        tagged.special_groups.add(group("academic_difficulty"))
        fields["group"] = group("academic_difficulty")
    elif case == "review date in the past":
        fields["review_on"] = today() - datetime.timedelta(days=1)
    elif case == "no measures":
        fields["measures"] = "  "
    elif case == "student left":
        tagged.status = StudentStatus.TRANSFERRED
        tagged.save()
    before = (HelpRecord.objects.count(), HelpRecord.history.count())
    with pytest.raises(ValidationError) as refused:
        write(world, student, **fields)
    assert expected in " ".join(refused.value.messages)
    assert (HelpRecord.objects.count(), HelpRecord.history.count()) == before


def test_a_change_needs_a_reason_and_is_kept_in_the_history(world, tagged):
    record = write(world, tagged)
    new_date = today() + datetime.timedelta(days=60)
    with pytest.raises(ValidationError):
        help_records.help_record_update(actor=world.counselor_a1, record=record, measures="x",
                                        responsible=world.principal_a1, review_on=new_date, reason=" ")  # fmt: skip
    help_records.help_record_update(
        actor=world.principal_a1, record=record, measures="加一次家访", responsible=world.principal_a1,
        review_on=new_date, reason="家访后调整",
    )  # fmt: skip
    record.refresh_from_db()
    assert (record.measures, record.responsible, record.review_on) == ("加一次家访", world.principal_a1, new_date)
    assert record.history.first().history_change_reason == "help record changed: 家访后调整"
    with pytest.raises(PermissionDenied):
        help_records.help_record_end(actor=world.homeroom_a1_3, record=record, reason="不需要了")
    help_records.help_record_end(actor=world.counselor_a1, record=record, reason="已升学")
    record.refresh_from_db()
    assert record.status == HelpStatus.ENDED
    assert record.history.first().history_change_reason == "help record ended: 已升学"
    with pytest.raises(ValidationError):
        help_records.help_record_end(actor=world.counselor_a1, record=record, reason="again")
    help_records.help_record_update(actor=world.counselor_a1, record=record, measures="再次帮扶",
                                    responsible=world.principal_a1, review_on=new_date, reason="情况反复")  # fmt: skip
    record.refresh_from_db()
    assert record.status == HelpStatus.ACTIVE
    assert record.history.first().history_change_reason == "help record resumed: 情况反复"
    assert record.history.count() == 4  # written, changed, ended, resumed: the refusals wrote nothing


def test_the_responsible_person_reads_their_record_and_nothing_else(world, tagged):
    mine = write(world, tagged)
    other = StudentFactory(school_class=world.class_a1_5)
    other.special_groups.add(group("left_behind"))
    theirs = write(world, other, responsible=world.principal_a1)
    assert list(scoping.visible(world.homeroom_a1_3, HelpRecord)) == [mine]
    assert list(help_records.help_records_responsible(world.homeroom_a1_3)) == [mine]
    mentor = staff_with_role(Role.MENTOR, world.school_a1)
    assert not scoping.visible(mentor, HelpRecord).exists()
    assert set(scoping.visible(world.counselor_a1, HelpRecord)) == {mine, theirs}
    assert not scoping.visible(world.counselor_a2, HelpRecord).exists()


# --- The review signal ----------------------------------------------------------------------------------------------


def at_noon(day: datetime.date) -> datetime.datetime:
    return timezone.make_aware(datetime.datetime.combine(day, datetime.time(12)))


def review_signals():
    return list(Signal.objects.filter(source=SignalSource.HELP_REVIEW).order_by("pk"))


def test_a_passed_review_date_is_one_signal_per_date_and_a_new_date_a_new_one(world, tagged):
    review_on = today() + datetime.timedelta(days=10)
    record = write(world, tagged, review_on=review_on)
    with time_machine.travel(at_noon(review_on), tick=False):
        workflow_tick()  # the review day itself: due, not passed
        assert review_signals() == []
    with time_machine.travel(at_noon(review_on + datetime.timedelta(days=1)), tick=False):
        assert workflow_tick()["help_reviews"] == 1
        assert workflow_tick()["help_reviews"] == 0
    with time_machine.travel(at_noon(review_on + datetime.timedelta(days=5)), tick=False):
        workflow_tick()
    (signal,) = review_signals()
    assert (signal.student, signal.school, signal.tier, signal.key, signal.raised_by) == (
        tagged, world.school_a1, "yellow", f"help_review:{record.pk}:{review_on.isoformat()}", None,
    )  # fmt: skip
    assert "留守" not in signal.reason + signal.detail and "每周" not in signal.reason + signal.detail

    later = review_on + datetime.timedelta(days=20)
    with time_machine.travel(at_noon(review_on + datetime.timedelta(days=6)), tick=False):
        help_records.help_record_update(actor=world.counselor_a1, record=record, measures="继续", reason="复查完毕",
                                        responsible=world.homeroom_a1_3, review_on=later)  # fmt: skip
        workflow_tick()
    assert len(review_signals()) == 1
    with time_machine.travel(at_noon(later + datetime.timedelta(days=1)), tick=False):
        workflow_tick()
        workflow_tick()
    assert [s.key for s in review_signals()] == [
        f"help_review:{record.pk}:{review_on.isoformat()}", f"help_review:{record.pk}:{later.isoformat()}",
    ]  # fmt: skip


def test_an_ended_record_a_leaver_or_an_untagged_student_raises_no_review(world, tagged):
    review_on = today() + datetime.timedelta(days=3)
    ended = write(world, tagged, review_on=review_on)
    help_records.help_record_end(actor=world.counselor_a1, record=ended, reason="结束")
    left = StudentFactory(school_class=world.class_a1_5)
    left.special_groups.add(group("left_behind"))
    write(world, left, review_on=review_on)
    left.status = StudentStatus.GRADUATED
    left.save()
    untagged = StudentFactory(school_class=world.class_a1_5)
    untagged.special_groups.add(group("single_parent"))
    write(world, untagged, review_on=review_on, group=group("single_parent"))
    untagged.special_groups.clear()
    with time_machine.travel(at_noon(review_on + datetime.timedelta(days=2)), tick=False):
        assert help_records.help_reviews_due_signal() == 0
    assert review_signals() == []


def test_the_sweep_is_one_query_when_every_passed_review_is_signalled(world, tagged, django_assert_max_num_queries):
    review_on = today() + datetime.timedelta(days=3)
    for _ in range(5):
        student = StudentFactory(school_class=world.class_a1_5)
        student.special_groups.add(group("left_behind"))
        write(world, student, review_on=review_on)
    with time_machine.travel(at_noon(review_on + datetime.timedelta(days=1)), tick=False):
        assert help_records.help_reviews_due_signal() == 5
        with django_assert_max_num_queries(1):
            assert help_records.help_reviews_due_signal() == 0
