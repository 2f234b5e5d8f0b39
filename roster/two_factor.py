"""Two-factor sign-in: a time-based code (TOTP, django-otp) after the password.

- Required for the roles in roster.roles.TWO_FACTOR_ROLES (city and district staff, who reach many schools' records;
  principals and psychology teachers, who read a school's cases and results) and for superusers; optional for
  everyone else, but a person who has set up an authenticator is always asked.
- After the password, `TwoFactorMiddleware` sends such a person to `otp_verify` (enter the code), or to `otp_setup`
  when they have no confirmed authenticator yet (the otpauth:// address and the secret as text, then a first code),
  before anything else. Sign-in, sign-out, these pages, static files, the language switch and the students' portal
  are exempt. The middleware sits after django_otp.middleware.OTPMiddleware (which tells whether the session has
  passed a code). settings.TWO_FACTOR_ENFORCED turns the redirect off (the test settings do; tests/security turn it
  on).
- Setting up is refused while the person has a confirmed authenticator and this session has not passed a code: a
  stolen password alone never enrols the thief's own device.
- The first set-up needs an enrolment code as well (`otp_enrolment_code_issue`): one-time, issued by the person's
  administrator (who may change their account: roster.scoping.changeable), shown once to the issuer, stored hashed,
  valid ENROLMENT_CODE_HOURS, void after ENROLMENT_MAX_ATTEMPTS wrong entries; superusers get theirs from
  `manage.py issue_otp_enrolment_code`. Until the code is entered, the set-up page shows no secret and creates no
  device. Issuing, using and wrong entries are in the access log (ENROLMENT_LOG).
- The same middleware then sends a person whose password an administrator typed (`User.must_change_password`) to
  choose their own (roster.passwords), whatever TWO_FACTOR_ENFORCED says.
May import: roster only.
"""

from __future__ import annotations

import logging
import secrets
from base64 import b32encode
from datetime import timedelta
from urllib.parse import urlencode

import segno
from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import F
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.crypto import constant_time_compare, salted_hmac
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.safestring import mark_safe
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.cache import never_cache
from django_otp import devices_for_user, user_has_device
from django_otp import login as otp_login
from django_otp import verify_token as otp_verify_token
from django_otp.plugins.otp_totp.models import TOTPDevice

from roster import audit, scoping
from roster.access_codes import ALPHABET, normalize_code
from roster.models import AccessAction, AccessOutcome, OTPEnrolmentCode, User
from roster.roles import TWO_FACTOR_ROLES

logger = logging.getLogger(__name__)

ENROLLED = "roster_otp_enrolled"  # session key: the person had a confirmed authenticator when they signed in
ENROLMENT_ALLOWED = "roster_otp_enrolment"  # session key: the user id whose enrolment code this session entered
ENROLMENT_LOG = "roster.user.otp_enrolment"  # access-log object type: a code issued, used, or a wrong one entered
ENROLMENT_CODE_HOURS = 72  # long enough to reach a teacher over a weekend, short enough to expire unused
ENROLMENT_CODE_LENGTH = 12  # 31^12 ≈ 8 × 10^17, read out over the phone in groups of four
ENROLMENT_MAX_ATTEMPTS = 5  # wrong entries before the person's live codes are void (a new one must be issued)


def two_factor_required(user) -> bool:
    """Whether this person must pass a code whatever they chose: a role reaching many schools, or a superuser."""
    return user.is_superuser or bool(scoping.scope_for(user).roles & TWO_FACTOR_ROLES)


def on_logged_in(sender, request, user, **kwargs) -> None:
    """`user_logged_in`: remember whether the person has an authenticator, so the middleware need not look it up on
    every request of people who have none."""
    session = getattr(request, "session", None)
    if session is not None:
        session[ENROLLED] = user_has_device(user)


def _exempt_prefixes() -> tuple[str, ...]:
    return (
        reverse("login"),
        reverse("logout"),
        reverse("otp_verify"),
        reverse("otp_setup"),
        reverse("password_change_required"),
        "/" + settings.STATIC_URL.lstrip("/"),
        "/i18n/",
        settings.SCREENING_PORTAL_URL,
    )


class TwoFactorMiddleware:
    """The steps of signing in that come before any page: the second factor (when enforced), then a password of the
    holder's own choosing (always)."""

    def __init__(self, get_response):
        self.get_response = get_response
        self._exempt = None

    def __call__(self, request):
        if self._exempt is None:
            self._exempt = _exempt_prefixes()
        if not request.path_info.startswith(self._exempt):
            user = request.user
            if user.is_authenticated:
                wanted = {"next": request.get_full_path()}
                if (
                    getattr(settings, "TWO_FACTOR_ENFORCED", True)
                    and not user.is_verified()
                    and (request.session.get(ENROLLED) or two_factor_required(user))
                ):
                    target = "otp_verify" if user_has_device(user) else "otp_setup"
                    return redirect(f"{reverse(target)}?{urlencode(wanted)}")
                if user.must_change_password:  # after the second factor: the admin who typed it has no phone
                    return redirect(f"{reverse('password_change_required')}?{urlencode(wanted)}")
        return self.get_response(request)


