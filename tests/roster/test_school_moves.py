"""School moves found on import and their review (issue 19 item 2): staged never applied, reviewed by the receiving
school's admin, the district admins seeing theirs; confirming moves the Student row with its history."""

import datetime

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import translation

from roster.identity import national_id_digest
from roster.importing import ImportRequest, run_import
from roster.models import (
    AccessLogEntry,
    AccessOutcome,
    MoveBasis,
    MoveStatus,
    SchoolClass,
    SchoolMove,
    Student,
    StudentStatus,
)
from roster.moves import MoveRefused, move_confirm, move_reject
from roster.signals import student_moved
from tests.factories.roster import StudentFactory
from tests.roster_files import STUDENT_HEADER, csv_bytes

HEADER = [*STUDENT_HEADER, "全国学籍号"]
NUMBER = "G990101201303051234"
BIRTH = datetime.date(2013, 3, 5)


def _row(
    school, *, student_no="30000001", name="王小明", grade="八年级", klass="2班", number=NUMBER, birth="2013-03-05"
):
    return [school.code, grade, klass, student_no, name, "女", birth, "王大明", "13912345678", "", number]


def _import(rows, actor, *, dry_run=False, job_id=None):
    with translation.override("zh-hans"):
        return run_import(
            ImportRequest(
                kind="students", data=csv_bytes([HEADER, *rows]), filename="autumn.csv", actor=actor,
                dry_run=dry_run, import_job_id=job_id,
            )
        )  # fmt: skip


@pytest.fixture
def xiaoming(world):
    """王小明, 7年级3班 at 东湖第一中学 (district A), with a national number and a birth date."""
    student = world.student_a1_3
    Student.objects.filter(pk=student.pk).update(
        birth_date=BIRTH, national_id_digest=national_id_digest(NUMBER), national_id_tail="1234"
    )
    student.refresh_from_db()
    return student


def test_a_national_number_match_within_the_district_is_staged_not_created(world, xiaoming):
    report = _import([_row(world.school_a2)], world.school_admin_a2)
    assert (report.errors, report.new, report.moves) == ([], 0, 1)
    assert not Student.objects.filter(school=world.school_a2, student_no="30000001").exists()
    move = SchoolMove.objects.get()
    new_class = SchoolClass.objects.get(school=world.school_a2, grade=8, number=2)  # created as the import creates
    assert (move.student, move.basis, move.status) == (xiaoming, MoveBasis.NATIONAL_ID, MoveStatus.PENDING)
    assert (move.from_school, move.from_class, move.from_student_no) == (
        world.school_a1,
        world.class_a1_3,
        xiaoming.student_no,
    )
    assert (move.to_school, move.to_class, move.to_student_no) == (world.school_a2, new_class, "30000001")
    assert move.row["name"] == "王小明" and move.row["national_id_tail"] == "1234" and NUMBER not in str(move.row)
    assert (move.created_by, move.history.get().history_user) == (world.school_admin_a2, world.school_admin_a2)
    xiaoming.refresh_from_db()
    assert (xiaoming.school, xiaoming.status) == (world.school_a1, StudentStatus.ACTIVE)  # nothing applied


def test_a_national_number_match_across_districts_and_of_a_graduate_is_staged(world, xiaoming):
    Student.objects.filter(pk=xiaoming.pk).update(status=StudentStatus.GRADUATED)
    report = _import([_row(world.school_b1)], world.school_admin_b1)
    assert (report.new, report.moves) == (0, 1)
    move = SchoolMove.objects.get()
    assert (move.from_school, move.to_school, move.from_status) == (world.school_a1, world.school_b1, "graduated")


def test_a_probable_match_in_the_district_is_staged_only_without_numbers(world, xiaoming):
    Student.objects.filter(pk=xiaoming.pk).update(national_id_digest="", national_id_tail="")
    report = _import([_row(world.school_a2, number="")], world.school_admin_a2)
    assert (report.new, report.moves) == (0, 1)
    assert SchoolMove.objects.get().basis == MoveBasis.PROBABLE


