"""Write operations on the organisation tree, staff and students. Views, admin, commands and tasks call these."""

from __future__ import annotations

import logging
from collections.abc import Iterable

from django.conf import settings
from django.contrib.auth.tokens import default_token_generator
from django.core.exceptions import PermissionDenied
from django.core.mail import send_mail
from django.db import transaction
from django.urls import reverse
from django.utils import translation
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode
from django.utils.translation import gettext as _
from simple_history.utils import bulk_create_with_history, update_change_reason

from roster import audit, scoping
from roster.models import (
    LEVEL_FIELD,
    AccessAction,
    AccessOutcome,
    City,
    District,
    RoleAssignment,
    School,
    SchoolClass,
    Student,
    User,
)
from roster.roles import ROLE_LEVEL, TWO_FACTOR_ROLES
from roster.stages import SchoolStage

logger = logging.getLogger(__name__)

# Access-log object types of the account operations below (each entry carries the account's id, nothing else).
ROLES_LOG = "roster.user.roles"  # a role granted or revoked
PASSWORD_LOG = "roster.user.password"  # noqa: S105 · a password set: a temporary one by an administrator, or by its holder
PASSWORD_LINK_LOG = "roster.user.password_link"  # noqa: S105 · a set-password link sent to the holder's email
EMAIL_LOG = "roster.user.email"  # the email address (where set-password links go) changed


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
def school_create(
    *, district: District, code: str, name: str, campus: str = "", stage: str = SchoolStage.TWELVE_YEAR
) -> School:
    """Access: callers check scoping.parents_for_new(actor, School, ...). Validates the school-code rule."""
    return _create_valid(School, district=district, code=code, name=name, campus=campus, stage=stage)


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


def _refuse(object_type: str, user: User, why: str) -> PermissionDenied:
    """Log a refused account operation (outside any transaction of the operation, so the entry stays) and return the
    exception to raise."""
    audit.record(AccessAction.CHANGE, object_type=object_type, object_ids=[user.pk], outcome=AccessOutcome.DENIED)
    return PermissionDenied(why)


def _may_grant(actor: User, user: User, assignment: RoleAssignment) -> bool:
    # Nobody but a superuser changes their own roles: a school admin does not make themselves principal.
    if actor.pk == user.pk and not actor.is_superuser:
        return False
    return scoping.can_grant(actor, assignment)


def role_grant(*, actor: User | None, user: User, role: str, node) -> RoleAssignment:
    """Give `user` the `role` at `node` (a City, District, School or SchoolClass).

    Access: `actor` must be allowed by roster.roles.GRANTS within their subtree, and may not grant themselves a role
    (superusers excepted); actor None is the system (data set-up, demo seeding). Refused: PermissionDenied, logged.
    Audit: a history row naming the actor and the reason; an access-log entry (ROLES_LOG) when a person grants it.
    """
    assignment = RoleAssignment(user=user, role=role, **{LEVEL_FIELD[ROLE_LEVEL[role]]: node})
    assignment.full_clean()
    if actor is not None and not _may_grant(actor, user, assignment):
        raise _refuse(ROLES_LOG, user, "not allowed to grant this role here")
    with transaction.atomic():
        if actor is not None:
            audit.record(AccessAction.CHANGE, object_type=ROLES_LOG, object_ids=[user.pk])
        assignment._history_user = actor
        assignment.save()
        update_change_reason(assignment, "role granted")
    scoping.forget_scope(user)
    return assignment


def role_revoke(*, actor: User | None, assignment: RoleAssignment) -> None:
    """Take a role away: the assignment is deleted, its history kept (a "-" row naming the actor and the reason), and
    roster.signals.role_removed hands the person's open tasks at that place back (sent by the delete).

    Access: as role_grant (who may grant a role may revoke it). Refused: PermissionDenied, logged.
    Audit: the history row; an access-log entry (ROLES_LOG) when a person revokes it.
    """
    user = assignment.user
    if actor is not None and not _may_grant(actor, user, assignment):
        raise _refuse(ROLES_LOG, user, "not allowed to revoke this role")
    with transaction.atomic():
        if actor is not None:
            audit.record(AccessAction.CHANGE, object_type=ROLES_LOG, object_ids=[user.pk])
        assignment._history_user = actor
        assignment._change_reason = "role revoked"
        assignment.delete()
    scoping.forget_scope(user)


