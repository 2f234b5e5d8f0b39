"""Sessions of signed-in staff: an idle timeout, a lifetime counted from sign-in, and ending them all at once.

- Idle: settings.SESSION_COOKIE_AGE (30 minutes) without a request signs the person out. `SessionLifetimeMiddleware`
  notes the time of the latest request in the session, at most once a minute (`TOUCH_EVERY`), which also saves the
  session with its expiry pushed on: one write a minute, not one per request. A session left alone that long is gone
  from the store, and the middleware checks the time itself as well.
- Lifetime: the sign-in time is kept in the session (`on_logged_in`); the middleware signs the person out once
  settings.SESSION_ABSOLUTE_AGE (10 hours) has passed since then, however active they were.
- All at once: each sign-in is recorded as a `UserSession`; deactivating a person or changing their password deletes
  every session they hold (`sessions_end`). Signing out deletes the session (Django) and its record.
May import: roster only.
"""

from __future__ import annotations

import logging
import time
from importlib import import_module

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import SESSION_KEY, logout
from django.utils import timezone
from django.utils.translation import gettext as _

from roster.models import UserSession

logger = logging.getLogger(__name__)

LOGIN_AT = "roster_login_at"  # the session key holding the sign-in time (Unix seconds)
SEEN_AT = "roster_seen_at"  # the time of the latest request, to the minute (Unix seconds)
TOUCH_EVERY = 60  # seconds: how stale SEEN_AT may get before a request rewrites it


def _store():
    return import_module(settings.SESSION_ENGINE).SessionStore


def _live(keys: list[str]) -> set[str]:
    """The keys among `keys` whose session still exists and has not expired."""
    store = _store()
    if hasattr(store, "get_model_class"):  # the database-backed engines: one query, expired rows included as gone
        model = store.get_model_class()
        return set(
            model.objects.filter(session_key__in=keys, expire_date__gt=timezone.now()).values_list(
                "session_key", flat=True
            )
        )
    return {key for key in keys if store().exists(key)}


def on_logged_in(sender, request, user, **kwargs) -> None:
    """`user_logged_in`: note when this session signed in, and record it under the person (dropping the records of
    their sessions that have meanwhile expired, so the records stay as few as their live sessions)."""
    session = getattr(request, "session", None)
    if session is None:
        return
    session[LOGIN_AT] = session[SEEN_AT] = int(time.time())
    if session.session_key is None:
        session.save()
    mine = list(UserSession.objects.filter(user_id=user.pk).values_list("session_key", flat=True))
    if mine:
        gone = set(mine) - _live(mine)
        if gone:
            UserSession.objects.filter(session_key__in=gone).delete()
    UserSession.objects.update_or_create(session_key=session.session_key, defaults={"user": user})


def on_logged_out(sender, request, user, **kwargs) -> None:
    """`user_logged_out`: Django deletes the session itself; its record goes with it."""
    session = getattr(request, "session", None)
    if session is not None and session.session_key:
        UserSession.objects.filter(session_key=session.session_key).delete()


def sessions_end(user) -> int:
    """Delete every session `user` holds: they are signed out everywhere at their next request. Returns how many."""
    keys = list(UserSession.objects.filter(user_id=user.pk).values_list("session_key", flat=True))
    if not keys:
        return 0
    store = _store()
    for key in keys:  # a person holds a handful at most; each engine deletes its own way (and its cache)
        store(session_key=key).delete()
    UserSession.objects.filter(session_key__in=keys).delete()
    logger.info("ended %s sessions of user %s", len(keys), user.pk)
    return len(keys)


def on_user_saved(sender, instance, created: bool, **kwargs) -> None:
    """`post_save` of User: a deactivated person or a new password ends every session (a hash upgrade at sign-in is
    not a new password: Django clears `_password` for it)."""
    if created:
        return
    if not instance.is_active or getattr(instance, "_password", None) is not None:
        sessions_end(instance)


def _number(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


class SessionLifetimeMiddleware:
    """Signs a person out after settings.SESSION_COOKIE_AGE without a request, or once settings.SESSION_ABSOLUTE_AGE
    has passed since they signed in (a session without these times, from before this rule, counts as expired). The
    request goes on anonymous: pages that need a person send it to the sign-in page, with a message saying why.
    Place it after AuthenticationMiddleware and MessageMiddleware."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        session = request.session
        if SESSION_KEY in session:
            now = time.time()
            login_at, seen_at = session.get(LOGIN_AT), session.get(SEEN_AT)
            if not _number(login_at) or now - login_at > settings.SESSION_ABSOLUTE_AGE:
                self._sign_out(
                    request,
                    _("You were signed out %(hours)s hours after signing in. Please sign in again.")
                    % {"hours": round(settings.SESSION_ABSOLUTE_AGE / 3600)},
                )
            elif not _number(seen_at) or now - seen_at > settings.SESSION_COOKIE_AGE:
                self._sign_out(
                    request,
                    _("You were signed out after %(minutes)s minutes without activity. Please sign in again.")
                    % {"minutes": round(settings.SESSION_COOKIE_AGE / 60)},
                )
            elif now - seen_at >= TOUCH_EVERY and not request.headers.get("X-Background-Poll"):
                # A page's background poll (the crisis-alert banner) is not activity: idle pages still time out.
                session[SEEN_AT] = int(now)  # saved at the end of the request, with its expiry pushed on
        return self.get_response(request)

    @staticmethod
    def _sign_out(request, why: str) -> None:
        logout(request)
        messages.info(request, why)
