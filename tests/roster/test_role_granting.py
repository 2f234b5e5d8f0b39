"""Seed 000: an upper-level admin manages the admins directly below them and nobody else."""

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.urls import reverse

from roster import scoping, services
from roster.models import RoleAssignment, User
from roster.roles import Role
from tests.factories.roster import UserFactory


@pytest.mark.parametrize(
    ("actor", "role", "node", "allowed"),
    [
        ("school_admin_a1", Role.PRINCIPAL, "school_a1", True),
        ("school_admin_a1", Role.HOMEROOM_TEACHER, "class_a1_5", True),
        ("school_admin_a1", Role.PRINCIPAL, "school_a2", False),  # sibling school
        ("school_admin_a1", Role.HOMEROOM_TEACHER, "class_a2", False),
        (
            "school_admin_a1",
            Role.SCHOOL_ADMIN,
            "school_a1",
            False,
        ),  # their peers are the district's to appoint
        ("school_admin_a1", Role.DISTRICT_ADMIN, "district_a", False),  # parent scope
        ("admin_district_a", Role.SCHOOL_ADMIN, "school_a1", True),
        ("admin_district_a", Role.DISTRICT_AUDITOR, "district_a", True),
        ("admin_district_a", Role.PSYCHOLOGY_TEACHER, "school_a1", False),  # below the admins: not theirs
        ("admin_district_a", Role.SCHOOL_ADMIN, "school_b1", False),
        ("city_admin", Role.DISTRICT_ADMIN, "district_b", True),
        ("city_admin", Role.SCHOOL_ADMIN, "school_a1", False),
        ("city_admin", Role.DISTRICT_ADMIN, "district_x", False),  # another city
        ("auditor_district_a", Role.SCHOOL_ADMIN, "school_a1", False),  # read-only role
        ("principal_a1", Role.HOMEROOM_TEACHER, "class_a1_5", False),
    ],
)
def test_role_grant_follows_the_admin_hierarchy(world, actor, role, node, allowed):
    newcomer = UserFactory()
    grant = lambda: services.role_grant(  # noqa: E731
        actor=getattr(world, actor), user=newcomer, role=role, node=getattr(world, node)
    )
    if allowed:
        assignment = grant()
        record = assignment.history.get()
        assert record.history_user == getattr(world, actor)
        assert record.history_change_reason == "role granted"
    else:
        with pytest.raises(PermissionDenied):
            grant()
        assert not RoleAssignment.objects.filter(user=newcomer).exists()


def _add_staff_post(role, *, school="", school_class="", username="new_teacher"):
    return {
        "username": username,
        "name": "李新",
        "phone": "13900000000",
        "password1": "a-long-enough-password",
        "password2": "a-long-enough-password",
        "role_assignments-TOTAL_FORMS": "1" if role else "0",
        "role_assignments-INITIAL_FORMS": "0",
        "role_assignments-MIN_NUM_FORMS": "1",
        "role_assignments-MAX_NUM_FORMS": "1000",
        "role_assignments-0-role": role,
        "role_assignments-0-school": school,
        "role_assignments-0-school_class": school_class,
    }


def test_school_admin_adds_a_homeroom_teacher_in_the_admin(client, world):
    client.force_login(world.school_admin_a1)
    response = client.post(
        reverse("admin:roster_user_add"),
        _add_staff_post(Role.HOMEROOM_TEACHER, school_class=world.class_a1_5.pk),
    )
    assert response.status_code == 302
    teacher = User.objects.get(username="new_teacher")
    assignment = teacher.role_assignments.get()
    assert (assignment.role, assignment.school_class) == (Role.HOMEROOM_TEACHER, world.class_a1_5)
    assert assignment.history.get().history_user == world.school_admin_a1
    assert teacher.history.first().history_user == world.school_admin_a1