def test_no_probable_match_when_a_side_has_a_number_or_in_another_district(world, xiaoming):
    report = _import([_row(world.school_a2, number="")], world.school_admin_a2)  # the stored student has one
    assert (report.new, report.moves) == (1, 0)
    Student.objects.filter(pk=xiaoming.pk).update(national_id_digest="", national_id_tail="")
    report = _import([_row(world.school_b1, number="")], world.school_admin_b1)  # another district
    assert (report.new, report.moves) == (1, 0)
    assert not SchoolMove.objects.exists()


def test_two_probable_candidates_are_no_match_and_the_row_is_a_new_student(world, xiaoming):
    Student.objects.filter(pk=xiaoming.pk).update(national_id_digest="", national_id_tail="")
    StudentFactory(school_class=world.class_a1_5, name="王小明", birth_date=BIRTH)
    report = _import([_row(world.school_a2, number="")], world.school_admin_a2)
    assert (report.new, report.moves) == (1, 0)
    assert not SchoolMove.objects.exists()
    assert Student.objects.filter(school=world.school_a2, student_no="30000001").exists()


def test_a_student_listed_at_their_own_school_in_the_same_file_is_no_candidate(world, xiaoming):
    Student.objects.filter(pk=xiaoming.pk).update(national_id_digest="", national_id_tail="")
    own = [world.school_a1.code, "七年级", "3班", xiaoming.student_no, "王小明", "女", "2013-03-05", "", "", "", ""]
    report = _import([own, _row(world.school_a2, number="")], None)  # a file of two schools, from the command line
    assert (report.moves, report.new) == (0, 1)


def test_re_importing_refreshes_the_pending_move_and_never_duplicates_it(world, xiaoming):
    _import([_row(world.school_a2)], world.school_admin_a2)
    move = SchoolMove.objects.get()
    history = SchoolMove.history.count()
    report = _import([_row(world.school_a2)], world.school_admin_a2)
    assert (report.moves, report.new, SchoolMove.objects.count(), SchoolMove.history.count()) == (1, 0, 1, history)
    _import([_row(world.school_a2, klass="4班")], world.school_admin_a2)  # the receiving class corrected
    move.refresh_from_db()
    assert (SchoolMove.objects.count(), move.to_class.number, move.status) == (1, 4, MoveStatus.PENDING)


def test_a_dry_run_counts_and_lists_the_moves_and_writes_nothing(world, xiaoming):
    report = _import([_row(world.school_a2)], world.school_admin_a2, dry_run=True)
    assert (report.new, report.moves, SchoolMove.objects.count()) == (0, 1, 0)
    [row] = report.moved
    assert row["line"] == 2 and world.school_a1.name in row["values"] and "••••1234" in row["values"]


def test_staging_many_moves_takes_the_same_queries_as_staging_a_few(world):
    def run(count: int, offset: int) -> int:
        numbers = [f"G99{offset + n:016d}" for n in range(count)]
        StudentFactory.create_batch(count, school_class=world.class_a1_5)
        stored = list(Student.objects.filter(school_class=world.class_a1_5).order_by("-pk")[:count])
        for student, number in zip(stored, numbers, strict=True):
            Student.objects.filter(pk=student.pk).update(national_id_digest=national_id_digest(number))
        rows = [
            _row(world.school_a2, student_no=f"4{offset + n:07d}", number=number) for n, number in enumerate(numbers)
        ]
        with CaptureQueriesContext(connection) as queries:
            report = _import(rows, world.school_admin_a2)
        assert report.moves == count
        return len(queries)

    run(1, 900)  # the first import of a test reads what later ones find cached
    assert run(3, 0) == run(40, 100)


def _staged(world, school, admin):
    _import([_row(school)], admin)
    return SchoolMove.objects.get(status=MoveStatus.PENDING)


@pytest.fixture
def moved_signals():
    calls = []

    def on_moved(sender, move, actor, **kwargs):
        calls.append((move.pk, move.status, actor))

    student_moved.connect(on_moved, weak=False)
    yield calls
    student_moved.disconnect(on_moved)


