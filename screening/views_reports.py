"""Staff pages for screening campaigns: the campaign list, the flagged-students list, the completion/tier report.

Thin views: who sees which rows is decided in screening.reports (built on roster.scoping).
"""

from django import forms
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.views.decorators.cache import never_cache

from roster import audit, scoping
from roster.models import AccessAction, AccessOutcome
from roster.pdf import pdf_available, pdf_response, unavailable_redirect
from roster.spreadsheets import xlsx_bytes
from screening import reports
from screening.campaigns import may_see_campaigns
from screening.definitions import RiskTier
from screening.models import ScreeningResult
from screening.report_insights import report_insights

XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


@login_required
def campaign_list(request):
    if scoping.scope_for(request.user).roles and not may_see_campaigns(request.user):
        # A mentor or subject teacher alone (issue 20): no screening is theirs. Refused as missing, and logged.
        audit.record(AccessAction.LIST, object_type="screening.campaign", outcome=AccessOutcome.DENIED)
        raise Http404
    page = Paginator(reports.campaign_list_for(request.user), 50).get_page(request.GET.get("page"))
    return render(request, "screening/campaigns.html", {"page": page})


class FlaggedFilterForm(forms.Form):
    """GET filters of the flagged list; every choice comes from the user's readers scope (a forged id is invalid)."""

    tier = forms.ChoiceField(label=_("Tier"), required=False)

    def __init__(self, data, *, options: reports.FlaggedFilterOptions):
        super().__init__(data)
        self.fields["school"] = forms.ModelChoiceField(
            label=_("School"), queryset=options.schools, required=False, empty_label=_("All")
        )
        self.fields["grade"] = forms.TypedChoiceField(
            label=_("Grade"),
            coerce=int,
            empty_value=None,
            required=False,
            choices=[("", _("All"))] + [(g, _("Grade %(grade)d") % {"grade": g}) for g in options.grades],
        )
        self.fields["class"] = forms.ModelChoiceField(
            label=_("Class"), queryset=options.classes, required=False, empty_label=_("All")
        )
        self.fields["tier"].choices = [("", _("All"))] + [(t.value, t.label) for t in reports.FLAGGED_TIERS]
        self.order_fields(["school", "grade", "class", "tier"])

    def clean(self):
        cleaned = super().clean()
        school, school_class = cleaned.get("school"), cleaned.get("class")
        if school is not None and school_class is not None and school_class.school_id != school.pk:
            self.add_error("class", _("This class belongs to another school."))
        return cleaned


def _school_id(raw) -> int | None:
    try:
        return int(raw)
    except (TypeError, ValueError):
        return None


@never_cache  # tiers and reasons of named (masked) students
@login_required
def flagged(request, campaign_id: int):
    user = request.user
    if not reports.user_reads_results(user):
        return _flagged_refused(request)
    campaign = reports.access_campaign_by_id(user, campaign_id)
    if not reports.reads_campaign_results(user, campaign):
        return _flagged_refused(request, campaign)
    options = reports.flagged_filter_options(user, campaign, school_id=_school_id(request.GET.get("school")))
    form = FlaggedFilterForm(request.GET, options=options)
    page, rows = None, []
    if form.is_valid():
        f = form.cleaned_data
        results = reports.flagged_results_for(
            user, campaign, school=f["school"], grade=f["grade"], school_class=f["class"], tier=f["tier"] or None
        )
        page, rows = reports.flagged_page(results, request.GET.get("page"))
        audit.record(AccessAction.LIST, object_type=audit.label(ScreeningResult), object_ids=[r.pk for r in page])
    # The class list of a whole district is long: offered once a school is chosen, or when there is only one school.
    show_classes = bool(form.data.get("school")) or len(options.schools) == 1
    return render(
        request,
        "screening/flagged.html",
        {"campaign": campaign, "form": form, "page": page, "rows": rows, "show_classes": show_classes},
    )


def _flagged_refused(request, campaign=None):
    """Refused as missing (404, the access matrix's rule: forbidden looks like nothing there), and logged."""
    audit.record(AccessAction.LIST, object_type=audit.label(ScreeningResult), outcome=AccessOutcome.DENIED,
                 object_ids=[campaign.pk] if campaign else [])  # fmt: skip
    raise Http404


def _report_context(request, campaign_id: int, action: str) -> dict:
    campaign = reports.access_campaign_by_id(request.user, campaign_id)
    result = reports.campaign_report(request.user, campaign, request.GET)
    insights = report_insights(request.user, campaign, result, request.GET)
    audit.record(action, object_type="screening.report", object_ids=[campaign.pk])
    return {"campaign": campaign, "report": result, "insights": insights, "tiers": _tier_heads(),
            "generated_at": timezone.localtime()}  # fmt: skip


@never_cache
@login_required
def report(request, campaign_id: int):
    return render(request, "screening/report.html", _report_context(request, campaign_id, AccessAction.VIEW))


@never_cache
@login_required
def report_print(request, campaign_id: int):
    """The report on one printable page: no navigation, A4, the charts whole (print.css)."""
    return render(request, "screening/report_print.html", _report_context(request, campaign_id, AccessAction.VIEW))


@never_cache
@login_required
def report_pdf(request, campaign_id: int):
    """The printable page as a PDF with the Chinese font embedded; a message where this server cannot make one."""
    if not pdf_available():
        return unavailable_redirect(request, reverse("screening:report_print", args=[campaign_id]) + _query(request))
    context = _report_context(request, campaign_id, AccessAction.EXPORT)
    level = "-".join(f"{k}{v}" for k, v in context["report"].drill.params().items()) or "all"
    filename = f"screening-report-{campaign_id}-{level}-{timezone.localdate().isoformat()}.pdf"
    return pdf_response(request, "screening/report_print.html", context, filename)


def _query(request) -> str:
    return f"?{request.GET.urlencode()}" if request.GET else ""


def _tier_heads():
    return [(t, RiskTier(t).label) for t in reports.REPORT_TIERS]


@never_cache
@login_required
def report_xlsx(request, campaign_id: int):
    campaign = reports.access_campaign_by_id(request.user, campaign_id)
    result = reports.campaign_report(request.user, campaign, request.GET)
    audit.record(AccessAction.EXPORT, object_type="screening.report", object_ids=[campaign.pk])
    response = HttpResponse(xlsx_bytes([reports.report_sheet(result)]), content_type=XLSX_TYPE)
    level = "-".join(f"{k}{v}" for k, v in result.drill.params().items()) or "all"
    filename = f"screening-report-{campaign.pk}-{level}-{timezone.localdate().isoformat()}.xlsx"
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response