@pytest.mark.parametrize(
    ("role", "where"),
    [
        (Role.DISTRICT_ADMIN, {}),  # a role they cannot grant, forged into the POST
        (Role.PRINCIPAL, {"school": "school_a2"}),  # a school outside their scope
        (Role.HOMEROOM_TEACHER, {"school_class": "class_b1"}),
        (Role.HOMEROOM_TEACHER, {"school_class": "class_a1_3"}),  # already has a homeroom teacher
        ("", {}),  # no role at all: the account would fall out of every admin's scope
    ],
)
def test_forged_or_invalid_staff_additions_change_nothing(client, world, role, where):
    client.force_login(world.school_admin_a1)
    users_before = User.objects.count()
    places = {key: getattr(world, value).pk for key, value in where.items()}
    response = client.post(reverse("admin:roster_user_add"), _add_staff_post(role, **places))
    assert response.status_code == 200  # the form again, with the errors shown
    assert response.context["errors"]
    assert User.objects.count() == users_before


def test_a_teacher_with_a_role_at_another_school_is_visible_but_not_manageable(client, world):
    shared = world.counselor_a1
    services.role_grant(actor=None, user=shared, role=Role.HOMEROOM_TEACHER, node=world.class_a2)
    assert scoping.can_view(world.school_admin_a1, shared)
    assert not scoping.can_change(world.school_admin_a1, shared)
    assert not scoping.can_change(world.school_admin_a2, shared)
    assert scoping.can_change(world.superuser, shared)


def test_one_person_may_hold_several_roles_and_sees_the_union(world):
    services.role_grant(actor=None, user=world.counselor_a1, role=Role.HOMEROOM_TEACHER, node=world.class_a1_5)
    scoping.forget_scope(world.counselor_a1)
    assert scoping.scope_for(world.counselor_a1).roles == {Role.PSYCHOLOGY_TEACHER, Role.HOMEROOM_TEACHER}


def test_a_class_has_one_homeroom_teacher(world):
    with pytest.raises(ValidationError):
        services.role_grant(actor=None, user=UserFactory(), role=Role.HOMEROOM_TEACHER, node=world.class_a1_3)


def test_the_database_refuses_a_role_held_at_the_wrong_level(world):
    with pytest.raises(IntegrityError), transaction.atomic():
        RoleAssignment.objects.create(user=UserFactory(), role=Role.PRINCIPAL, district=world.district_a)


def test_a_non_superuser_cannot_make_anyone_superuser(client, world):
    from tests.admin_forms import admin_change_data

    client.force_login(world.school_admin_a1)
    url = reverse("admin:roster_user_change", args=[world.principal_a1.pk])
    data = admin_change_data(client.get(url))
    data.update(is_superuser="on", is_staff="on")
    assert client.post(url, data).status_code == 302
    world.principal_a1.refresh_from_db()
    assert not world.principal_a1.is_superuser


@pytest.mark.parametrize(
    ("persona", "offered"),
    [
        (
            "school_admin_a1",
            {Role.PRINCIPAL, Role.PSYCHOLOGY_TEACHER, Role.HOMEROOM_TEACHER, Role.MENTOR, Role.SUBJECT_TEACHER},
        ),
        ("admin_district_a", {Role.SCHOOL_ADMIN, Role.DISTRICT_CENTRE, Role.DISTRICT_AUDITOR}),
        ("city_admin", {Role.DISTRICT_ADMIN, Role.CITY_CENTRE}),
    ],
)
def test_the_role_menu_offers_only_what_the_admin_may_grant(client, world, persona, offered):
    client.force_login(getattr(world, persona))
    formset = client.get(reverse("admin:roster_user_add")).context["inline_admin_formsets"][0].formset
    choices = {value for value, _ in formset.empty_form.fields["role"].choices if value}
    assert choices == offered


def test_a_place_that_does_not_fit_the_role_is_ignored_not_reported(client, world):
    client.force_login(world.school_admin_a1)
    data = _add_staff_post(Role.HOMEROOM_TEACHER, school=world.school_a1.pk, school_class=world.class_a1_5.pk)
    assert client.post(reverse("admin:roster_user_add"), data).status_code == 302
    assignment = User.objects.get(username="new_teacher").role_assignments.get()
    assert (assignment.school, assignment.school_class) == (None, world.class_a1_5)
