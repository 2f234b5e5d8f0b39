"""Mentors' talks (谈心谈话) and home visits (家访): who records them, the concern a worrying one raises, a teacher's
"my students" page, and the coverage figures per class, school and district, counted by hand."""

import datetime

import pytest
import time_machine
from django.core.exceptions import PermissionDenied, ValidationError
from django.urls import reverse

from cases import care_records, care_selectors
from cases.models import HomeVisit, MentorTalk, Reporter, Signal, SignalSource, SignalStatus
from roster import mentoring
from roster.models import AccessLogEntry, StudentStatus
from roster.roles import Role
from tests.factories.roster import StudentFactory, staff_with_role

TODAY = datetime.date(2026, 11, 16)  # the autumn term of 2026–2027
NOW = datetime.datetime(2026, 11, 16, 10, 0, tzinfo=datetime.UTC)


@pytest.fixture
def care(world):
    """A mentor of school A1 mentoring student_a1_3; a subject teacher of class 7-5; the district centre."""
    w = world
    w.mentor_a1 = staff_with_role(Role.MENTOR, w.school_a1, username="mentor_a1", name="导师甲")
    mentoring.mentor_assign(actor=None, student=w.student_a1_3, mentor=w.mentor_a1)
    w.subject_a1_5 = staff_with_role(Role.SUBJECT_TEACHER, w.class_a1_5, username="subject_a1_5")
    return w


@pytest.fixture(autouse=True)
def frozen():
    with time_machine.travel(NOW, tick=False):
        yield


# --- Services --------------------------------------------------------------------------------------------------------


def test_the_mentor_records_a_talk_with_its_author_in_the_history(care):
    talk = care_records.talk_record(actor=care.mentor_a1, student=care.student_a1_3, held_on=TODAY, topic="考试压力",
                                    note="最近睡得晚")  # fmt: skip
    assert (talk.author, talk.school, talk.signal) == (care.mentor_a1, care.school_a1, None)
    record = talk.history.get()
    assert (record.history_user, record.history_change_reason) == (care.mentor_a1, "mentor talk recorded")
    assert not Signal.objects.exists()


@pytest.mark.parametrize("persona", ["homeroom_a1_3", "counselor_a1", "subject_a1_5", "mentor_a1"])
def test_only_the_current_mentor_records_a_talk(care, persona):
    student = care.student_a1_5 if persona == "mentor_a1" else care.student_a1_3  # not the mentor's mentee
    with pytest.raises(PermissionDenied):
        care_records.talk_record(actor=getattr(care, persona), student=student, held_on=TODAY, topic="x")
    assert not MentorTalk.objects.exists()


def test_a_mentor_whose_mentorship_ended_records_no_more_talks(care):
    other = staff_with_role(Role.MENTOR, care.school_a1, username="mentor_two")
    mentoring.mentor_assign(actor=None, student=care.student_a1_3, mentor=other)
    with pytest.raises(PermissionDenied):
        care_records.talk_record(actor=care.mentor_a1, student=care.student_a1_3, held_on=TODAY, topic="x")


def test_a_date_in_the_future_or_a_blank_topic_is_refused_and_nothing_is_written(care):
    with pytest.raises(ValidationError) as refusal:
        care_records.talk_record(actor=care.mentor_a1, student=care.student_a1_3,
                                 held_on=TODAY + datetime.timedelta(days=1), topic="x")  # fmt: skip
    assert "held_on" in refusal.value.message_dict
    with pytest.raises(ValidationError):
        care_records.home_visit_record(actor=care.homeroom_a1_3, student=care.student_a1_3,
                                       visited_on=TODAY + datetime.timedelta(days=1), met="母亲")  # fmt: skip
    with pytest.raises(ValidationError):
        care_records.talk_record(actor=care.mentor_a1, student=care.student_a1_3, held_on=TODAY, topic="  ")
    assert not MentorTalk.objects.exists() and not HomeVisit.objects.exists()


def test_a_worrying_talk_raises_one_yellow_concern_linked_to_it(care):
    talk = care_records.talk_record(actor=care.mentor_a1, student=care.student_a1_3, held_on=TODAY, topic="同学关系",
                                    note="说不想来学校", worrying=True)  # fmt: skip
    signal = Signal.objects.get()
    assert talk.signal == signal
    assert (signal.source, signal.tier, signal.reporter, signal.raised_by, signal.status) == (
        SignalSource.CONCERN, "yellow", Reporter.STAFF, care.mentor_a1, SignalStatus.OPEN,
    )  # fmt: skip
    assert signal.reason == "谈心谈话中发现需关注的情况" and "说不想来学校" in signal.detail
    assert signal.key == f"mentor_talk:{talk.pk}" and signal.due_at is not None


