"""The student portal pages: code → confirm who you are → the instruments, one per page → thank you and help.

No session, no account: each page carries the signed token from screening.portal (the questions page, reached by a
redirect, reads it from a cookie, see VISIT_COOKIE). Answers are never shown back.
"""

import re
import secrets
from functools import lru_cache

from django.conf import settings
from django.core.cache import cache
from django.http import Http404, HttpResponse
from django.middleware.csrf import get_token
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.html import conditional_escape
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.safestring import mark_safe
from django.utils.translation import get_language
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from roster.client_ip import client_ip
from roster.masking import mask_name
from screening import portal
from screening.definitions import in_language

# Guessing codes: a whole school shares one address, so the limit counts only wrong codes, and is generous.
FAILED_CODES_PER_ADDRESS = 60
FAILED_CODES_WINDOW = 10 * 60


def _address(request) -> str:
    return client_ip(request) or ""  # the student's address, also behind settings.TRUSTED_PROXY_COUNT proxies


# The count lives in the shared cache (settings.CACHES: the database or Redis), so every worker counts the same
# tries. The window opens at an address's first wrong code and lasts FAILED_CODES_WINDOW; each wrong code in it claims
# the next numbered slot with `cache.add`, which is atomic on every backend (a unique key in the database cache), so
# workers counting at once lose no try. (`cache.incr` is not: the database cache reads, adds one and writes back,
# and the write resets the expiry to the cache's default five minutes.)


def _window(request) -> str | None:
    key = f"portal-failed:{_address(request)}"
    window = cache.get(key)
    return f"{key}:{window}" if window is not None else None


def _too_many_failures(request) -> bool:
    window = _window(request)
    return window is not None and cache.has_key(f"{window}:{FAILED_CODES_PER_ADDRESS}")


def _count_failure(request) -> None:
    window = _window(request)
    if window is None:
        cache.add(f"portal-failed:{_address(request)}", secrets.token_hex(4), FAILED_CODES_WINDOW)
        window = _window(request)  # the one that opened it, when two workers tried at once
        if window is None:
            return
    slot = cache.get(window, 0) + 1  # the slots claimed so far, or fewer: a hint where to start
    while slot <= FAILED_CODES_PER_ADDRESS and not cache.add(f"{window}:{slot}", 1, FAILED_CODES_WINDOW):
        slot += 1
    cache.set(window, slot, FAILED_CODES_WINDOW)


# --- Pages rendered once, filled per student ----------------------------------------------------------------------
# Every student of a campaign sees the same pages but for a few values (the CSRF token, the visit's token, their
# masked name). Django's template engine spends about a millisecond on each of them, a fifth of the portal's CPU
# under load (benchmarks/portal_load.py); so each page is rendered once per worker, language and set of non-empty
# values, with named slots where those values go, and a request only fills the slots, escaped as the template would.

_SLOT = "\ue000{}\ue001"  # private-use characters: never in a translation, left alone by escaping
_SLOTS = re.compile("\ue000(\\w+)\ue001")


@lru_cache(maxsize=256)
def _shell(template: str, language: str, filled: frozenset, fixed: tuple) -> tuple[str, ...]:
    # `filled`: the slots with a value (an empty one renders as empty, so `{% if slot %}` takes the same branch).
    context = {**dict(fixed), **{name: mark_safe(_SLOT.format(name)) for name in filled}}  # noqa: S308
    return tuple(_SLOTS.split(render_to_string(template, context)))


def _page(request, template: str, slots: dict, fixed: tuple = (), status: int = 200) -> HttpResponse:
    """`template` with `slots` (per student, escaped) and `fixed` (hashable pairs, the same for many students)."""
    values = {**slots, "csrf_token": get_token(request)}
    parts = _shell(template, get_language(), frozenset(name for name, value in values.items() if value), fixed)
    html = "".join(part if i % 2 == 0 else conditional_escape(values[part]) for i, part in enumerate(parts))
    return HttpResponse(html, status=status)


def _start(request, error: str = "", status: int = 200):
    return _page(request, "screening/portal/start.html", {"error": error}, status=status)


def _steps(campaign_id: int, ruleset_id: int, chosen=None, missing=()):
    """The campaign's instruments as pages of items in the active language, with what was already chosen."""
    chosen = chosen or {}
    steps = []
    for code, instrument in portal.campaign_definitions_cached(campaign_id, ruleset_id).instruments.items():
        items = []
        for item in instrument.items:
            name = f"{code}-{item.number}"
            options = item.options
            items.append(
                {
                    "name": name,
                    "number": item.number,
                    "text": in_language(item.text),
                    "options": [
                        {
                            "key": o.key,
                            "label": in_language(o.label),
                            "positive": o.value > min(x.value for x in options),
                            "checked": chosen.get(name) == o.key,
                        }
                        for o in options
                    ],
                    "ask_if": " ".join(f"{code}-{n}" for n in item.ask_if_any_of),
                    "missing": name in missing,
                }
            )
        steps.append(
            {
                "code": code,
                "name": in_language(instrument.name),
                "instructions": in_language(instrument.instructions),
                "items": items,
            }
        )
    return steps


def _steps_html(steps) -> str:
    html = render_to_string("screening/portal/_steps.html", {"steps": steps, "step_count": len(steps)})
    return mark_safe(html)  # noqa: S308 (our own template's output, escaped there)


@lru_cache(maxsize=128)
def blank_steps_html(campaign_id: int, ruleset_id: int, language: str) -> tuple[str, int]:
    # The empty questionnaire is the same for every student of a campaign: rendered once per worker and language.
    steps = _steps(campaign_id, ruleset_id)
    return _steps_html(steps), len(steps)


