"""Write operations on the organisation tree, staff and students. Views, admin, commands and tasks call these."""

from __future__ import annotations

from collections.abc import Iterable

from django.core.exceptions import PermissionDenied
from django.db import transaction
from simple_history.utils import bulk_create_with_history, update_change_reason

from roster import scoping
from roster.models import LEVEL_FIELD, City, District, RoleAssignment, School, SchoolClass, Student, User
from roster.roles import ROLE_LEVEL


def _create_valid(model, **fields):
    obj = model(**fields)
    obj.full_clean()
    obj.save()
    return obj


@transaction.atomic
def city_create(*, name: str, division_code: str) -> City:
    return _create_valid(City, name=name, division_code=division_code)


@transaction.atomic
def district_create(*, city: City, name: str, division_code: str) -> District:
    return _create_valid(District, city=city, name=name, division_code=division_code)


@transaction.atomic
def school_create(*, district: District, code: str, name: str, campus: str = "") -> School:
    """Access: callers check scoping.parents_for_new(actor, School, ...). Validates the school-code rule."""
    return _create_valid(School, district=district, code=code, name=name, campus=campus)


@transaction.atomic
def school_class_create(*, school: School, grade: int, number: int) -> SchoolClass:
    return _create_valid(SchoolClass, school=school, grade=grade, number=number)


@transaction.atomic
def staff_create(*, username: str, name: str, phone: str = "", password: str | None = None) -> User:
    user = User(username=username, name=name, phone=phone)
    if password:
        user.set_password(password)
    else:
        user.set_unusable_password()
    user.full_clean(exclude=["password"])
    user.save()
    return user


@transaction.atomic
def role_grant(*, actor: User | None, user: User, role: str, node) -> RoleAssignment:
    """Give `user` the `role` at `node` (a City, District, School or SchoolClass).

    Access: `actor` must be allowed by roster.roles.GRANTS within their subtree; actor None is the system
    (data set-up, demo seeding). Audit: a history row naming the actor and the reason.
    """
    assignment = RoleAssignment(user=user, role=role, **{LEVEL_FIELD[ROLE_LEVEL[role]]: node})
    assignment.full_clean()
    if actor is not None and not scoping.can_grant(actor, assignment):
        raise PermissionDenied("not allowed to grant this role here")
    assignment._history_user = actor
    assignment.save()
    update_change_reason(assignment, "role granted")
    scoping.forget_scope(user)
    return assignment


def students_bulk_create(students: Iterable[Student], *, batch_size: int = 1000) -> list[Student]:
    """Insert many new students at once, with their history rows (for seeding and large first imports)."""
    return bulk_create_with_history(list(students), Student, batch_size=batch_size, default_change_reason="bulk create")