def test_the_homeroom_teacher_or_the_mentor_records_a_visit_and_a_worrying_one_raises_a_concern(care):
    visit = care_records.home_visit_record(actor=care.homeroom_a1_3, student=care.student_a1_3, visited_on=TODAY,
                                           met="祖母", note="父母在外务工", worrying=True)  # fmt: skip
    assert visit.signal.reason == "家访中发现需关注的情况" and visit.signal.raised_by == care.homeroom_a1_3
    care_records.home_visit_record(actor=care.mentor_a1, student=care.student_a1_3, visited_on=TODAY, met="母亲")
    for persona, student in (("subject_a1_5", "student_a1_5"), ("homeroom_a1_3", "student_a1_5"),
                             ("counselor_a1", "student_a1_3")):  # fmt: skip
        with pytest.raises(PermissionDenied):
            care_records.home_visit_record(actor=getattr(care, persona), student=getattr(care, student),
                                           visited_on=TODAY, met="母亲")  # fmt: skip
    assert HomeVisit.objects.count() == 2 and Signal.objects.count() == 1


# --- Pages -----------------------------------------------------------------------------------------------------------


def test_a_mentor_sees_their_mentees_by_name_and_nobody_else(client, care):
    client.force_login(care.mentor_a1)
    page = client.get(reverse("care:my_students")).content.decode()
    assert care.student_a1_3.name in page and care.student_a1_5.name not in page
    assert reverse("care:talk_new", args=[care.student_a1_3.pk]) in page
    assert reverse("care:visit_new", args=[care.student_a1_3.pk]) in page
    assert client.get(reverse("care:student", args=[care.student_a1_5.pk])).status_code == 404
    assert client.get(reverse("care:talk_new", args=[care.student_a1_5.pk])).status_code == 404


def test_a_subject_teacher_sees_the_class_they_teach_and_records_no_talk_or_visit(client, care):
    client.force_login(care.subject_a1_5)
    page = client.get(reverse("care:my_students")).content.decode()
    assert care.student_a1_5.name in page and care.student_a1_3.name not in page
    assert "/talk/" not in page and "/visit/" not in page
    assert client.get(reverse("care:visit_new", args=[care.student_a1_5.pk])).status_code == 404
    assert client.get(reverse("care:my_students")).status_code == 200


def test_the_homeroom_teacher_logs_a_visit_through_the_form(client, care):
    client.force_login(care.homeroom_a1_3)
    url = reverse("care:visit_new", args=[care.student_a1_3.pk])
    assert client.get(url).status_code == 200
    future = client.post(url, {"visited_on": "2026-11-17", "met": "母亲"})
    assert future.status_code == 200 and "日期不能晚于今天" in future.content.decode()
    assert not HomeVisit.objects.exists()
    done = client.post(url, {"visited_on": "2026-11-10", "met": "母亲", "note": "家中和睦"})
    assert done.status_code == 302
    visit = HomeVisit.objects.get()
    assert (visit.author, visit.visited_on, visit.met) == (care.homeroom_a1_3, datetime.date(2026, 11, 10), "母亲")
    page = client.get(reverse("care:my_students")).content.decode()
    assert "2026-11-10" in page


def test_a_student_page_shows_the_records_the_person_wrote_and_nobody_elses(client, care):
    care_records.talk_record(actor=care.mentor_a1, student=care.student_a1_3, held_on=TODAY, topic="我的话题")
    care_records.home_visit_record(actor=care.homeroom_a1_3, student=care.student_a1_3, visited_on=TODAY,
                                   met="班主任见到的父亲")  # fmt: skip
    client.force_login(care.mentor_a1)
    page = client.get(reverse("care:student", args=[care.student_a1_3.pk])).content.decode()
    assert "我的话题" in page and "班主任见到的父亲" not in page
    client.force_login(care.homeroom_a1_3)
    page = client.get(reverse("care:student", args=[care.student_a1_3.pk])).content.decode()
    assert "班主任见到的父亲" in page and "我的话题" not in page