# --- Enrolment codes ----------------------------------------------------------------------------------------------


class AlreadyEnrolled(Exception):
    """The person has a confirmed authenticator: there is nothing to enrol."""


def otp_enrolment_code_issue(*, actor: User | None, user: User) -> str:
    """A new one-time enrolment code for `user`, returned once (only its hash is kept); their earlier live codes are
    void. Valid ENROLMENT_CODE_HOURS.

    Access: `actor` may change `user` (roster.scoping.changeable: their administrator per roster.roles.GRANTS, or a
    superuser); actor None is the command line (`manage.py issue_otp_enrolment_code`). Refused: PermissionDenied,
    logged. A person with a confirmed authenticator: AlreadyEnrolled. Audit: an access-log entry (ENROLMENT_LOG).
    """
    if actor is not None and not scoping.can_change(actor, user):
        audit.record(AccessAction.CHANGE, object_type=ENROLMENT_LOG, object_ids=[user.pk], user=actor,
                     outcome=AccessOutcome.DENIED)  # fmt: skip
        raise PermissionDenied("not allowed to issue an enrolment code for this account")
    if user_has_device(user):
        raise AlreadyEnrolled(user.pk)
    code = "".join(secrets.choice(ALPHABET) for _ in range(ENROLMENT_CODE_LENGTH))
    now = timezone.now()
    with transaction.atomic():
        audit.record(AccessAction.CHANGE, object_type=ENROLMENT_LOG, object_ids=[user.pk], user=actor,
                     actor_name="" if actor else "manage.py")  # fmt: skip
        OTPEnrolmentCode.objects.filter(user=user, used_at__isnull=True, expires_at__gt=now).update(expires_at=now)
        OTPEnrolmentCode.objects.create(
            user=user,
            code_hash=_code_hash(code),
            issued_by=actor,
            expires_at=now + timedelta(hours=ENROLMENT_CODE_HOURS),
        )
    logger.info("enrolment code issued for user %s by user %s", user.pk, actor.pk if actor else None)
    return code


def _code_hash(code: str) -> str:
    # Keyed and fast: the code is random (about 59 bits) and tried at most ENROLMENT_MAX_ATTEMPTS times, so a slow
    # password hash would buy nothing, and an admin may issue codes for a whole school at once.
    return salted_hmac("roster.two_factor.enrolment_code", code, algorithm="sha256").hexdigest()


def code_groups(code: str) -> str:
    """A code as it is shown and read out: groups of four."""
    return " ".join(code[i : i + 4] for i in range(0, len(code), 4))


def otp_enrolment_code_redeem(*, user: User, code: str) -> bool:
    """Whether `code` is a live enrolment code of `user`; a right one is spent, a wrong one counts against every live
    code of theirs (void after ENROLMENT_MAX_ATTEMPTS).

    Access: the signed-in person themselves. Audit: an access-log entry (ENROLMENT_LOG), denied for a wrong code.
    """
    typed = normalize_code(code)
    now = timezone.now()
    with transaction.atomic():
        live = list(
            OTPEnrolmentCode.objects.select_for_update()
            .filter(user=user, used_at__isnull=True, expires_at__gt=now, failed_attempts__lt=ENROLMENT_MAX_ATTEMPTS)
            .order_by("-issued_at")
        )
        wanted = _code_hash(typed) if typed else ""
        match = next((c for c in live if wanted and constant_time_compare(c.code_hash, wanted)), None)
        if match is not None:
            audit.record(AccessAction.CHANGE, object_type=ENROLMENT_LOG, object_ids=[user.pk], user=user)
            match.used_at = now
            match.save(update_fields=["used_at"])
            return True
        OTPEnrolmentCode.objects.filter(pk__in=[c.pk for c in live]).update(failed_attempts=F("failed_attempts") + 1)
    audit.record(AccessAction.CHANGE, object_type=ENROLMENT_LOG, object_ids=[user.pk], user=user,
                 outcome=AccessOutcome.DENIED)  # fmt: skip
    return False


