"""Printing screening access codes: the slips (print-ready HTML, one per student) and the class teacher's XLSX list.

Both take `?classes=1,2,3`; classes missing or outside the user's scope give 404 (roster.access_codes decides), and
`&since=` (set by an issue) to show only the codes that issue made, not the slips printed before.
"""

from datetime import UTC, datetime
from urllib.parse import urlencode

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.cache import never_cache

from roster import audit
from roster.access_codes import (
    access_code_classes_by_ids,
    access_code_list_xlsx,
    access_codes_for_print,
    access_codes_live_before,
)
from roster.models import AccessAction, Student

SLIPS_PER_PAGE = 8  # 2 columns × 4 rows on A4
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _class_ids(request) -> list[int]:
    try:
        return [int(part) for part in request.GET.get("classes", "").split(",") if part.strip()]
    except ValueError:
        raise Http404 from None


def _issued_since(request) -> datetime | None:
    """`?since=` (an ISO time, set by the issue): only the slips of that issue; absent, every working code."""
    text = request.GET.get("since", "").strip()
    if not text:
        return None
    try:
        since = datetime.fromisoformat(text)
    except ValueError:
        raise Http404 from None
    return since if timezone.is_aware(since) else timezone.make_aware(since, UTC)


@never_cache  # the page carries credentials
@login_required
def access_slips(request):
    """The slips of the classes' working codes; with `since`, only the new ones of one issue, and how many students
    hold a code printed before (still working, reprinted unchanged from the page without `since`)."""
    classes = access_code_classes_by_ids(request.user, _class_ids(request))
    since = _issued_since(request)
    codes = access_codes_for_print(actor=request.user, school_classes=classes, issued_since=since)
    audit.record(AccessAction.LIST, object_type=audit.label(Student), object_ids=[c.student_id for c in codes])
    pages = [codes[start : start + SLIPS_PER_PAGE] for start in range(0, len(codes), SLIPS_PER_PAGE)]
    class_ids = ",".join(str(c.pk) for c in classes)
    query = {"classes": class_ids} | ({"since": request.GET["since"]} if since else {})
    return render(
        request,
        "roster/access_slips.html",
        {
            "classes": classes,
            "codes": codes,
            "pages": pages,
            "portal_url": request.build_absolute_uri(getattr(settings, "SCREENING_PORTAL_URL", "/s/")),
            "class_ids": class_ids,
            "query": urlencode(query),
            "only_new": since is not None,
            "printed_before": (
                access_codes_live_before(actor=request.user, school_classes=classes, issued_since=since) if since else 0
            ),
        },
    )


@never_cache
@login_required
def access_code_list(request):
    classes = access_code_classes_by_ids(request.user, _class_ids(request))
    codes = access_codes_for_print(actor=request.user, school_classes=classes, issued_since=_issued_since(request))
    audit.record(AccessAction.EXPORT, object_type=audit.label(Student), object_ids=[c.student_id for c in codes])
    school_codes = sorted({c.school.code for c in classes})
    label = school_codes[0] if len(school_codes) == 1 else "schools"
    response = HttpResponse(access_code_list_xlsx(codes), content_type=XLSX_TYPE)
    filename = f"access-codes-{label}-{timezone.localdate().isoformat()}.xlsx"
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response
