"""The student portal pages: code → confirm who you are → the instruments, one per page → thank you and help.

No session, no account: each page carries the signed token from screening.portal. Answers are never shown back.
"""

from functools import lru_cache

from django.core.cache import cache
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.utils.safestring import mark_safe
from django.utils.translation import get_language
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from roster.masking import mask_name
from screening import portal

# Guessing codes: a whole school shares one address, so the limit counts only wrong codes, and is generous.
FAILED_CODES_PER_ADDRESS = 60
FAILED_CODES_WINDOW = 10 * 60


def _texts(texts: dict[str, str]) -> str:
    return texts.get(get_language()) or texts.get("zh-hans") or next(iter(texts.values()))


def _address(request) -> str:
    return request.META.get("REMOTE_ADDR", "")


def _too_many_failures(request) -> bool:
    return cache.get(f"portal-failed:{_address(request)}", 0) >= FAILED_CODES_PER_ADDRESS


def _count_failure(request) -> None:
    key = f"portal-failed:{_address(request)}"
    if cache.add(key, 1, FAILED_CODES_WINDOW):
        return
    try:
        cache.incr(key)
    except ValueError:  # expired between add and incr
        cache.add(key, 1, FAILED_CODES_WINDOW)


def _start(request, error: str = "", status: int = 200):
    return render(request, "screening/portal/start.html", {"error": error}, status=status)


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
                    "text": _texts(item.text),
                    "options": [
                        {
                            "key": o.key,
                            "label": _texts(o.label),
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
                "name": _texts(instrument.name),
                "instructions": _texts(instrument.instructions),
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
    if chosen or missing:
        steps = _steps(campaign.pk, campaign.ruleset_id, chosen, missing)
        steps_html, step_count = _steps_html(steps), len(steps)
    else:
        steps_html, step_count = blank_steps_html(campaign.pk, campaign.ruleset_id, get_language())
    return render(
        request,
        "screening/portal/answer.html",
        {"visit": visit, "steps_html": steps_html, "missing": missing, "step_count": step_count},
        status=status,
    )


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
    return render(
        request,
        "screening/portal/confirm.html",
        {
            "visit": visit,
            "school": student.school,
            "school_class": student.school_class,
            "masked_name": mask_name(student.name),
        },
    )


@never_cache
@require_POST
def confirm(request):
    if request.POST.get("choice") != "yes":
        return _start(request, _("Then this slip is not yours. Please give it back to your teacher."))
    try:
        visit = portal.portal_visit_resume(request.POST.get("token", ""))
    except portal.PortalRefusal as refusal:
        return _start(request, refusal.message)
    return _questions(request, visit)


@never_cache
@require_POST
def answer(request):
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


@require_GET
def done(request):
    return render(request, "screening/portal/done.html", {"replayed": False})


@require_GET
def received(request):
    return render(request, "screening/portal/done.html", {"replayed": True})


@require_GET
def help_page(request):
    return render(request, "screening/portal/help.html")
