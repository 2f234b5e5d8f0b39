"""The demo district and what each printed login sees on its home page."""

import io

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse

from roster.demo import DEMO_PASSWORD, demo_logins
from roster.models import City, District, RoleAssignment, School, SchoolClass, Student, User
from roster.roles import Role

# login → (schools on the home page, classes listed or None)
HOME_SCOPE = {
    "city_admin": (12, None),
    "city_centre": (12, None),
    "district_admin": (4, None),
    "district_centre": (4, None),
    "district_auditor": (4, None),
    "school_admin": (1, 12),
    "principal": (1, 12),
    "counselor": (1, 12),
    "homeroom": (0, 1),
}


def test_the_demo_district_has_the_promised_shape(demo_district):
    assert City.objects.count() == 1
    assert District.objects.count() == 3
    assert School.objects.count() == 12
    grades = set(SchoolClass.objects.values_list("grade", flat=True))
    assert grades == {4, 5, 6, 7, 8, 10, 11}
    # The mentor and the subject teacher come with the care demo (seed_care_demo, workflows.demo_mentoring).
    narrow = {Role.MENTOR, Role.SUBJECT_TEACHER}
    assert set(RoleAssignment.objects.values_list("role", flat=True)) == set(Role.values) - narrow
    assert Student.objects.filter(special_groups__code="left_behind").exists()
    # a psychology teacher who is also a homeroom teacher
    assert User.objects.get(username="counselor").role_assignments.count() == 2


def test_seeding_twice_changes_nothing(demo_district):
    counts = (Student.objects.count(), User.objects.count(), Student.history.count())
    out = io.StringIO()
    call_command("seed_demo", students_per_class=2, force=True, stdout=out)
    assert "nothing changed" in out.getvalue()
    assert (Student.objects.count(), User.objects.count(), Student.history.count()) == counts


def test_seed_demo_refuses_without_debug(db, settings):
    settings.DEBUG = False
    with pytest.raises(CommandError):
        call_command("seed_demo", stdout=io.StringIO())
    assert not City.objects.exists()


@pytest.mark.slow
def test_the_full_size_demo_has_about_six_thousand_students(db):
    call_command("seed_demo", force=True, stdout=io.StringIO())
    assert 5500 <= Student.objects.count() <= 6500
    assert all("\u4e00" <= ch <= "\u9fff" for ch in Student.objects.first().name)


@pytest.mark.parametrize("username", list(HOME_SCOPE))
def test_each_printed_login_reaches_a_home_page_with_only_its_scope(client, demo_district, username):
    assert username in {login.username for login in demo_logins()}
    response = client.post(reverse("login"), {"username": username, "password": DEMO_PASSWORD}, follow=True)
    assert response.status_code == 200
    assert response.context["user"].username == username
    schools, classes = HOME_SCOPE[username]
    assert response.context["school_page"].paginator.count == schools
    listed_classes = response.context["classes"]
    assert (None if listed_classes is None else len(listed_classes)) == classes
    user = User.objects.get(username=username)
    if username == "homeroom":
        own = user.role_assignments.get().school_class
        assert [c.pk for c in listed_classes] == [own.pk]
        assert response.context["students"]["active"] == own.students.count()


def test_the_home_page_requires_sign_in(client, db):
    response = client.get(reverse("home"))
    assert response.status_code == 302
    assert response.url.startswith(reverse("login"))


def test_a_teacher_typing_the_admin_url_gets_403_not_a_login_loop(client, world):
    client.force_login(world.homeroom_a1_3)
    assert client.get("/admin/").status_code == 403


def test_the_admin_login_redirects_to_the_one_login_page(client, db):
    response = client.get("/admin/roster/student/", follow=True)
    final_url = response.redirect_chain[-1][0]
    assert final_url == reverse("login") + "?next=/admin/roster/student/"
    assert "用户名" in response.content.decode()


def test_student_list_masks_names_and_phones_and_detail_shows_them(client, world):
    client.force_login(world.school_admin_a1)
    listing = client.get(reverse("admin:roster_student_changelist")).content.decode()
    assert "王*明" in listing and "138****1234" in listing
    assert "王小明" not in listing and "13812341234" not in listing
    detail = client.get(reverse("admin:roster_student_change", args=[world.student_a1_3.pk])).content.decode()
    assert "王小明" in detail and "13812341234" in detail