# --- Passwords set by administrators, and by their holders ----------------------------------------------------


class NoEmailOnFile(Exception):
    """A set-password link cannot be sent: the account has no email address."""


def staff_password_by_holder_only(user: User) -> bool:
    """Whether only the holder may choose this account's password: it holds, or ever held, a role that reads cases or
    screening results or reaches many schools (roster.roles.TWO_FACTOR_ROLES), or it is a superuser. An administrator
    sends such a holder a set-password link and never types their password. Read from the rows and their history, not
    from `scope_for`: a deactivated principal counts too, and so does a psychology teacher whose role an administrator
    took away for a moment (revoke, set a password, grant again: the probe's way round this rule)."""
    if user.is_superuser:
        return True
    held = RoleAssignment.objects.filter(user_id=user.pk, role__in=TWO_FACTOR_ROLES)
    return held.exists() or RoleAssignment.history.filter(user_id=user.pk, role__in=TWO_FACTOR_ROLES).exists()


def password_set_temporary(*, actor: User, user: User, password: str) -> None:
    """Set a password an administrator typed (validated by the caller's form): the holder must choose their own at
    their next sign-in, and every session they hold ends (roster.sessions).

    Access: `actor` may change `user` (roster.scoping.changeable: their administrator per GRANTS, or a superuser),
    and the account is not one whose password only its holder sets (`staff_password_by_holder_only`); else
    PermissionDenied, logged. Audit: an access-log entry (PASSWORD_LOG, the account's id) and a history row (the
    flag) naming the actor; never the password.
    """
    if not scoping.can_change(actor, user) or staff_password_by_holder_only(user):
        raise _refuse(PASSWORD_LOG, user, "not allowed to set this account's password")
    with transaction.atomic():
        audit.record(AccessAction.CHANGE, object_type=PASSWORD_LOG, object_ids=[user.pk])
        user.set_password(password)
        user.must_change_password = True
        user._history_user = actor
        user.save(update_fields=["password", "must_change_password"])
    logger.info("temporary password set for user %s by user %s", user.pk, actor.pk)


def password_reset_link(user: User) -> str:
    """The absolute set-password link for `user` (Django's token: it works once, and until
    settings.PASSWORD_RESET_TIMEOUT; a new password, a sign-in or a new email address void it)."""
    uidb64 = urlsafe_base64_encode(force_bytes(user.pk))
    token = default_token_generator.make_token(user)
    return settings.SITE_URL + reverse("password_set", kwargs={"uidb64": uidb64, "token": token})


def link_hours() -> int:
    """How many hours a set-password link works (settings.PASSWORD_RESET_TIMEOUT)."""
    return round(settings.PASSWORD_RESET_TIMEOUT / 3600)


def password_reset_link_send(*, actor: User, user: User) -> str:
    """Email the holder a link to choose their own password; their second factor, if set up, stays and is still asked.
    Returns the address it went to.

    Access: `actor` may change `user` (roster.scoping.changeable), else PermissionDenied. An account without an email
    address: NoEmailOnFile. Both refusals are logged. Audit: an access-log entry (PASSWORD_LINK_LOG) before the mail.
    """
    if not scoping.can_change(actor, user):
        raise _refuse(PASSWORD_LINK_LOG, user, "not allowed to reset this account's password")
    if not user.email:
        _refuse(PASSWORD_LINK_LOG, user, "no email address")
        raise NoEmailOnFile(user.pk)
    audit.record(AccessAction.CHANGE, object_type=PASSWORD_LINK_LOG, object_ids=[user.pk])
    hours = link_hours()
    with translation.override(settings.LANGUAGE_CODE):  # staff read Chinese; the admin's own language may differ
        subject = _("Choose your password for the student mental health system")
        body = _(
            "Your administrator asked for a link for you to choose a new password for the account %(username)s.\n\n"
            "%(link)s\n\n"
            "The link works once, within %(hours)s hours. If you did not expect it, tell your administrator; your "
            "password stays as it is until the link is used."
        ) % {"username": user.get_username(), "link": password_reset_link(user), "hours": hours}
    send_mail(subject, body, None, [user.email])
    logger.info("set-password link sent to user %s by user %s", user.pk, actor.pk)
    return user.email