def test_my_students_runs_the_same_queries_for_one_mentee_and_thirty(client, care, django_assert_max_num_queries):
    client.force_login(care.mentor_a1)
    client.get(reverse("care:my_students"))  # warm the session and the scope
    with django_assert_max_num_queries(14) as one:
        assert client.get(reverse("care:my_students")).status_code == 200
    for _n in range(29):
        student = StudentFactory(school_class=care.class_a1_5)
        mentoring.mentor_assign(actor=None, student=student, mentor=care.mentor_a1)
        care_records.talk_record(actor=care.mentor_a1, student=student, held_on=TODAY, topic="t")
    with django_assert_max_num_queries(len(one.captured_queries)):
        page = client.get(reverse("care:my_students")).content.decode()
    assert page.count('class="care-student"') == 30


def test_people_without_students_meet_a_logged_404(client, care):
    client.force_login(care.school_admin_a1)
    before = AccessLogEntry.objects.count()
    assert client.get(reverse("care:my_students")).status_code == 404
    assert (
        AccessLogEntry.objects.filter(outcome="denied").count()
        == 1 + AccessLogEntry.objects.filter(outcome="denied", pk__lte=before).count()
    )


# --- Coverage --------------------------------------------------------------------------------------------------------


@pytest.fixture
def covered(care):
    """Class 7-3 of A1: student_a1_3 + 3 more (4); class 7-5: student_a1_5 + 1 more (2) and one graduated (not
    counted); A2's class 8-1: student_a2 alone. By hand:
      7-3: mentees 3 (a1_3, s2, s3), talked this term 2 (a1_3, s2; s3's talk was last term), visited 2 (a1_3, s4;
           s2's visit was last school year)
      7-5: mentees 1 (a1_5), talked 0, visited 1 (a1_5)
      A1: students 6, mentees 4, talked 2, visited 3;  A2: students 1, nothing.
    """
    w = care
    s2, s3, s4 = (StudentFactory(school_class=w.class_a1_3, name=n) for n in ("张三丰", "李四光", "赵五娘"))
    s6 = StudentFactory(school_class=w.class_a1_5)
    StudentFactory(school_class=w.class_a1_5, status=StudentStatus.GRADUATED)
    for student in (s2, s3, w.student_a1_5):
        mentoring.mentor_assign(actor=None, student=student, mentor=w.mentor_a1)
    talk = care_records.talk_record
    talk(actor=w.mentor_a1, student=w.student_a1_3, held_on=TODAY, topic="t")
    talk(actor=w.mentor_a1, student=w.student_a1_3, held_on=datetime.date(2026, 9, 1), topic="t")  # twice: one student
    talk(actor=w.mentor_a1, student=s2, held_on=datetime.date(2026, 9, 1), topic="t")  # the term's first day
    talk(actor=w.mentor_a1, student=s3, held_on=datetime.date(2026, 8, 31), topic="t")  # the spring term before
    visit = care_records.home_visit_record
    visit(actor=w.homeroom_a1_3, student=w.student_a1_3, visited_on=TODAY, met="母亲")
    visit(actor=w.homeroom_a1_3, student=s4, visited_on=datetime.date(2026, 9, 1), met="父亲")
    visit(actor=w.homeroom_a1_3, student=s2, visited_on=datetime.date(2026, 8, 31), met="父亲")  # last school year
    visit(actor=w.mentor_a1, student=w.student_a1_5, visited_on=TODAY, met="母亲")
    w.s2, w.s3, w.s4, w.s6 = s2, s3, s4, s6
    return w


def _figures(response) -> dict:
    rows = response.context["rows"]
    return {str(row.node): (row.students, row.mentees, row.talked, row.visited) for row, _url in rows}


def test_the_terms_and_school_years_turn_on_the_first_of_september_and_february():
    term = care_selectors.term_period
    assert (term(datetime.date(2026, 9, 1)).start, term(datetime.date(2026, 9, 1)).end) == (
        datetime.date(2026, 9, 1), datetime.date(2027, 1, 31),
    )  # fmt: skip
    assert term(datetime.date(2027, 1, 31)).start == datetime.date(2026, 9, 1)
    assert (term(datetime.date(2027, 2, 1)).start, term(datetime.date(2027, 2, 1)).end) == (
        datetime.date(2027, 2, 1), datetime.date(2027, 8, 31),
    )  # fmt: skip
    assert term(datetime.date(2026, 8, 31)).start == datetime.date(2026, 2, 1)
    year = care_selectors.school_year_period(datetime.date(2027, 8, 31))
    assert (year.start, year.end, year.label) == (datetime.date(2026, 9, 1), datetime.date(2027, 8, 31), "2026–2027")


