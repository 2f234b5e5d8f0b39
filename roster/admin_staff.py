"""The staff admin's account operations (roster.admin.StaffAdmin): a password page that sets a temporary password or
sends a set-password link (only the link for accounts whose holder alone sets it), the action that issues
authenticator enrolment codes, and the role rows of the staff form saved through roster.services (granted and
revoked there, never written here). May import: roster only.
"""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.contrib.auth.forms import SetPasswordMixin
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.debug import sensitive_post_parameters

from roster import audit, scoping, services, two_factor
from roster.models import LEVEL_FIELD, AccessAction, AccessOutcome, RoleAssignment, User
from roster.roles import ROLE_LEVEL


class TemporaryPasswordForm(SetPasswordMixin, forms.Form):
    password1, password2 = SetPasswordMixin.create_password_fields(
        label1=gettext_lazy("Temporary password"), label2=gettext_lazy("Temporary password again")
    )

    def __init__(self, user, *args, **kwargs):
        self.user = user
        super().__init__(*args, **kwargs)

    def clean(self):
        self.validate_passwords()
        self.validate_password_for_user(self.user)
        return super().clean()


def _change_url(user: User) -> str:
    return reverse("admin:roster_user_change", args=[user.pk])


def _masked_email(address: str) -> str:
    name, _at, domain = address.partition("@")
    return f"{name[:1]}***@{domain}" if domain else "***"


@sensitive_post_parameters()
def password_view(request, model_admin, object_id):
    """The staff admin's "change password" page of one account (StaffAdmin.user_change_password)."""
    user = model_admin.get_object(request, unquote(object_id))  # out of scope: 404 (roster.admin_scoped)
    if not model_admin.has_change_permission(request, user):
        audit.record(AccessAction.CHANGE, object_type=services.PASSWORD_LOG, object_ids=[user.pk],
                     outcome=AccessOutcome.DENIED)  # fmt: skip
        raise PermissionDenied
    holder_only = services.staff_password_by_holder_only(user)
    form = None if holder_only else TemporaryPasswordForm(user, request.POST if "password1" in request.POST else None)
    if request.method == "POST":
        if "send_link" in request.POST:
            try:
                address = services.password_reset_link_send(actor=request.user, user=user)
            except services.NoEmailOnFile:
                messages.error(
                    request,
                    _(
                        "%(user)s has no email address. Add their email address on their page first; the link to "
                        "choose a password is sent there."
                    )
                    % {"user": user}
                    if services.staff_email_set_by_admin(request.user, user)
                    else _(
                        "%(user)s has no email address, and only they may set it: ask them to add it under “My email "
                        "address” on their home page, or ask the system administrator."
                    )
                    % {"user": user},
                )
                return HttpResponseRedirect(request.get_full_path())
            messages.success(
                request,
                _("A link to choose a new password was sent to %(email)s. It works once, within %(hours)s hours.")
                % {"email": _masked_email(address), "hours": services.link_hours()},
            )
            return HttpResponseRedirect(_change_url(user))
        if form is None and "password1" in request.POST:  # forged: only the holder sets this password
            audit.record(AccessAction.CHANGE, object_type=services.PASSWORD_LOG, object_ids=[user.pk],
                         outcome=AccessOutcome.DENIED)  # fmt: skip
            raise PermissionDenied
        if form is not None and form.is_valid():
            services.password_set_temporary(actor=request.user, user=user, password=form.cleaned_data["password1"])
            done = _("Temporary password set. %(user)s must choose a new password at their next sign-in.")
            messages.success(request, done % {"user": user})
            return HttpResponseRedirect(_change_url(user))
    context = {
        **model_admin.admin_site.each_context(request),
        "title": _("Password: %(user)s") % {"user": user},
        "opts": model_admin.opts,
        "original": user,
        "form": form,
        "holder_only": holder_only,
        "email": _masked_email(user.email) if user.email else "",
        "hours": services.link_hours(),
    }
    request.current_app = model_admin.admin_site.name
    return TemplateResponse(request, "admin/roster/user/password.html", context)


@admin.action(description=gettext_lazy("Issue an authenticator enrolment code"), permissions=["change"])
def issue_otp_enrolment_codes_action(model_admin, request, queryset):
    """One code per selected person (shown on the page that follows, once); people who already have an
    authenticator, or whose account the admin may not change, are named and get none."""
    mine = scoping.changeable(request.user, queryset)
    issued, enrolled = [], []
    for user in mine.order_by("username"):
        try:
            code = two_factor.otp_enrolment_code_issue(actor=request.user, user=user)
            issued.append((user, two_factor.code_groups(code)))
        except two_factor.AlreadyEnrolled:
            enrolled.append(user)
    context = {
        **model_admin.admin_site.each_context(request),
        "title": _("Authenticator enrolment codes"),
        "opts": model_admin.opts,
        "issued": issued,
        "enrolled": enrolled,
        "refused": queryset.exclude(pk__in=mine.values("pk")).count(),
        "hours": two_factor.ENROLMENT_CODE_HOURS,
    }
    request.current_app = model_admin.admin_site.name
    return TemplateResponse(request, "admin/roster/user/otp_enrolment_codes.html", context)


def first_password(request, user: User) -> None:
    """After a new account and its roles are saved: its first password (roster.services.staff_password_first), and
    what the admin should know about it."""
    try:
        outcome = services.staff_password_first(actor=request.user, user=user)
    except services.NoEmailOnFile:  # (checked before sending; kept for a race with an email change)
        outcome = "no_email"
    if outcome == "link_sent":
        messages.info(request, _("%(user)s chooses their own password: a link was sent to their email address.")
                      % {"user": user})  # fmt: skip
    elif outcome == "no_email":
        messages.warning(
            request,
            _(
                "%(user)s chooses their own password: add their email address, then send them the link from "
                "“Password” on their page."
            )
            % {"user": user},
        )
    elif outcome == "temporary":
        messages.info(request, _("%(user)s must choose a new password at their first sign-in.") % {"user": user})


def role_formset_save(request, user: User, formset) -> None:
    """Save the staff form's role rows through roster.services: a removed row is revoked, a changed row is its old
    role revoked and the new one granted, a new row granted (each checked there against what the admin may grant).
    Django's change message is built from what was granted and revoked."""
    actor = request.user
    revoked, grants = [], []
    for form in formset.initial_forms:
        deleted = formset.can_delete and formset._should_delete_form(form)
        if not deleted and not form.has_changed():
            continue
        revoked.append(RoleAssignment.objects.select_related("user").get(pk=form.instance.pk, user=user))
        if not deleted:
            grants.append(form.cleaned_data)
    for form in formset.extra_forms:
        if form.has_changed() and not (formset.can_delete and formset._should_delete_form(form)):
            grants.append(form.cleaned_data)
    for assignment in revoked:
        services.role_revoke(actor=actor, assignment=assignment)
    granted = [
        services.role_grant(
            actor=actor, user=user, role=wanted["role"], node=wanted[LEVEL_FIELD[ROLE_LEVEL[wanted["role"]]]]
        )
        for wanted in grants
    ]
    formset.new_objects, formset.changed_objects, formset.deleted_objects = granted, [], revoked