def test_confirming_moves_the_student_with_the_old_school_and_class_in_the_history(world, xiaoming, moved_signals):
    move = _staged(world, world.school_a2, world.school_admin_a2)
    move_confirm(world.school_admin_a2, move, "同一人")
    xiaoming.refresh_from_db()
    new_class = SchoolClass.objects.get(school=world.school_a2, grade=8, number=2)
    assert (xiaoming.school, xiaoming.school_class, xiaoming.student_no) == (world.school_a2, new_class, "30000001")
    assert xiaoming.status == StudentStatus.ACTIVE and Student.objects.filter(name="王小明").count() == 1
    latest, before = xiaoming.history.order_by("-history_date", "-history_id")[:2]
    assert latest.history_user == world.school_admin_a2
    assert world.school_a1.name in latest.history_change_reason and world.school_a2.name in latest.history_change_reason
    assert (before.school_id, before.school_class_id) == (world.school_a1.pk, world.class_a1_3.pk)
    move.refresh_from_db()
    assert (move.status, move.decided_by, move.note) == (MoveStatus.CONFIRMED, world.school_admin_a2, "同一人")
    assert moved_signals == [(move.pk, MoveStatus.CONFIRMED, world.school_admin_a2)]
    # the same file again: the student is there now, nothing is staged or created
    report = _import([_row(world.school_a2)], world.school_admin_a2)
    assert (report.new, report.moves, report.updated + report.unchanged) == (0, 0, 1)


def test_rejecting_adds_the_row_as_a_new_student_and_needs_a_note(world, xiaoming, moved_signals):
    move = _staged(world, world.school_b1, world.school_admin_b1)
    with pytest.raises(MoveRefused):
        move_reject(world.school_admin_b1, move, "  ")
    student = move_reject(world.school_admin_b1, move, "生日相同，不是同一人")
    assert (student.school, student.student_no, student.name) == (world.school_b1, "30000001", "王小明")
    assert student.birth_date == BIRTH and student.national_id_digest == ""  # the number is the other record's
    assert student.history.get().history_user == world.school_admin_b1
    move.refresh_from_db()
    assert (move.status, move.note) == (MoveStatus.REJECTED, "生日相同，不是同一人")
    xiaoming.refresh_from_db()
    assert xiaoming.school == world.school_a1 and moved_signals == []


def test_a_move_decided_already_is_refused_and_nothing_changes(world, xiaoming):
    move = _staged(world, world.school_a2, world.school_admin_a2)
    move_confirm(world.school_admin_a2, move)
    history = Student.history.count()
    with translation.override("zh-hans"), pytest.raises(MoveRefused, match="已由他人处理"):
        move_reject(world.admin_district_a, move, "不是同一人")
    assert Student.history.count() == history and Student.objects.filter(name="王小明").count() == 1


def test_confirming_is_refused_when_the_receiving_school_has_the_student_number(world, xiaoming):
    move = _staged(world, world.school_a2, world.school_admin_a2)
    StudentFactory(school_class=world.class_a2, student_no="30000001")
    with pytest.raises(MoveRefused, match="30000001"):
        move_confirm(world.school_admin_a2, move)
    move.refresh_from_db()
    xiaoming.refresh_from_db()
    assert (move.status, xiaoming.school) == (MoveStatus.PENDING, world.school_a1)


# --- The review in the admin -----------------------------------------------------------------------------------


def _change_url(move):
    return reverse("admin:roster_schoolmove_change", args=[move.pk])


def test_the_receiving_school_admin_reviews_side_by_side_and_confirms(world, xiaoming, client):
    move = _staged(world, world.school_a2, world.school_admin_a2)
    client.force_login(world.school_admin_a2)
    index = client.get(reverse("admin:index")).content.decode()
    assert "1 条待审核" in index
    listing = client.get(reverse("admin:roster_schoolmove_changelist")).content.decode()
    assert "王*明" in listing and "王小明" not in listing
    page = client.get(_change_url(move)).content.decode()
    assert "确认是同一学生" in page and "不是同一学生" in page
    assert world.school_a1.name in page and "7年级3班" in page and "2013-03-05" in page and "••••1234" in page
    response = client.post(_change_url(move), {"_confirm": "1", "note": ""})
    assert response.status_code == 302
    xiaoming.refresh_from_db()
    assert xiaoming.school == world.school_a2
    page = client.get(_change_url(move), follow=True).content.decode()
    assert "确认是同一学生" not in page  # decided: no buttons
    assert (
        client.post(_change_url(move), {"_reject": "1", "note": "x"}, follow=True)
        .content.decode()
        .count("已由他人处理")
    )


