"""Two-factor sign-in: a time-based code (TOTP, django-otp) after the password.

- Required for the roles in roster.roles.TWO_FACTOR_ROLES (city and district staff, who reach many schools' records)
  and for superusers; optional for everyone else, but a person who has set up an authenticator is always asked.
- After the password, `TwoFactorMiddleware` sends such a person to `otp_verify` (enter the code), or to `otp_setup`
  when they have no confirmed authenticator yet (the otpauth:// address and the secret as text, then a first code),
  before anything else. Sign-in, sign-out, these pages, static files, the language switch and the students' portal
  are exempt. The middleware sits after django_otp.middleware.OTPMiddleware (which tells whether the session has
  passed a code). settings.TWO_FACTOR_ENFORCED turns the redirect off (the test settings do; tests/security turn it
  on).
- Setting up is refused while the person has a confirmed authenticator and this session has not passed a code: a
  stolen password alone never enrols the thief's own device.
May import: roster only.
"""

from __future__ import annotations

from base64 import b32encode
from urllib.parse import urlencode

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.cache import never_cache
from django_otp import devices_for_user, user_has_device
from django_otp import login as otp_login
from django_otp import verify_token as otp_verify_token
from django_otp.plugins.otp_totp.models import TOTPDevice

from roster import scoping
from roster.roles import TWO_FACTOR_ROLES

ENROLLED = "roster_otp_enrolled"  # session key: the person had a confirmed authenticator when they signed in


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
        "/" + settings.STATIC_URL.lstrip("/"),
        "/i18n/",
        settings.SCREENING_PORTAL_URL,
    )


class TwoFactorMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response
        self._exempt = None

    def __call__(self, request):
        if getattr(settings, "TWO_FACTOR_ENFORCED", True):
            if self._exempt is None:
                self._exempt = _exempt_prefixes()
            if not request.path_info.startswith(self._exempt):
                user = request.user
                if (
                    user.is_authenticated
                    and not user.is_verified()
                    and (request.session.get(ENROLLED) or two_factor_required(user))
                ):
                    target = "otp_verify" if user_has_device(user) else "otp_setup"
                    return redirect(f"{reverse(target)}?{urlencode({'next': request.get_full_path()})}")
        return self.get_response(request)


class TokenForm(forms.Form):
    token = forms.RegexField(
        label=gettext_lazy("Code from your authenticator app"),
        regex=r"^\s*\d{6}\s*$",
        error_messages={"invalid": gettext_lazy("Enter the 6 digits your authenticator app shows.")},
        widget=forms.TextInput(
            attrs={"autocomplete": "one-time-code", "inputmode": "numeric", "autofocus": True, "maxlength": 8}
        ),
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
    """Set up an authenticator app: its address and secret, then a first code that confirms it."""
    user = request.user
    next_url = _next_url(request)
    if user_has_device(user):
        if not user.is_verified():  # a password alone never enrols another device
            return redirect(_with_next("otp_verify", next_url))
        messages.info(request, _("Your authenticator app is already set up."))
        return redirect(next_url)
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
            "config_url": device.config_url,
            "secret": secret,
            "secret_groups": " ".join(secret[i : i + 4] for i in range(0, len(secret), 4)),
            "required": two_factor_required(user),
        },
    )
