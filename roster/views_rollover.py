"""The school-year rollover page (学年升级, roster.rollover) for district and city admins: choose the place and the
school year, read the preview per school with its problems, confirm, read the result, undo while allowed.

Anyone else (and any place or run out of the person's reach) gets the same 404 as a missing one, logged.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from roster import audit, rollover
from roster.models import AccessAction, AccessOutcome, City, Rollover, school_year_label
from roster.stages import SchoolStage


def _refused(request, object_id=None, *, writing: bool = False) -> Http404:
    action = AccessAction.CHANGE if writing else AccessAction.VIEW
    ids = [] if object_id is None else [object_id]
    audit.record(action, object_type=audit.label(Rollover), object_ids=ids, outcome=AccessOutcome.DENIED)
    return Http404()


def _places(request) -> list:
    places = rollover.rollover_scopes_for(request.user)
    if not places:
        raise _refused(request)
    return places


def _key(place) -> str:
    return f"{'city' if isinstance(place, City) else 'district'}:{place.pk}"


def _chosen(request, places: list, data) -> tuple:
    """The place and school year the form names (defaults: the first place, the school year under way)."""
    by_key = {_key(p): p for p in places}
    wanted = data.get("place") or _key(places[0])
    place = by_key.get(wanted)
    if place is None:
        raise _refused(request, wanted, writing=request.method == "POST")
    current = rollover.current_school_year()
    try:
        year = int(data.get("year") or current)
    except ValueError:
        year = current
    return place, year if year in _years(current) else current


def _years(current: int) -> list[int]:
    return [current - 1, current, current + 1]


@never_cache
@login_required
def rollover_page(request):
    """The form, the preview of the chosen place and year, and the latest runs with their undo buttons."""
    places = _places(request)
    place, year = _chosen(request, places, request.GET)
    try:
        preview = rollover.rollover_preview(actor=request.user, scope=place, school_year=year)
    except Http404:
        raise _refused(request, _key(place)) from None
    current = rollover.current_school_year()
    context = {
        "places": [(_key(p), p, isinstance(p, City)) for p in places],
        "place_key": _key(place),
        "place": place,
        "years": [(y, school_year_label(y)) for y in _years(current)],
        "year": year,
        "year_label": school_year_label(year),
        "preview": preview,
        "totals": preview.totals(),
        # Whether a run may still be undone is asked on its own page (a few queries): the list stays one query.
        "runs": rollover.rollovers_for(request.user)[:20],
    }
    return render(request, "roster/rollover.html", context)


@never_cache
@login_required
@require_POST
def rollover_run_view(request):
    places = _places(request)
    place, year = _chosen(request, places, request.POST)
    try:
        result = rollover.rollover_run(actor=request.user, scope=place, school_year=year)
    except Http404:
        raise _refused(request, _key(place), writing=True) from None
    except rollover.RolloverRefused as refusal:
        messages.error(request, str(refusal))
        return redirect(f"{reverse('rollover')}?place={_key(place)}&year={year}")
    if result.run is None:
        messages.warning(request, result.message)
        return redirect(f"{reverse('rollover')}?place={_key(place)}&year={year}")
    messages.success(request, result.message)
    return redirect("rollover_detail", pk=result.run.pk)


def _run_of(request, pk, *, writing: bool = False) -> Rollover:
    try:
        return rollover.rollover_by_id(request.user, pk)
    except Http404:
        raise _refused(request, pk, writing=writing) from None


@never_cache
@login_required
def rollover_detail(request, pk: int):
    """What one run did, per school, as it was recorded; its undo button while it may be undone."""
    run = _run_of(request, pk)
    summary = run.summary or {}
    context = {
        "run": run,
        "year_label": school_year_label(run.school_year),
        "schools": [{**s, "stage_label": _stage_label(s.get("stage", ""))} for s in summary.get("schools", [])],
        "totals": summary.get("totals", {}),
        "undo_refusal": rollover.rollover_undo_refusal(run),
    }
    return render(request, "roster/rollover_detail.html", context)


@never_cache
@login_required
@require_POST
def rollover_undo_view(request, pk: int):
    run = _run_of(request, pk, writing=True)
    try:
        rollover.rollover_undo(actor=request.user, run=run)
    except Http404:
        raise _refused(request, pk, writing=True) from None
    except rollover.RolloverRefused as refusal:
        messages.error(request, str(refusal))
    else:
        messages.success(request, _undone_message(run))
    return redirect("rollover_detail", pk=run.pk)


def _stage_label(stage: str) -> str:
    return str(SchoolStage(stage).label) if stage in SchoolStage.values else stage


def _undone_message(run: Rollover) -> str:
    return _("The rollover into %(year)s of %(place)s has been undone.") % {
        "year": school_year_label(run.school_year),
        "place": run.scope,
    }