def test_the_school_sees_each_class_and_the_students_of_a_class_not_yet_visited(client, covered):
    w = covered
    client.force_login(w.counselor_a1)
    response = client.get(reverse("care:coverage"))
    assert response.status_code == 200 and response.context["level"] == "class"
    assert _figures(response) == {str(w.class_a1_3): (4, 3, 2, 2), str(w.class_a1_5): (2, 1, 0, 1)}
    total = response.context["figures"].total
    assert (total.students, total.mentees, total.talked, total.visited) == (6, 4, 2, 3)
    one = client.get(reverse("care:coverage"), {"class": w.class_a1_3.pk})
    assert [s["name"] for s in one.context["unvisited"]] == ["张*丰", "李*光"]
    assert "张三丰" not in one.content.decode() and "张*丰" in one.content.decode()


def test_the_homeroom_teacher_sees_their_class_alone_with_its_unvisited_students(client, covered):
    w = covered
    client.force_login(w.homeroom_a1_3)
    response = client.get(reverse("care:coverage"))
    assert _figures(response) == {str(w.class_a1_3): (4, 3, 2, 2)}
    assert [s["student_no"] for s in response.context["unvisited"]] == sorted([w.s2.student_no, w.s3.student_no])
    assert client.get(reverse("care:coverage"), {"class": w.class_a1_5.pk}).status_code == 404


def test_the_district_centre_sees_its_schools_and_drills_into_one_without_names(client, covered):
    w = covered
    client.force_login(w.centre_district_a)
    response = client.get(reverse("care:coverage"))
    assert response.context["level"] == "school"
    assert _figures(response) == {str(w.school_a1): (6, 4, 2, 3), str(w.school_a2): (1, 0, 0, 0)}
    school = client.get(reverse("care:coverage"), {"school": w.school_a1.pk})
    assert _figures(school) == {str(w.class_a1_3): (4, 3, 2, 2), str(w.class_a1_5): (2, 1, 0, 1)}
    one = client.get(reverse("care:coverage"), {"class": w.class_a1_3.pk})
    assert one.context["unvisited"] is None and "张*丰" not in one.content.decode()
    assert client.get(reverse("care:coverage"), {"school": w.school_b1.pk}).status_code == 404


def test_the_city_centre_sees_its_districts(client, covered):
    client.force_login(covered.city_centre)
    response = client.get(reverse("care:coverage"))
    assert response.context["level"] == "district"
    assert _figures(response) == {str(covered.district_a): (7, 4, 2, 3), str(covered.district_b): (1, 0, 0, 0)}


@pytest.mark.parametrize("persona", ["mentor_a1", "subject_a1_5", "school_admin_a1", "admin_district_a"])
def test_coverage_is_not_for_mentors_subject_teachers_or_admins(client, covered, persona):
    client.force_login(getattr(covered, persona))
    assert client.get(reverse("care:coverage")).status_code == 404


def test_coverage_runs_the_same_queries_for_two_schools_and_ten(client, covered, django_assert_max_num_queries):
    from tests.factories.roster import SchoolClassFactory, SchoolFactory

    client.force_login(covered.centre_district_a)
    client.get(reverse("care:coverage"))
    with django_assert_max_num_queries(14) as few:
        client.get(reverse("care:coverage"))
    for n in range(8):
        school = SchoolFactory(district=covered.district_a, code=f"99010100{n + 10}")
        StudentFactory(school_class=SchoolClassFactory(school=school, grade=7, number=1))
    with django_assert_max_num_queries(len(few.captured_queries)):
        response = client.get(reverse("care:coverage"))
    assert len(response.context["rows"]) == 10


@pytest.mark.parametrize("persona", ["mentor_a1", "subject_a1_5", "homeroom_a1_3"])
def test_a_teacher_lands_on_a_home_that_leads_to_their_students(client, care, persona):
    client.force_login(getattr(care, persona))
    page = client.get("/").content.decode()
    assert "my-students-link" in page
    assert reverse("care:my_students") in page
    narrow = persona != "homeroom_a1_3"
    assert ("/screening/campaigns/" in page) is not narrow  # no screening menu or card for the narrowest roles
    assert ("我的管辖范围" in page) is not narrow  # nor the school's overview (its classes, its counts)


def test_a_psychology_teacher_finds_the_coverage_from_their_home(client, care):
    client.force_login(care.counselor_a1)
    page = client.get("/").content.decode()
    assert reverse("care:coverage") in page and reverse("care:my_students") not in page