def test_a_rejection_without_a_note_is_refused_with_a_message(world, xiaoming, client):
    move = _staged(world, world.school_a2, world.school_admin_a2)
    client.force_login(world.school_admin_a2)
    page = client.post(_change_url(move), {"_reject": "1", "note": ""}, follow=True).content.decode()
    assert "备注必填" in page
    move.refresh_from_db()
    assert move.status == MoveStatus.PENDING


def test_the_sending_district_sees_a_move_across_districts_but_only_the_receiving_side_decides(world, xiaoming, client):
    move = _staged(world, world.school_b1, world.school_admin_b1)
    client.force_login(world.admin_district_a)  # the sending district
    assert "王*明" in client.get(reverse("admin:roster_schoolmove_changelist")).content.decode()
    page = client.get(_change_url(move)).content.decode()
    assert "确认是同一学生" not in page and "王小明" not in page  # read-only, masked above a school
    assert client.post(_change_url(move), {"_confirm": "1"}).status_code == 404
    client.force_login(world.admin_district_b)  # the receiving district decides
    assert client.post(_change_url(move), {"_confirm": "1"}).status_code == 302
    xiaoming.refresh_from_db()
    assert xiaoming.school == world.school_b1


@pytest.mark.parametrize("persona", ["school_admin_a1", "school_admin_b1", "counselor_a2", "auditor_district_a"])
def test_a_move_out_of_scope_is_404_and_the_refusal_is_logged(world, xiaoming, client, persona):
    move = _staged(world, world.school_a2, world.school_admin_a2)
    user = getattr(world, persona)
    client.force_login(user)
    response = client.get(_change_url(move))
    assert response.status_code in (403, 404)
    assert client.post(_change_url(move), {"_confirm": "1"}).status_code in (403, 404)
    assert AccessLogEntry.objects.filter(actor_id=user.pk, outcome=AccessOutcome.DENIED).exists()
    move.refresh_from_db()
    assert move.status == MoveStatus.PENDING


def test_the_list_puts_pending_moves_first(world, xiaoming, client):
    decided = _staged(world, world.school_a2, world.school_admin_a2)
    move_reject(world.school_admin_a2, decided, "不是")
    other = StudentFactory(school_class=world.class_a1_5, name="李四", birth_date=BIRTH)
    Student.objects.filter(pk=other.pk).update(national_id_digest=national_id_digest("G99ABCDEFGH"))
    _import([_row(world.school_a2, student_no="30000009", name="李四", number="G99ABCDEFGH")], world.school_admin_a2)
    client.force_login(world.admin_district_a)
    response = client.get(reverse("admin:roster_schoolmove_changelist"))
    ids = [m.pk for m in response.context["cl"].result_list]
    assert ids[0] == SchoolMove.objects.get(status=MoveStatus.PENDING).pk and ids[1] == decided.pk


def test_the_import_preview_says_how_many_moves_wait_and_links_to_them(world, xiaoming, client):
    from django.core.files.uploadedfile import SimpleUploadedFile

    client.force_login(world.school_admin_a2)
    data = csv_bytes([HEADER, _row(world.school_a2)])
    response = client.post(reverse("admin:roster_importjob_add"), {"file": SimpleUploadedFile("a.csv", data)})
    page = client.get(response.url).content.decode()
    assert "1 行：转学，待审核" in page and reverse("admin:roster_schoolmove_changelist") in page
    client.post(response.url, {"_confirm": "1"})
    move = SchoolMove.objects.get()
    assert move.import_job_id is not None
    assert 'id="moves-count">1<' in client.get(response.url).content.decode()