class TokenForm(forms.Form):
    token = forms.RegexField(
        label=gettext_lazy("Code from your authenticator app"),
        regex=r"^\s*\d{6}\s*$",
        error_messages={"invalid": gettext_lazy("Enter the 6 digits your authenticator app shows.")},
        widget=forms.TextInput(
            attrs={"autocomplete": "one-time-code", "inputmode": "numeric", "autofocus": True, "maxlength": 8}
        ),
    )


class EnrolmentCodeForm(forms.Form):
    code = forms.CharField(
        label=gettext_lazy("Enrolment code from your administrator"),
        max_length=40,
        widget=forms.TextInput(attrs={"autocomplete": "off", "autofocus": True, "autocapitalize": "characters"}),
    )


def _next_url(request) -> str:
    wanted = request.POST.get("next") or request.GET.get("next") or ""
    if wanted and url_has_allowed_host_and_scheme(wanted, {request.get_host()}, request.is_secure()):
        return wanted
    return reverse(settings.LOGIN_REDIRECT_URL)


def _with_next(name: str, next_url: str) -> str:
    return f"{reverse(name)}?{urlencode({'next': next_url})}"


def _refused_message(devices) -> str:
    for device in devices:
        device.refresh_from_db()  # the failure count the verification just wrote
        allowed, _details = device.verify_is_allowed()
        if not allowed:
            return _("Too many wrong codes. Wait a minute, then enter the code your app shows now.")
    return _("This code is wrong or has expired. Enter the code your app shows now.")


@never_cache
@login_required
def otp_verify(request):
    """The second step of signing in: a code from the person's authenticator."""
    next_url = _next_url(request)
    if request.user.is_verified():
        return redirect(next_url)
    devices = list(devices_for_user(request.user, confirmed=True))
    if not devices:
        return redirect(_with_next("otp_setup", next_url))
    form = TokenForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        token = form.cleaned_data["token"].strip()
        for device in devices:
            verified = otp_verify_token(request.user, device.persistent_id, token)
            if verified is not None:
                otp_login(request, verified)
                return redirect(next_url)
        form.add_error("token", _refused_message(devices))
    return render(request, "registration/otp_verify.html", {"form": form, "next": next_url})


@never_cache
@login_required
def otp_setup(request):
    """Set up an authenticator app: the enrolment code from the administrator, then the app's address and secret,
    then a first code that confirms it."""
    user = request.user
    next_url = _next_url(request)
    if user_has_device(user):
        if not user.is_verified():  # a password alone never enrols another device
            return redirect(_with_next("otp_verify", next_url))
        messages.info(request, _("Your authenticator app is already set up."))
        return redirect(next_url)
    if request.session.get(ENROLMENT_ALLOWED) != user.pk:  # nor a first one: the secret comes after the code
        form = EnrolmentCodeForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            if otp_enrolment_code_redeem(user=user, code=form.cleaned_data["code"]):
                # A secret drawn before the code was entered (or before this rule) may have been seen: draw anew.
                TOTPDevice.objects.filter(user=user, confirmed=False).delete()
                request.session[ENROLMENT_ALLOWED] = user.pk
                return redirect(_with_next("otp_setup", next_url))
            form.add_error(
                "code", _("This enrolment code is wrong, used or expired. Ask your administrator for a new one.")
            )
        return render(
            request,
            "registration/otp_enrol.html",
            {"form": form, "next": next_url, "required": two_factor_required(user), "hours": ENROLMENT_CODE_HOURS},
        )
    device = TOTPDevice.objects.filter(user=user, confirmed=False).order_by("pk").first()
    if device is None:
        device = TOTPDevice.objects.create(user=user, name=_("Authenticator app"), confirmed=False)
    form = TokenForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        if device.verify_token(form.cleaned_data["token"].strip()):
            device.confirmed = True
            device.save(update_fields=["confirmed"])
            TOTPDevice.objects.filter(user=user, confirmed=False).delete()  # any other unfinished set-up
            otp_login(request, device)
            request.session[ENROLLED] = True
            request.session.pop(ENROLMENT_ALLOWED, None)
            messages.success(request, _("Your authenticator app is set up. You will enter its code at each sign-in."))
            return redirect(next_url)
        form.add_error("token", _refused_message([device]))
    secret = b32encode(device.bin_key).decode()
    return render(
        request,
        "registration/otp_setup.html",
        {
            "form": form,
            "next": next_url,
            # Scanned by the phone's app: an inline SVG (no image request, nothing for the page's CSP to allow).
            "qr_svg": mark_safe(segno.make(device.config_url, error="m").svg_inline(scale=4, border=2)),  # noqa: S308
            "secret": secret,
            "secret_groups": " ".join(secret[i : i + 4] for i in range(0, len(secret), 4)),
            "required": two_factor_required(user),
        },
    )
