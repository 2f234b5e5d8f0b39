"""Passwords chosen by their holders: the page a person whose password an administrator typed must pass before any
other (roster.two_factor.TwoFactorMiddleware sends them), and the page a set-password link opens
(roster.services.password_reset_link_send). Both write through roster.services.password_set_by_holder.
May import: roster only.
"""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.contrib.auth import update_session_auth_hash
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.contrib.auth.forms import PasswordChangeForm
from django.contrib.auth.views import INTERNAL_RESET_SESSION_TOKEN
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse, reverse_lazy
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy as _lazy

from roster import services
from roster.models import UserSession
from roster.two_factor import _next_url


class PasswordChangeRequiredView(auth_views.PasswordChangeView):
    """Choose a new password (the current one, typed by an administrator, first). Signed in, and still signed in
    afterwards: this session is kept (and recorded again), every other session of the person ends."""

    form_class = PasswordChangeForm
    template_name = "registration/password_change_required.html"

    def get_context_data(self, **kwargs):
        return {**super().get_context_data(**kwargs), "next": _next_url(self.request)}

    def form_valid(self, form):
        user = form.user
        services.password_set_by_holder(user=user, password=form.cleaned_data["new_password1"])
        # The new password ended every session of the person (roster.sessions), this one too: it goes on under a new
        # key, recorded so that the next deactivation or new password ends it as well.
        update_session_auth_hash(self.request, user)
        UserSession.objects.update_or_create(session_key=self.request.session.session_key, defaults={"user": user})
        messages.success(self.request, _("Your new password is set."))
        return HttpResponseRedirect(_next_url(self.request))


class PasswordSetView(auth_views.PasswordResetConfirmView):
    """The page a set-password link opens: the holder chooses their password; then they sign in with it (and their
    second factor, when they have one)."""

    template_name = "registration/password_set.html"
    success_url = reverse_lazy("login")

    def form_valid(self, form):
        services.password_set_by_holder(user=form.user, password=form.cleaned_data["new_password1"])
        del self.request.session[INTERNAL_RESET_SESSION_TOKEN]
        messages.success(self.request, _("Your password is set. Sign in with it."))
        return HttpResponseRedirect(reverse("login"))


class AccountEmailForm(forms.Form):
    email = forms.EmailField(label=_lazy("Email address"))
    password = forms.CharField(label=_lazy("Your password"), widget=forms.PasswordInput, strip=False)


@login_required
def account_email(request):
    """The holder sets the address their set-password links and notices go to, with their password."""
    form = AccountEmailForm(request.POST or None, initial={"email": request.user.email})
    if request.method == "POST" and form.is_valid():
        try:
            services.staff_email_set_by_holder(
                user=request.user, email=form.cleaned_data["email"], password=form.cleaned_data["password"]
            )
        except PermissionDenied:
            form.add_error("password", _("That is not your password."))
        else:
            messages.success(request, _("Your email address is saved."))
            return HttpResponseRedirect(reverse("home"))
    return render(request, "registration/account_email.html", {"form": form})