def _questions(request, visit, chosen=None, missing=(), status=200):
    campaign = visit.campaign
    if chosen or missing:  # sent back with the blank items marked: rare, rendered whole
        steps = _steps(campaign.pk, campaign.ruleset_id, chosen, missing)
        context = {"token": visit.token, "steps_html": _steps_html(steps), "missing": missing, "step_count": len(steps)}
        return render(request, "screening/portal/answer.html", context, status=status)
    steps_html, step_count = blank_steps_html(campaign.pk, campaign.ruleset_id, get_language())
    fixed = (("steps_html", steps_html), ("step_count", step_count))
    return _page(request, "screening/portal/answer.html", {"token": visit.token}, fixed, status=status)


# "This is me" leads to the questions by a redirect (post/redirect/get), the visit's token in a cookie: the questions
# page is then a GET, so Back from the thank-you page asks it again, and it answers with the thank-you page once the
# answers are in, instead of the browser's "confirm form resubmission". The token names the code, never the student.
VISIT_COOKIE = "portal_visit"


def _visit_cookie_set(response: HttpResponse, token: str) -> HttpResponse:
    response.set_cookie(
        VISIT_COOKIE, token, max_age=portal.TOKEN_MAX_AGE, path=reverse("portal:start"),
        secure=settings.CSRF_COOKIE_SECURE, httponly=True, samesite="Strict",
    )  # fmt: skip
    return response


def _questions_again(request):
    token = request.COOKIES.get(VISIT_COOKIE, "")
    if not token:
        return redirect("portal:start")
    try:
        visit = portal.portal_visit_resume(token)
    except portal.PortalRefusal as refusal:
        if refusal.reason == "used":  # this browser's answers were received: Back after submitting
            return redirect("portal:done")
        return _start(request, refusal.message)
    return _questions(request, visit)


@never_cache
@require_http_methods(["GET", "POST"])
def start(request):
    if request.method == "GET":
        return _start(request)
    if _too_many_failures(request):
        return _start(request, _("Too many wrong codes from this network. Wait ten minutes and try again."), 429)
    try:
        visit = portal.portal_visit_start(request.POST.get("code", ""))
    except portal.PortalRefusal as refusal:
        if refusal.reason == "unknown":
            _count_failure(request)
        return _start(request, refusal.message)
    student = visit.student
    slots = {
        "token": visit.token,
        "school_name": student.school.name,
        "class_name": str(student.school_class),
        "masked_name": mask_name(student.name),
        "campaign_name": visit.campaign.name,
    }
    return _page(request, "screening/portal/confirm.html", slots)


@never_cache
@require_POST
def confirm(request):
    if request.POST.get("choice") != "yes":
        return _start(request, _("Then this slip is not yours. Please give it back to your teacher."))
    try:
        visit = portal.portal_visit_resume(request.POST.get("token", ""))
    except portal.PortalRefusal as refusal:
        return _start(request, refusal.message)
    return _visit_cookie_set(redirect("portal:answer"), visit.token)


@never_cache
@require_http_methods(["GET", "POST"])
def answer(request):
    if request.method == "GET":
        return _questions_again(request)
    token = request.POST.get("token", "")
    try:
        submission = portal.portal_submit(token, request.POST)
    except portal.MissingAnswers as missing:
        try:
            visit = portal.portal_visit_resume(token)
        except portal.PortalRefusal as refusal:
            return _start(request, refusal.message)
        return _questions(request, visit, chosen=request.POST, missing=missing.fields, status=400)
    except portal.PortalRefusal as refusal:
        return _start(request, refusal.message)
    return redirect("portal:done" if not submission.replayed else "portal:received")


@lru_cache(maxsize=32)
def _same_for_everyone(template: str, language: str, url_name: str, replayed: bool = False) -> str:
    # The thank-you and help pages hold nothing of the student's, not even a CSRF token (the language links are
    # plain links): rendered once per worker and language, as every student of a class ends on them.
    return render_to_string(template, {"replayed": replayed, "language_next": reverse(url_name)})


@require_GET
def done(request):
    return HttpResponse(_same_for_everyone("screening/portal/done.html", get_language(), "portal:done"))


@require_GET
def received(request):
    return HttpResponse(_same_for_everyone("screening/portal/done.html", get_language(), "portal:received", True))


@require_GET
def help_page(request):
    return HttpResponse(_same_for_everyone("screening/portal/help.html", get_language(), "portal:help"))


@require_GET
def language(request, code: str):
    """Switch the portal's language with a plain link: the pages students end on then need no CSRF token. Pages
    reached by a form (is this you, the questions) link back to the start page, as their answers are not kept."""
    if code not in dict(settings.LANGUAGES):
        raise Http404
    target = request.GET.get("next", "")
    if not target.startswith(reverse("portal:start")) or not url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        target = reverse("portal:start")
    response = redirect(target)
    response.set_cookie(
        settings.LANGUAGE_COOKIE_NAME, code, max_age=settings.LANGUAGE_COOKIE_AGE, path=settings.LANGUAGE_COOKIE_PATH,
        domain=settings.LANGUAGE_COOKIE_DOMAIN, secure=settings.LANGUAGE_COOKIE_SECURE,
        httponly=settings.LANGUAGE_COOKIE_HTTPONLY, samesite=settings.LANGUAGE_COOKIE_SAMESITE,
    )  # fmt: skip
    return response
