"""Printing screening access codes: the slips (print-ready HTML, one per student) and the class teacher's XLSX list.

Both take `?classes=1,2,3`; classes missing or outside the user's scope give 404 (roster.access_codes decides).
"""

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.cache import never_cache

from roster import audit
from roster.access_codes import access_code_classes_by_ids, access_code_list_xlsx, access_codes_for_print
from roster.models import AccessAction, Student

SLIPS_PER_PAGE = 8  # 2 columns × 4 rows on A4
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _class_ids(request) -> list[int]:
    try:
        return [int(part) for part in request.GET.get("classes", "").split(",") if part.strip()]
    except ValueError:
        raise Http404 from None


@never_cache  # the page carries credentials
@login_required
def access_slips(request):
    classes = access_code_classes_by_ids(request.user, _class_ids(request))
    codes = access_codes_for_print(actor=request.user, school_classes=classes)
    audit.record(AccessAction.LIST, object_type=audit.label(Student), object_ids=[c.student_id for c in codes])
    pages = [codes[start : start + SLIPS_PER_PAGE] for start in range(0, len(codes), SLIPS_PER_PAGE)]
    return render(
        request,
        "roster/access_slips.html",
        {
            "classes": classes,
            "codes": codes,
            "pages": pages,
            "portal_url": request.build_absolute_uri(getattr(settings, "SCREENING_PORTAL_URL", "/s/")),
            "class_ids": ",".join(str(c.pk) for c in classes),
        },
    )


@never_cache
@login_required
def access_code_list(request):
    classes = access_code_classes_by_ids(request.user, _class_ids(request))
    codes = access_codes_for_print(actor=request.user, school_classes=classes)
    audit.record(AccessAction.EXPORT, object_type=audit.label(Student), object_ids=[c.student_id for c in codes])
    school_codes = sorted({c.school.code for c in classes})
    label = school_codes[0] if len(school_codes) == 1 else "schools"
    response = HttpResponse(access_code_list_xlsx(codes), content_type=XLSX_TYPE)
    filename = f"access-codes-{label}-{timezone.localdate().isoformat()}.xlsx"
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response