def staff_password_first(*, actor: User, user: User) -> str:
    """A new account's first password, once its roles are saved. An account only its holder sets
    (`staff_password_by_holder_only`) keeps no password its administrator typed: the holder gets a set-password link
    at their email address ("link_sent"), or, without one, waits for it ("no_email"). Any other account's typed
    password is temporary: chosen anew at the first sign-in ("temporary"; "none" when none was typed).

    Access: the caller (the staff admin's add page) has checked that `actor` may add staff. Audit: as
    password_reset_link_send; the history row of the account.
    """
    if not staff_password_by_holder_only(user):
        if not user.has_usable_password():
            return "none"
        user.must_change_password = True
        user._history_user = actor
        user.save(update_fields=["must_change_password"])
        return "temporary"
    if user.has_usable_password():
        user.set_unusable_password()
        user._history_user = actor
        user.save(update_fields=["password"])
    if not user.email:
        return "no_email"
    password_reset_link_send(actor=actor, user=user)
    return "link_sent"


def password_set_by_holder(*, user: User, password: str) -> None:
    """The holder chose their password (after a temporary one, or through a set-password link): the must-change flag
    goes, every other session they hold ends (roster.sessions).

    Access: the caller has checked that this is the holder (their current password, or the link's token).
    Audit: an access-log entry (PASSWORD_LOG) with the holder as actor.
    """
    with transaction.atomic():
        audit.record(AccessAction.CHANGE, object_type=PASSWORD_LOG, object_ids=[user.pk], user=user)
        user.set_password(password)
        user.must_change_password = False
        user._history_user = user
        user.save(update_fields=["password", "must_change_password"])


def staff_email_changed(*, actor: User, user: User, old_email: str) -> None:
    """Record that an administrator (or the holder) changed where `user`'s set-password links go, and tell the old
    address.

    Access: the caller (the staff admin) has checked that `actor` may change `user`. Audit: an access-log entry
    (EMAIL_LOG, the account's id); the history row of the change itself is the caller's save.
    """
    audit.record(AccessAction.CHANGE, object_type=EMAIL_LOG, object_ids=[user.pk])
    if old_email and old_email != user.email:
        with translation.override(settings.LANGUAGE_CODE):
            subject = _("The email address of your account was changed")
            body = _(
                "The email address of the account %(username)s was changed. If you did not ask for this, tell your "
                "school or district office at once."
            ) % {"username": user.get_username()}
        send_mail(subject, body, None, [old_email], fail_silently=True)


def staff_email_set_by_admin(actor: User, user: User) -> bool:
    """Whether an administrator may set `user`'s email address: any account but a case-reading one already in use
    (signed in once), whose links only its holder redirects (staff_email_set_by_holder). Superusers always."""
    if actor.is_superuser or user.last_login is None:
        return True
    return not staff_password_by_holder_only(user)


def staff_email_set_by_holder(*, user: User, email: str, password: str) -> None:
    """The holder sets the address their set-password links go to, confirming with their password (a session left
    open is not enough). For a case-reading account this is the only way after its creation: an administrator who
    could set it would send the link to themselves (issue 17, the probe's way round the holder-only password).

    Access: the signed-in holder. Refused (wrong password): PermissionDenied, logged. Audit: an access-log entry
    (EMAIL_LOG, the account's id) and the history row; the old address is told.
    """
    if not user.check_password(password):
        raise _refuse(EMAIL_LOG, user, "wrong password for an email change")
    old_email = user.email
    with transaction.atomic():
        user.email = email
        user._history_user = user
        user.save(update_fields=["email"])
        staff_email_changed(actor=user, user=user, old_email=old_email)


def students_bulk_create(students: Iterable[Student], *, batch_size: int = 1000) -> list[Student]:
    """Insert many new students at once, with their history rows (for seeding and large first imports)."""
    return bulk_create_with_history(list(students), Student, batch_size=batch_size, default_change_reason="bulk create")
